"""Run the eventstore benchmark harness for several stores and keep the figures.

Usage::

    python benchmarks/run.py                                  # memory:// only
    python benchmarks/run.py memory:// sqlite=sqlite+aiosqlite:///tmp/bench.db \\
        redis=redis://127.0.0.1:6379/0 postgresql=postgresql+asyncpg://postgres@127.0.0.1/test
    python benchmarks/run.py --events 20000 --repeats 5 memory://

Each argument is ``URL`` or ``NAME=URL``; the figures go to
``benchmarks/results/<NAME>.json`` (NAME defaults to the backend name), in the
format of ``eventstore bench --json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from rich.console import Console

from eventstore import EventStoreError
from eventstore._cli.commands.bench import report_table
from eventstore.backend import redact_url
from eventstore.bench import SCENARIOS, run_benchmark

RESULTS = Path(__file__).parent / "results"


def _target(argument: str) -> tuple[str | None, str]:
    name, sep, url = argument.partition("=")
    if sep and "://" not in name:
        return name, url
    return None, argument


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", default=["memory://"], help="URL or NAME=URL")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    console = Console()
    args.out.mkdir(parents=True, exist_ok=True)
    failed = False
    for argument in args.targets:
        name, url = _target(argument)
        console.print(f"[bold]benchmarking {redact_url(url)}[/bold]")
        try:
            report = asyncio.run(
                run_benchmark(
                    url,
                    scenarios=[s.strip().upper() for s in args.scenarios.split(",")],
                    events=args.events,
                    repeats=args.repeats,
                )
            )
        except EventStoreError as exc:
            console.print(f"[red]{redact_url(url)}: {exc}[/red]")
            failed = True
            continue
        console.print(report_table(report))
        if report.bytes_per_event is not None:
            console.print(f"stored bytes per event: {report.bytes_per_event:,.0f}")
        for scenario, error in report.errors:
            console.print(f"[red]{scenario} failed: {error}[/red]")
            failed = True
        target = args.out / f"{name or report.backend}.json"
        target.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        console.print(f"written {target}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
