"""Measure the SQL backends against their raw-driver baselines, as issue 3 asks.

    python backends/sqlalchemy/benchmarks/sql_ratios.py [--events N] [--repeats R]
        [--sqlite-only] [--synchronous full|normal] [--postgres URL]

Runs the harness (``eventstore.bench.run_benchmark``) on a temporary SQLite file
and on PostgreSQL (default: the local ``test`` database, under a throwaway table
prefix that is dropped afterwards), then prints every ratio next to its target.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from eventstore.bench import BenchReport, run_benchmark

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _ratio(report: BenchReport, scenario: str, baseline: str) -> float | None:
    for result in report.results:
        if result.scenario == scenario:
            for compared in result.baselines:
                if compared.name == baseline:
                    return compared.ratio
    return None


def _rate(report: BenchReport, scenario: str, baseline: str | None = None) -> float:
    for result in report.results:
        if result.scenario != scenario:
            continue
        if baseline is None:
            return result.store.events_per_second
        for compared in result.baselines:
            if compared.name == baseline and compared.measurement is not None:
                return compared.measurement.events_per_second
    raise LookupError(f"{scenario} {baseline}")


def _line(label: str, value: float | None, target: float) -> str:
    if value is None:
        return f"  {label:<46} n/a        (target >= {target:g}x)"
    verdict = "ok" if value >= target else "BELOW"
    return f"  {label:<46} {value:6.2f}x   (target >= {target:g}x) {verdict}"


async def sqlite_figures(events: int, repeats: int, synchronous: str) -> list[str]:
    """Run the harness on a temporary SQLite file; lines of ratios against targets."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}?synchronous={synchronous}"
        report = await run_benchmark(
            url, scenarios=["S1", "S2", "S4", "S5"], events=events, repeats=repeats
        )
    raw = "raw sqlite3"
    return [
        f"SQLite, synchronous={synchronous} ({events} events, best of {repeats})",
        _line("S1 vs raw sqlite3", _ratio(report, "S1", raw), 0.25),
        _line("S1 vs eventsourcing sqlite", _ratio(report, "S1", "eventsourcing sqlite"), 1.0),
        _line("S2 vs raw sqlite3 S1", _rate(report, "S2") / _rate(report, "S1", raw), 1.0),
        _line("S4 vs raw sqlite3 executemany", _ratio(report, "S4", raw), 0.5),
        _line("S5 vs raw sqlite3", _ratio(report, "S5", raw), 0.5),
        f"  (events/s: S1 {_rate(report, 'S1'):,.0f}, S2 {_rate(report, 'S2'):,.0f}, "
        f"S4 {_rate(report, 'S4'):,.0f}, S5 {_rate(report, 'S5'):,.0f})",
    ]


async def _drop_prefix(url: str, prefix: str) -> None:
    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
    )
    try:
        await conn.execute(
            f"DROP TABLE IF EXISTS {prefix}events, {prefix}runs, {prefix}schema_version"
        )
    finally:
        await conn.close()


async def postgres_figures(server: str, events: int, repeats: int) -> list[str]:
    """Run the harness on PostgreSQL under a throwaway prefix; lines of ratios."""
    prefix = f"bench_{uuid.uuid4().hex[:8]}_"
    url = f"{server}{'&' if '?' in server else '?'}table_prefix={prefix}"
    try:
        report = await run_benchmark(
            url, scenarios=["S1", "S2", "S4", "S5"], events=events, repeats=repeats
        )
    finally:
        await _drop_prefix(server, prefix)
    raw = "raw asyncpg"
    return [
        f"PostgreSQL ({events} events, best of {repeats})",
        _line("S1 vs raw asyncpg", _ratio(report, "S1", raw), 0.5),
        _line("S2 vs own S1", _rate(report, "S2") / _rate(report, "S1"), 3.0),
        f"  S4 vs raw asyncpg: {_ratio(report, 'S4', raw) or 0:.2f}x, "
        f"S5 vs raw asyncpg: {_ratio(report, 'S5', raw) or 0:.2f}x (no targets)",
        f"  (events/s: S1 {_rate(report, 'S1'):,.0f}, S2 {_rate(report, 'S2'):,.0f}, "
        f"S4 {_rate(report, 'S4'):,.0f}, S5 {_rate(report, 'S5'):,.0f})",
    ]


async def main() -> None:
    """Parse the arguments, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--synchronous", default="full", help="SQLite PRAGMA synchronous")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    args = parser.parse_args()
    lines = await sqlite_figures(args.events, args.repeats, args.synchronous)
    if not args.sqlite_only:
        lines += await postgres_figures(args.postgres, args.events, args.repeats)
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
