"""Opt-in: run the suite against every broken backend several times (slow; by hand).

    python contract_tests/tests/bites_repeat.py --repeat 5            # the catching tests
    python contract_tests/tests/bites_repeat.py --repeat 5 --full     # the whole suite

Each repetition is one pytest run (under the default hypothesis profile unless
``--profile`` says otherwise) with one ``StoreContract`` subclass per broken backend;
it checks that, for every broken backend, the test named in ``BROKEN`` failed. It
prints the broken backends that were not caught and exits non-zero if any was not.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))

from broken_backends import BROKEN  # noqa: E402

_CLASS = """
class TestB_{name}(StoreContract):
    @pytest.fixture
    def store_factory(self, tmp_path):
        return store_factory_for({name!r}, tmp_path)

    @pytest.fixture
    def store_url(self, tmp_path):
        return store_url_for({name!r}, tmp_path)
"""


def _write(directory: Path) -> Path:
    head = (
        "import pytest\nfrom broken_backends import store_factory_for, store_url_for\n"
        "from eventstore_contract import StoreContract\n"
    )
    path = directory / "test_all_broken.py"
    path.write_text(head + "".join(_CLASS.format(name=name) for name in BROKEN))
    return path


def _failures(junit: Path) -> set[tuple[str, str]]:
    failed = set()
    for case in ET.parse(junit).iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            cls = case.get("classname", "").rsplit(".", 1)[-1].removeprefix("TestB_")
            failed.add((cls, case.get("name", "").split("[", 1)[0]))
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--full", action="store_true", help="run the whole suite, not one test")
    parser.add_argument("--profile", default=None, help="hypothesis profile (default: default)")
    parser.add_argument("--timeout", default="5", help="--eventstore-timeout")
    args = parser.parse_args()
    missed_total = 0
    for repetition in range(1, args.repeat + 1):
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            test_file = _write(directory)
            selected = (
                [str(test_file)]
                if args.full
                else [f"{test_file}::TestB_{n}::{b.caught_by}" for n, b in BROKEN.items()]
            )
            junit = directory / "junit.xml"
            command = [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--eventstore-timeout",
                args.timeout,
                f"--junitxml={junit}",
                *(["--eventstore-profile", args.profile] if args.profile else []),
                *selected,
            ]
            subprocess.run(
                command,
                cwd=directory,
                env={**__import__("os").environ, "PYTHONPATH": str(_HERE)},
                stdout=subprocess.DEVNULL,
                check=False,
            )
            failed = _failures(junit)
        missed = [n for n, b in BROKEN.items() if (n, b.caught_by) not in failed]
        missed_total += len(missed)
        print(f"repetition {repetition}: {len(BROKEN) - len(missed)}/{len(BROKEN)} caught", end="")
        print(f"; NOT caught: {', '.join(missed)}" if missed else "")
    return 1 if missed_total else 0


if __name__ == "__main__":
    sys.exit(main())
