"""What a backend author sees from ``run_suite`` (``eventstore check``) and the summary line.

Skip reasons by default, no assertion-rewrite warning, an honest header, and a
coverage line computed from what actually ran.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).parent
_PACKAGE = _HERE.parent / "eventstore_contract"

_BROKEN = """
import pytest
from broken_backends import BROKEN
from eventstore_contract import StoreContract


class TestBrokenContract(StoreContract):
    @pytest.fixture
    def store_factory(self):
        return BROKEN[{name!r}].store
"""


def _run_suite(tmp_path: Path, *extra: str, before: str = "") -> subprocess.CompletedProcess[str]:
    """``run_suite("memory://")`` in a fresh interpreter, as ``eventstore check`` runs it."""
    code = (
        "import sys, eventstore_contract\n"
        f"{before}\n"
        f"sys.exit(eventstore_contract.run_suite('memory://', extra_args={list(extra)!r}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def _segments(summary: str) -> dict[str, str]:
    """``{"covered": "a, b", "failed": "...", ...}`` of one summary line."""
    head, *parts = summary.split("; ")
    out = {"head": head}
    for part in parts:
        key, _, value = part.partition(": ")
        out[key] = value
    return out


def _groups(segment: str) -> set[str]:
    """The group names of a segment: ``"a (2 tests), b (1 test)"`` -> ``{"a", "b"}``."""
    if segment in ("", "none"):
        return set()
    return {re.sub(r" \(.*\)$", "", item) for item in re.split(r", (?![^(]*\))", segment)}


def _summary(lines: list[str]) -> str:
    (line,) = [line for line in lines if line.startswith("eventstore contract [")]
    return line


# --- run_suite / eventstore check ------------------------------------------------


def test_run_suite_lists_skip_reasons_by_default(tmp_path: Path) -> None:
    done = _run_suite(tmp_path, "-k", "durability or no_credential")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(
        r"SKIPPED \[1\] .*durability\.py:\d+: backend 'memory' does not declare capability "
        r"durable",
        done.stdout,
    ), done.stdout
    assert "store_url carries no password that could leak" in done.stdout


def test_an_r_option_of_the_user_replaces_the_default(tmp_path: Path) -> None:
    done = _run_suite(tmp_path, "-k", "durability", "-rN")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SKIPPED [" not in done.stdout
    assert "short test summary info" not in done.stdout


def test_run_suite_warns_about_nothing_and_names_an_honest_config(tmp_path: Path) -> None:
    # The project's own configuration must not apply: this one would fail the run.
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --no-such-option\n")
    done = _run_suite(tmp_path, "-k", "sequence_starts_at_one", "-W", "error")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Warning" not in output  # PytestAssertRewriteWarning above all
    assert "warnings summary" not in output
    assert "dev/null" not in output
    header = dict(
        line.split(": ", 1)
        for line in done.stdout.splitlines()
        if line.startswith(("rootdir:", "configfile:"))
    )
    assert Path(header["rootdir"]) == _PACKAGE.resolve()
    config = (_PACKAGE.resolve() / header["configfile"]).resolve()
    assert config.name == "pytest.ini"
    assert config.parent.name.startswith("eventstore-check-")
    assert not config.exists()  # a temporary file, removed after the run


def test_suite_modules_still_have_their_asserts_rewritten(tmp_path: Path) -> None:
    # The package is imported before pytest starts; its modules are not, so pytest
    # rewrites them (failures keep their detail).
    check = (
        "import atexit\n"
        "def _check():\n"
        "    mod = sys.modules['eventstore_contract.suite.append']\n"
        "    assert type(mod.__loader__).__name__ == 'AssertionRewritingHook', mod.__loader__\n"
        "    print('REWRITTEN')\n"
        "atexit.register(_check)\n"
    )
    done = _run_suite(tmp_path, "-q", "-k", "sequence_starts_at_one", before=check)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "REWRITTEN" in done.stdout, done.stdout + done.stderr


def test_run_suite_summary_is_honest_about_memory(tmp_path: Path) -> None:
    done = _run_suite(tmp_path, "-q", "-k", "durability or no_credential or many_processes")
    assert done.returncode == 0, done.stdout + done.stderr
    segments = _segments(_summary(done.stdout.splitlines()))
    # Every skipped test is "not covered", a skipped core test included.
    assert segments["not covered"] == (
        "core rules (1 test skipped), durable (5 tests skipped), multi_process (1 test skipped)"
    ), segments
    assert segments["covered"] == "none"


# --- the summary line, through pytester -----------------------------------------


def _broken(pytester: pytest.Pytester, name: str, *args: str) -> pytest.RunResult:
    pytester.syspathinsert(_HERE)
    pytester.makepyfile(test_broken=_BROKEN.format(name=name))
    return pytester.runpytest_inprocess(
        "-p",
        "no:cacheprovider",
        "--eventstore-profile",
        "quick",
        "--eventstore-timeout",
        "5",
        *args,
    )


def test_a_failed_capability_is_not_covered_but_failed(pytester: pytest.Pytester) -> None:
    result = _broken(pytester, "corrupt_entry_skipped", "-k", "corruption")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    segments = _segments(_summary(result.outlines))
    failed = len(result.reprec.getfailures())  # type: ignore[attr-defined]
    assert failed >= 1
    assert "backdoor" not in _groups(segments["covered"])
    assert re.fullmatch(rf"backdoor \({failed} tests? failed\)", segments["failed"]), segments


def test_after_x_the_rest_is_not_run_and_not_covered(pytester: pytest.Pytester) -> None:
    result = _broken(pytester, "events_out_of_order", "-x")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    summary = _summary(result.outlines)
    segments = _segments(summary)
    not_run = _groups(segments["not run (deselected, or the run stopped first)"])
    covered = _groups(segments["covered"])
    assert not_run, summary
    assert not covered & not_run, summary
    assert not covered & _groups(segments.get("failed", "")), summary
    assert re.search(r"\((\d+ passed, )?1 failed, (\d+ skipped, )?\d+ not run\)", segments["head"])


def test_every_selected_test_counts_once(pytester: pytest.Pytester) -> None:
    result = _broken(pytester, "limit_off_by_one", "-k", "pagination")
    outcomes = result.parseoutcomes()
    head = _segments(_summary(result.outlines))["head"]
    total = sum(outcomes.get(k, 0) for k in ("passed", "failed", "skipped", "deselected"))
    assert head.startswith(f"eventstore contract [memory]: {total} tests ("), head


def test_a_setup_error_still_gets_a_summary_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "import pytest\n"
        "from eventstore_contract import StoreContract\n"
        "class TestWrong(StoreContract):\n"
        "    @pytest.fixture\n"
        "    def store_factory(self):\n"
        "        return lambda: 'not a store'\n"
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", "sequence_starts")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["eventstore contract [[]TestWrong: backend unknown[]]: * (1 failed, * not run)*"]
    )
