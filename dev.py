#!/usr/bin/env python3
"""Developer entry point: bootstraps ./.venv, then runs a task in it.

    python3 dev.py demo [ARGS]    run `eventstore demo` on the embedded default store
    python3 dev.py test [ARGS]    run the whole test suite (pytest ARGS)
    python3 dev.py lint           ruff check
    python3 dev.py types          mypy --strict on every distribution
    python3 dev.py install        (re)install the workspace into ./.venv
    python3 dev.py run CMD ...    run CMD with ./.venv/bin first on PATH

The first call creates ./.venv with the running interpreter (Python 3.11+) and
installs every workspace distribution (core, contract suite, backends, examples)
in editable mode with its test extras. Later calls reinstall only when a
pyproject.toml changed, so a fresh clone needs nothing but Python and PyPI.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".dev-install-stamp"


def members() -> list[tuple[Path, str]]:
    """Workspace distributions and the extras their tests need, core first."""
    found: list[tuple[Path, str]] = [(ROOT, "[dev]")]
    for pattern in ("contract_tests", "backends/*", "examples/*"):
        for path in sorted(ROOT.glob(pattern)):
            if (path / "pyproject.toml").is_file():
                found.append((path, "[test]" if _has_extra(path, "test") else ""))
    return found


def _has_extra(path: Path, extra: str) -> bool:
    text = (path / "pyproject.toml").read_text(encoding="utf-8")
    return f"\n{extra} = [" in text


def _fingerprint() -> str:
    digest = hashlib.sha256(sys.version.encode())
    for path, extras in members():
        digest.update(str(path.relative_to(ROOT)).encode() + extras.encode())
        digest.update((path / "pyproject.toml").read_bytes())
    return digest.hexdigest()


def ensure_venv(force: bool = False) -> None:
    """Create ./.venv and install the workspace unless it is already current."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs before we know the Python
        sys.exit(f"eventstore needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    python = BIN / "python"
    if not python.exists():
        print(f"dev.py: creating {VENV.relative_to(ROOT)} ...", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    fingerprint = _fingerprint()
    if not force and STAMP.exists() and STAMP.read_text() == fingerprint:
        return
    print("dev.py: installing the workspace (editable) ...", flush=True)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "-U", "pip>=24"], check=True)
    args: list[str] = []
    for path, extras in members():
        args += ["-e", f"{path}{extras}"]
    subprocess.run([*pip, "install", *args], check=True)
    STAMP.write_text(fingerprint)


def run(cmd: list[str]) -> int:
    """Run ``cmd`` with the venv's bin directory first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV)
    return subprocess.run(cmd, cwd=ROOT, env=env, check=False).returncode


def main(argv: list[str]) -> int:
    """Dispatch the task named by ``argv[0]``."""
    task, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if task in ("help", "-h", "--help"):
        print(__doc__)
        return 0
    ensure_venv(force=task == "install")
    if task == "install":
        return 0
    if task == "demo":
        return run([str(BIN / "eventstore"), "demo", *rest])
    if task == "test":
        return run([str(BIN / "python"), "-m", "pytest", *rest])
    if task == "lint":
        return run([str(BIN / "ruff"), "check", ".", *rest])
    if task == "types":
        return run([str(BIN / "mypy"), *rest, *_typed_packages()])
    if task == "run":
        return run(rest)
    print(f"dev.py: unknown task {task!r}\n{__doc__}", file=sys.stderr)
    return 2


def _typed_packages() -> list[str]:
    packages = ["eventstore"]
    for path, _ in members()[1:]:
        for child in sorted(path.iterdir()):
            if (child / "py.typed").exists():
                packages.append(str(child.relative_to(ROOT)))
    return packages


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
