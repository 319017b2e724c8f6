#!/usr/bin/env python3
"""Mutation testing of the memory backend and the base class's rule code (issue 11).

    python3 dev.py run python tools/mutation.py [--modules PATH[:FUNC,...] ...] [options]

Runs mutmut 3 (https://mutmut.readthedocs.io) with the conformance suite as the test
command: the contract suite against ``memory://`` plus ``tests/test_guards.py`` and
``tests/test_mutants.py`` (the tests earlier runs asked for), with the suite's ``quick``
hypothesis profile and a fixed hypothesis seed, so that two runs of the same tree give
the same verdicts. Results are triaged in docs/mutation.md.

Nothing in the checkout is touched: the runner copies ``eventstore/``,
``contract_tests/``, ``tests/`` and ``pyproject.toml`` to a temporary directory, writes
mutmut's configuration (a ``setup.cfg``) there, and runs mutmut in it (mutmut itself
works in a ``mutants/`` directory of that copy). The copy is removed at the end
unless ``--keep`` or ``--workdir`` is given. The checkout's own editable installs
(``/path/to/checkout`` and its ``contract_tests`` on ``sys.path``) are taken off
``sys.path`` for the run, so only the mutated copy of ``eventstore`` can be imported.

mutmut is used from the running interpreter if it is installed there; otherwise a
pinned mutmut is installed with pip into a cache directory outside the checkout
(``--tools-dir``, default ``~/.cache/eventstore-mutation/``) and appended to
``sys.path`` of the mutmut process only, so the venv's own pytest, coverage and
plugins are the ones that run.

``--modules`` takes files below ``eventstore/``; ``FILE:f,g`` limits the run to the
mutants of the functions (or methods) named ``f`` and ``g`` of that file. The exit
status is 0 when no mutant survived, 1 when some did, 2 on an error.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = "mutmut==3.8.1"
DEFAULT_MODULES = ["eventstore/memory.py", "eventstore/_guards.py"]
#: The base class's rule code in _store.py (argument checks, batch and import validation).
STORE_RULES = (
    "eventstore/_store.py:_check_limit,_check_seq,_check_id,_check_run_id,_pending,"
    "_event_run_id,_pending_batch,append,append_batch,list_after,_read,import_envelopes,"
    "_copied,_stored_overlap"
)
DEFAULT_TESTS = [
    "contract_tests/tests/test_memory_conformance.py",
    "tests/test_guards.py",
    "tests/test_mutants.py",
]
#: What the test command needs from the checkout (mutmut mutates eventstore/ only).
COPIED = ["eventstore", "contract_tests", "tests", "pyproject.toml"]
IGNORED = shutil.ignore_patterns(
    "__pycache__",
    "*.pyc",
    ".hypothesis",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "mutants",
    "*.egg-info",
    "*.db",
    "*.db-wal",
    "*.db-shm",
)
SEP = "ǁ"  # mutmut's class separator in mangled names: x<SEP>Class<SEP>method__mutmut_N

# Runs mutmut with the checkout taken off sys.path and the copy's contract suite on it.
# argv: tools_dir contract_dir checkout_root mutmut-args...
_BOOT = r"""
import os, sys
tools, contract, root = sys.argv[1:4]
del sys.argv[1:4]
root = os.path.realpath(root)
def _mine(p):
    rp = os.path.realpath(p or ".")
    return rp == root or rp == os.path.join(root, "contract_tests")
sys.path[:] = [contract] + [p for p in sys.path if not _mine(p)]
if tools:
    sys.path.append(tools)
sys.argv[0] = "mutmut"
"""

_RUN = (
    _BOOT
    + r"""
from mutmut.__main__ import cli
cli()
"""
)

# Prints {mutant: {"status": ..., "diff": ...}} (a diff for every mutant not killed).
_COLLECT = (
    _BOOT
    + r"""
import json
from mutmut.__main__ import walk_mutatable_files
from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
out = {}
for path in walk_mutatable_files():
    m = SourceFileMutationData(path=path)
    m.load()
    for key, code in m.exit_code_by_key.items():
        status = status_by_exit_code[code]
        entry = {"status": status, "path": str(path), "duration": m.durations_by_key.get(key)}
        if status != "killed":
            entry["diff"] = get_diff_for_mutant(key, path=path)
        out[key] = entry
print("@@JSON@@" + json.dumps(out))
"""
)


def main() -> int:
    """Copy the tree, run mutmut on it, print the score and the survivors."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--modules",
        nargs="+",
        default=DEFAULT_MODULES,
        metavar="PATH[:FUNC,...]",
        help="files to mutate, optionally limited to some functions "
        f"(default: {' '.join(DEFAULT_MODULES)})",
    )
    parser.add_argument(
        "--store-rules",
        action="store_true",
        help="also mutate the rule functions of eventstore/_store.py (about 5 more minutes)",
    )
    parser.add_argument(
        "--tests",
        nargs="+",
        default=DEFAULT_TESTS,
        metavar="PATH",
        help=f"the test command's test files (default: {' '.join(DEFAULT_TESTS)})",
    )
    parser.add_argument(
        "--profile", default="quick", help="--eventstore-profile of the suite (default: quick)"
    )
    parser.add_argument(
        "--seed", default="0", help="--hypothesis-seed of the test runs (default: 0)"
    )
    parser.add_argument(
        "--max-children", type=int, default=os.cpu_count() or 2, help="parallel mutants"
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop mutmut after this long and report what ran (the rest: 'not checked')",
    )
    parser.add_argument(
        "--workdir", type=Path, help="work in this directory (kept; reruns are incremental)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary copy and print its path"
    )
    parser.add_argument(
        "--json", type=Path, help="also write every mutant's verdict (and diff) as JSON here"
    )
    parser.add_argument(
        "--tools-dir",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        / "eventstore-mutation",
        help="where a missing mutmut is installed (outside the checkout)",
    )
    args = parser.parse_args()

    targets = _parse_modules(args.modules + ([STORE_RULES] if args.store_rules else []))
    tools = _ensure_mutmut(args.tools_dir)
    if args.workdir:
        work = args.workdir.resolve()
        if work == ROOT or ROOT in work.parents:
            parser.error("--workdir must be outside the checkout")
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="eventstore-mutation-"))
    try:
        return _run(args, targets, tools, work)
    finally:
        if args.workdir or args.keep:
            print(f"\nwork directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _parse_modules(specs: list[str]) -> dict[str, list[str]]:
    targets: dict[str, list[str]] = {}
    for spec in specs:
        path, _, funcs = spec.partition(":")
        path = Path(path).as_posix()
        if not path.startswith("eventstore/") or not path.endswith(".py"):
            sys.exit(f"--modules {spec!r}: expected a .py file below eventstore/")
        if not (ROOT / path).is_file():
            sys.exit(f"--modules {spec!r}: no such file in {ROOT}")
        targets.setdefault(path, []).extend(f for f in funcs.split(",") if f)
    return targets


def _ensure_mutmut(tools_dir: Path) -> str:
    """'' when mutmut imports here, else the cache directory it was installed into."""
    if importlib.util.find_spec("mutmut") is not None:
        return ""
    target = tools_dir / MUTMUT.replace("==", "-")
    if not (target / "mutmut").is_dir():
        print(f"installing {MUTMUT} into {target} ...", flush=True)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(target),
            MUTMUT,
        ]
        if subprocess.call(cmd) != 0:
            uv = shutil.which("uv")
            if not uv or subprocess.call(
                [uv, "pip", "install", "--python", sys.executable, "--target", str(target), MUTMUT]
            ):
                sys.exit(f"could not install {MUTMUT}")
    return str(target)


def _copy_tree(work: Path) -> None:
    for name in COPIED:
        src, dst = ROOT / name, work / name
        if dst.exists():
            continue
        if src.is_dir():
            shutil.copytree(src, dst, ignore=IGNORED)
        else:
            shutil.copy2(src, dst)


def _write_config(work: Path, targets: dict[str, list[str]], args: argparse.Namespace) -> None:
    def lines(values: list[str]) -> str:
        return "".join(f"\n    {v}" for v in values)

    pytest_args = [
        "-p",
        "no:cacheprovider",
        f"--eventstore-profile={args.profile}",
        f"--hypothesis-seed={args.seed}",
    ]
    (work / "setup.cfg").write_text(
        "# Written by tools/mutation.py for this run only.\n"
        "[mutmut]\n"
        "source_paths = eventstore\n"
        f"only_mutate ={lines(sorted(targets))}\n"
        "also_copy =\n    contract_tests\n"
        f"pytest_add_cli_args ={lines(pytest_args)}\n"
        f"pytest_add_cli_args_test_selection ={lines(args.tests)}\n"
        "use_git_change_detection = false\n",
        encoding="utf-8",
    )


def _patterns(targets: dict[str, list[str]]) -> list[str]:
    """Name filters (mutmut's) for the FILE:FUNC specs (none: every mutant of the files)."""
    if not any(targets.values()):
        return []
    patterns = []
    for path, funcs in targets.items():
        module = path[: -len(".py")].replace("/", ".")
        if not funcs:
            patterns.append(f"{module}.x*")
        for func in funcs:
            patterns += [f"{module}.x_{func}__mutmut_*", f"{module}.x{SEP}*{SEP}{func}__mutmut_*"]
    return patterns


def _mutmut(
    tools: str, work: Path, code: str, argv: list[str], stdout: int | None = None
) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-c", code, tools, str(work / "contract_tests"), str(ROOT), *argv]
    dropped = ("PYTHONPATH", "EVENTSTORE_HYPOTHESIS_PROFILE", "CI")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.Popen(
        cmd, cwd=work, env=env, text=True, start_new_session=True, stdout=stdout
    )


def _run(args: argparse.Namespace, targets: dict[str, list[str]], tools: str, work: Path) -> int:
    _copy_tree(work)
    _write_config(work, targets, args)
    print(
        f"mutating {', '.join(_describe(targets))}\n"
        f"test command: pytest -x -q {' '.join(args.tests)} -p no:cacheprovider "
        f"--eventstore-profile={args.profile} --hypothesis-seed={args.seed}\n"
        f"in {work}",
        flush=True,
    )

    started = time.monotonic()
    argv = ["run", "--max-children", str(args.max_children), *_patterns(targets)]
    proc = _mutmut(tools, work, _RUN, argv)
    stopped = ""
    try:
        proc.wait(timeout=args.time_limit)
    except subprocess.TimeoutExpired:
        stopped = f"stopped after the --time-limit of {args.time_limit:.0f}s"
    except KeyboardInterrupt:
        stopped = "interrupted"
    if stopped:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    elapsed = time.monotonic() - started
    if proc.returncode and not stopped:
        print(f"\nmutmut failed (exit status {proc.returncode})", file=sys.stderr)
        return 2

    collect = _mutmut(tools, work, _COLLECT, [], stdout=subprocess.PIPE)
    out, _ = collect.communicate()
    if collect.returncode or "@@JSON@@" not in out:
        print(out, file=sys.stderr)
        print("could not read mutmut's results", file=sys.stderr)
        return 2
    results: dict[str, dict[str, object]] = json.loads(out.split("@@JSON@@", 1)[1])
    results = _selected(results, targets)
    for name, entry in results.items():
        if "diff" in entry:
            entry["line"], entry["change"] = _locate(name, str(entry["path"]), str(entry["diff"]))

    if args.json:
        text = json.dumps(results, indent=1, ensure_ascii=False)
        args.json.write_text(text + "\n", encoding="utf-8")
    return _report(results, elapsed, stopped)


def _describe(targets: dict[str, list[str]]) -> list[str]:
    return [f"{p} ({', '.join(f)})" if f else p for p, f in targets.items()]


Results = dict[str, dict[str, object]]


def _selected(results: Results, targets: dict[str, list[str]]) -> Results:
    """The mutants of the --modules specs (mutmut lists every mutant of the files)."""
    from fnmatch import fnmatchcase

    patterns = _patterns(targets)
    if not patterns:
        return results
    return {k: v for k, v in results.items() if any(fnmatchcase(k, p) for p in patterns)}


def _function_span(source: str, func: str, cls: str | None) -> tuple[int, int]:
    tree = ast.parse(source)
    scope: list[ast.stmt] = tree.body
    if cls:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == cls:
                scope = node.body
                break
    for node in scope:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == func:
            return node.lineno, node.end_lineno or node.lineno
    return 1, len(source.splitlines())


def _locate(name: str, path: str, diff: str) -> tuple[int | None, str]:
    """(line in the original file, 'old -> new') of the mutant's first changed line."""
    mangled = name.partition("__mutmut_")[0].rpartition(".")[2]
    if SEP in mangled:
        _, cls, func = mangled.split(SEP)
    else:
        cls, func = None, mangled[2:]
    body = [line for line in diff.splitlines() if not line.startswith(("---", "+++"))]
    removed = [line[1:] for line in body if line.startswith("-")]
    added = [line[1:] for line in body if line.startswith("+")]
    change = (
        " / ".join(r.strip() for r in removed) + "  ->  " + " / ".join(a.strip() for a in added)
    )
    source = (ROOT / path).read_text(encoding="utf-8")
    start, end = _function_span(source, func, cls)
    lines = source.splitlines()
    if not removed:
        return start, change
    # The diff is of the function alone: its old line numbers count from the `def`.
    offset = None
    for line in diff.splitlines():
        hunk = re.match(r"@@ -(\d+)", line)
        if hunk:
            offset = int(hunk.group(1)) - 1
        elif offset is not None and not line.startswith(("---", "+++")):
            if line.startswith("-"):
                break
            if not line.startswith("+"):
                offset += 1
    first = removed[0].strip()
    candidates = [n for n in range(start, end + 1) if lines[n - 1].strip() == first]
    if not candidates:
        return start, change
    guess = start + (offset or 0)
    return min(candidates, key=lambda n: abs(n - guess)), change


def _report(results: dict[str, dict[str, object]], elapsed: float, stopped: str) -> int:
    counts: dict[str, int] = {}
    for entry in results.values():
        counts[str(entry["status"])] = counts.get(str(entry["status"]), 0) + 1
    total = len(results)
    killed, timeout = counts.get("killed", 0), counts.get("timeout", 0)
    checked = total - counts.get("not checked", 0) - counts.get("skipped", 0)
    score = 100.0 * (killed + timeout) / checked if checked else 0.0

    detected = ("killed", "timeout", "not checked")
    survivors = {k: v for k, v in results.items() if v["status"] not in detected}
    print("\n=== surviving mutants (and mutants no test reached) ===")

    def where(name: str) -> tuple[str, int, str]:
        return str(results[name]["path"]), int(results[name].get("line") or 0), name  # type: ignore[call-overload]

    for name in sorted(survivors, key=where):
        entry = results[name]
        print(f"\n--- {entry['path']}:{entry.get('line')}  {name}  [{entry['status']}]")
        print(entry["diff"])
    print("\n=== mutation score ===")
    if stopped:
        print(f"PARTIAL RESULT: {stopped}")
    print(f"mutants:     {total}")
    for status in (
        "killed",
        "survived",
        "timeout",
        "no tests",
        "suspicious",
        "segfault",
        "caught by type check",
        "skipped",
        "not checked",
    ):
        if counts.get(status):
            print(f"{status + ':':<13}{counts[status]}")
    detected_count = killed + timeout
    print(f"score:       {score:.1f}% ((killed + timeout) / checked = {detected_count}/{checked})")
    print(f"wall time:   {elapsed:.0f}s")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
