#!/usr/bin/env python3
"""Developer entry point: bootstraps ./.venv, then runs a task in it.

    python3 dev.py demo [ARGS]    run `eventstore demo` on the embedded default store
    python3 dev.py test [ARGS]    run the whole test suite (pytest ARGS)
    python3 dev.py lint           ruff check, then ruff format --check
    python3 dev.py format         ruff format --check (ARGS: ruff format arguments)
    python3 dev.py mutation       mutation testing of the rule code (docs/mutation.md)
    python3 dev.py types          mypy --strict on every distribution
    python3 dev.py docs [ARGS]    mkdocs build --strict (ARGS: mkdocs build arguments)
    python3 dev.py wheels         build, check, install and smoke-test every wheel (.ci/wheels)
    python3 dev.py lock [ARGS]    re-resolve uv.lock (--upgrade: newest versions of everything)
    python3 dev.py install        (re)install the workspace into ./.venv
    python3 dev.py run CMD ...    run CMD with ./.venv/bin first on PATH

The first call creates ./.venv with the running interpreter (Python 3.11+), puts
uv in it, and installs every workspace distribution (core, contract suite,
backends, examples) in editable mode with all their extras, at the versions
pinned in uv.lock. Later calls reinstall only when a pyproject.toml or uv.lock
changed, so a fresh clone needs nothing but Python and PyPI.
EVENTSTORE_DEV_VENV=DIR uses DIR instead of ./.venv (tox points it at its envs).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("EVENTSTORE_DEV_VENV") or ROOT / ".venv").absolute()
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".dev-install-stamp"
LOCK = ROOT / "uv.lock"
#: The uv that installs from (and refreshes) uv.lock; bump it together with a lock refresh.
UV = "uv==0.13.9"
#: Distributions this workspace published under older names, removed from an existing
#: venv (the core was `eventstore`, a name PyPI gives to an unrelated project).
RENAMED = {"eventstore": "eventstore-core"}


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
    digest.update(UV.encode())
    for path, extras in members():
        digest.update(str(path.relative_to(ROOT)).encode() + extras.encode())
        digest.update((path / "pyproject.toml").read_bytes())
    if LOCK.exists():
        digest.update(LOCK.read_bytes())
    return digest.hexdigest()


def ensure_venv(force: bool = False) -> None:
    """Create ./.venv and install the workspace unless it is already current."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs before we know the Python
        sys.exit(f"eventstore needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    _create_venv()
    if not force and STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    print("dev.py: installing the workspace from uv.lock (editable) ...", flush=True)
    _ensure_uv()
    # Every member, every extra (the `dev` and `test` extras are what the checks need),
    # at the locked versions. CI refuses a lock that no longer matches the pyproject
    # files (--locked); locally uv brings the lock up to date first, like `dev.py lock`.
    sync = ["sync", "--all-packages", "--all-extras", "--inexact", "-q"]
    if os.environ.get("CI"):
        sync.append("--locked")
    for old, new in RENAMED.items():
        if _installed(old):  # shares files (the `eventstore` script) with its successor
            subprocess.run(_uv("pip", "uninstall", "-q", old), check=True, env=_uv_env())
            sync += ["--reinstall-package", new]
    subprocess.run(_uv(*sync), cwd=ROOT, check=True, env=_uv_env())
    STAMP.write_text(_fingerprint())  # after the sync, which may have updated uv.lock


def _installed(distribution: str) -> bool:
    pattern = f"{distribution.replace('-', '_')}-*.dist-info"
    return any(VENV.glob(f"lib/python*/site-packages/{pattern}")) or any(
        VENV.glob(f"Lib/site-packages/{pattern}")
    )


def _create_venv() -> None:
    if not (BIN / "python").exists():
        print(f"dev.py: creating {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)


def _ensure_uv() -> None:
    if (BIN / "uv").exists():
        check = subprocess.run(_uv("--version"), capture_output=True, text=True, check=False)
        if check.stdout.split()[1:2] == [UV.split("==")[1]]:
            return
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", UV], check=True)


def _uv(*args: str) -> list[str]:
    return [str(BIN / "uv"), *args]


def _uv_env() -> dict[str, str]:
    env = dict(os.environ)
    # uv installs into this venv (not one of its own) with this venv's interpreter.
    env["UV_PROJECT_ENVIRONMENT"] = str(VENV)
    env["UV_PYTHON"] = str(BIN / "python")
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


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
    if task == "lock":
        # Resolving needs no installed workspace, only uv.
        _create_venv()
        _ensure_uv()
        return subprocess.run(_uv("lock", *rest), cwd=ROOT, env=_uv_env(), check=False).returncode
    ensure_venv(force=task == "install")
    if task == "install":
        return 0
    if task == "demo":
        return run([str(BIN / "eventstore"), "demo", *rest])
    if task == "test":
        return run([str(BIN / "python"), "-m", "pytest", *rest])
    if task == "lint":
        return run([str(BIN / "ruff"), "check", ".", *rest]) or run(
            [str(BIN / "ruff"), "format", "--check", "."]
        )
    if task == "mutation":
        return run([str(BIN / "python"), "tools/mutation.py", *rest])
    if task == "format":
        return run([str(BIN / "ruff"), "format", "--check", ".", *rest])
    if task == "types":
        return run([str(BIN / "mypy"), *rest, *_typed_packages()])
    if task == "docs":
        return run([str(BIN / "mkdocs"), "build", "--strict", *rest])
    if task == "wheels":
        return run(["bash", str(ROOT / ".ci" / "wheels"), *rest])
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
