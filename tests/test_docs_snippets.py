"""Every code block of the docs runs: README.md and docs/**/*.md, one test per block.

A fenced ``python`` block is written to a file in a fresh temporary directory and run
there with the venv's interpreter, in a process of its own, with ``EVENTSTORE_URL``
set to ``memory://`` (a block that names a SQLite file creates it in that directory).
It passes when it exits with status 0.

A block that cannot run on its own says so in the page, in an HTML comment on the
line right before its fence (invisible on the site)::

    <!-- snippet: skip REASON -->      not run; reported as a skip with the reason
    <!-- snippet: compile REASON -->   only compiled (top-level await allowed)
    <!-- snippet: file PATH -->        a part of the file PATH of an example package

Blocks marked ``file`` (of any language) are put together, in page order, into a
package in a temporary directory: :func:`test_example_package_builds_and_passes`
builds it with pip, offline (``--no-build-isolation --no-index``, so the build
backend its ``pyproject.toml`` names must be installed in this environment), installs
the wheel into a directory of its own and runs the package's own tests from it: for
docs/writing-a-backend.md, the whole conformance suite against the page's backend.

Keep ``skip`` and ``compile`` markers rare and say why; prefer a block that runs.
Pages another team owns may not carry markers yet: :data:`UNMARKED` lists their
blocks that need one, with the reason, until the page itself says it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PYTHON_LANGS = frozenset({"python", "py", "python3"})
KINDS = frozenset({"skip", "compile", "file"})
#: Seconds one block, or one example package's tests, may take.
TIMEOUT = 600

_MARKER = re.compile(r"^\s*<!--\s*snippet:\s*(?P<kind>\S+)\s*(?P<arg>.*?)\s*-->\s*$")
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")

#: Blocks in pages owned by other teams that need a marker the page does not carry
#: yet: (page, first line of the block) -> (kind, reason). A marker in the page wins.
UNMARKED: dict[tuple[str, str], tuple[str, str]] = {}


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str  # relative to the repository root
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    kind: str  # "run", "skip", "compile" or "file"
    arg: str  # the reason, or the file path

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def parse_page(path: Path) -> list[Block]:
    """The fenced blocks of a markdown page, with their markers."""
    page = path.relative_to(ROOT).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence, indent = opening.group("fence"), len(opening.group("indent"))
        end = index + 1
        while end < len(lines) and not (
            lines[end].strip().startswith(fence) and not lines[end].strip().strip(fence[0])
        ):
            end += 1
        body = [
            line[indent:] if line[:indent].isspace() else line for line in lines[index + 1 : end]
        ]
        kind, arg = "run", ""
        previous = index - 1
        while previous >= 0 and not lines[previous].strip():
            previous -= 1
        marker = _MARKER.match(lines[previous]) if previous >= 0 else None
        code = "\n".join(body) + "\n"
        if marker is not None:
            kind, arg = marker.group("kind"), marker.group("arg")
        else:
            first = next((line.strip() for line in body if line.strip()), "")
            kind, arg = UNMARKED.get((page, first), (kind, arg))
        blocks.append(Block(page, index + 1, opening.group("lang").lower(), code, kind, arg))
        index = end + 1
    return blocks


ALL_BLOCKS = [block for page in PAGES for block in parse_page(page)]
PYTHON_BLOCKS = [b for b in ALL_BLOCKS if b.lang in PYTHON_LANGS and b.kind != "file"]
PACKAGES: dict[str, list[Block]] = defaultdict(list)
for _block in ALL_BLOCKS:
    if _block.kind == "file":
        PACKAGES[_block.page].append(_block)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "EVENTSTORE_"))}
    # The services' URLs and CI switches stay; the store URL is the test's choice.
    env.update({k: v for k, v in os.environ.items() if k.startswith("EVENTSTORE_TEST_")})
    if "EVENTSTORE_HYPOTHESIS_PROFILE" in os.environ:
        env["EVENTSTORE_HYPOTHESIS_PROFILE"] = os.environ["EVENTSTORE_HYPOTHESIS_PROFILE"]
    env["EVENTSTORE_URL"] = "memory://"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


def test_pages_have_python_blocks() -> None:
    """The collection itself works: the pages hold runnable blocks."""
    assert len([b for b in PYTHON_BLOCKS if b.kind == "run"]) >= 10


def test_markers_are_well_formed() -> None:
    """Every marker names a known kind, has its argument, and precedes a block."""
    problems = []
    for path in PAGES:
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if not re.match(r"\s*<!--\s*snippet", line):
                continue
            marker = _MARKER.match(line)
            where = f"{path.relative_to(ROOT).as_posix()}:{number}"
            if marker is None or marker.group("kind") not in KINDS:
                problems.append(f"{where}: not '<!-- snippet: skip|compile|file ARG -->'")
                continue
            if not marker.group("arg"):
                problems.append(
                    f"{where}: a {marker.group('kind')} marker needs its reason or path"
                )
            following = next((ln for ln in lines[number:] if ln.strip()), "")
            if not _FENCE.match(following):
                problems.append(f"{where}: the marker is not right before a fenced block")
    for block in ALL_BLOCKS:
        if block.kind in ("skip", "compile") and block.lang not in PYTHON_LANGS:
            problems.append(f"{block.where}: {block.kind} markers are for python blocks")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[b.where for b in PYTHON_BLOCKS])
def test_snippet(block: Block, tmp_path: Path) -> None:
    """The block runs to its end (or, if marked so, compiles, or is skipped with why)."""
    if block.kind == "skip":
        pytest.skip(f"{block.where}: {block.arg}")
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if block.kind == "compile" else 0
    compile(block.code, block.where, "exec", flags=flags)
    if block.kind == "compile":
        return
    assert block.kind == "run", f"{block.where}: unknown marker {block.kind!r}"
    script = tmp_path / "snippet.py"
    script.write_text(block.code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, (
        f"{block.where} exited with status {result.returncode}\n"
        f"--- stdout\n{_tail(result.stdout)}\n--- stderr\n{_tail(result.stderr)}"
    )


def _write_package(blocks: list[Block], root: Path) -> None:
    parts: dict[str, list[str]] = defaultdict(list)
    for block in blocks:
        parts[block.arg].append(block.code)
    for name, codes in parts.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n\n".join(code.rstrip("\n") for code in codes) + "\n", encoding="utf-8")
        if target.suffix == ".py":
            compile(target.read_text(encoding="utf-8"), f"{blocks[0].page}: {name}", "exec")
    # The layouts show the package's __init__.py as empty, and py.typed.
    for module in list(root.rglob("*.py")):
        package = module.parent
        if package != root and package.name != "tests" and not (package / "__init__.py").exists():
            (package / "__init__.py").write_text("", encoding="utf-8")
            (package / "py.typed").write_text("", encoding="utf-8")


def _pip(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        cwd=cwd,
        # No configured index or find-links: the build must need nothing from outside.
        env=_env(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1"),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.mark.parametrize("page", sorted(PACKAGES))
def test_example_package_builds_and_passes(page: str, tmp_path: Path) -> None:
    """The page's package builds into a wheel offline, installs, and its tests pass."""
    package = tmp_path / "package"
    _write_package(PACKAGES[page], package)
    pyproject = tomllib.loads((package / "pyproject.toml").read_text(encoding="utf-8"))
    backend = pyproject["build-system"]["build-backend"]
    for field in ("name", "version", "dependencies", "entry-points"):
        assert field in pyproject["project"], f"{page}: pyproject.toml has no project.{field}"
    if importlib.util.find_spec(backend.split(".")[0]) is None:
        reason = (
            f"{page}: build backend {backend!r} is not installed in this environment and "
            "the build runs offline (pip --no-build-isolation --no-index); the dev extra "
            "installs it"
        )
        if os.environ.get("EVENTSTORE_REQUIRE_SERVICES") == "1":  # set by .ci/run
            pytest.fail(reason)
        pytest.skip(reason)
    wheel = _pip(
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        "dist",
        str(package),
        cwd=tmp_path,
    )
    assert wheel.returncode == 0, f"pip wheel failed:\n{_tail(wheel.stdout)}\n{_tail(wheel.stderr)}"
    (built,) = (tmp_path / "dist").glob("*.whl")
    site = tmp_path / "site"
    install = _pip(
        "install", "--no-deps", "--no-index", "--target", str(site), str(built), cwd=tmp_path
    )
    assert install.returncode == 0, f"pip install failed:\n{_tail(install.stderr)}"
    entry_points = next(site.glob("*.dist-info")) / "entry_points.txt"
    assert "[eventstore]" in entry_points.read_text(encoding="utf-8")

    # The installed wheel, not the sources: run from elsewhere with the wheel on the path.
    elsewhere = tmp_path / "run"
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(package / "tests"), "-q", "-p", "no:cacheprovider"],
        cwd=elsewhere,
        env=_env(PYTHONPATH=str(site)),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, (
        f"{page}: the example package's tests failed\n"
        f"--- stdout\n{_tail(result.stdout, 120)}\n--- stderr\n{_tail(result.stderr)}"
    )


@pytest.mark.parametrize(
    "module", ["eventstore", "eventstore.errors", "eventstore.events", "eventstore.backend"]
)
def test_reference_names_every_public_name(module: str) -> None:
    """docs/reference.md names (in backticks) every name of the public modules."""
    page = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([A-Za-z_][\w.]*)(?:\(.*?\))?`", page))
    missing = sorted(set(importlib.import_module(module).__all__) - named)
    assert not missing, f"docs/reference.md does not name {module}'s {missing}"
