"""What the read guard costs: S5 (a whole run read in pages of 100) with and without it.

Usage::

    python benchmarks/guard_cost.py memory:// sqlite+aiosqlite:///tmp/guard.db

For each URL it fills one run (``--events``, default 5,000) and reads it back in pages
``--rounds`` times with the base class's page check and as many times with the check
replaced by a no-op, alternating, in one process; it prints the median of each and
the difference. Issue target: at most 5% of S5 on memory and SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import eventstore._store as store_module
from eventstore import EventStore, RunId, open_store
from eventstore._guards import check_page
from eventstore.bench._workload import workload_events

PAGE = 100


async def _read_all(store: EventStore, run_id: RunId) -> float:
    start = time.perf_counter()
    after = 0
    while page := await store.list_after(run_id, after, PAGE):
        after = page[-1].seq
    return time.perf_counter() - start


def _no_check(*args: object, **kwargs: object) -> None:
    return None


async def measure(url: str, events: int, rounds: int) -> tuple[float, float]:
    """Median seconds to read the run with the guard and without it."""
    # What eventstore._store calls (imported there from _guards), swapped below.
    real: Callable[..., Any] = check_page
    with_guard: list[float] = []
    without: list[float] = []
    async with open_store(url) as store:
        run_id = RunId.new()
        batch = workload_events(run_id, events)
        for i in range(0, events, 1000):
            await store.append_batch(batch[i : i + 1000])
        await _read_all(store, run_id)  # warm caches once
        try:
            for round_ in range(rounds):
                # Alternate which goes first: the second read of a pair finds the
                # driver's threads and caches warmer.
                for guarded in (True, False) if round_ % 2 else (False, True):
                    store_module.check_page = real if guarded else _no_check  # type: ignore[attr-defined]
                    (with_guard if guarded else without).append(await _read_all(store, run_id))
        finally:
            store_module.check_page = real  # type: ignore[attr-defined]
            if "memory" not in url:
                await store.delete_run(run_id)
    return statistics.median(with_guard), statistics.median(without)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("urls", nargs="*", default=["memory://"])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    for url in args.urls:
        guarded, bare = asyncio.run(measure(url, args.events, args.rounds))
        cost = (guarded - bare) / bare * 100
        print(
            f"{url}: S5 read of {args.events} events, median of {args.rounds}: "
            f"{guarded * 1000:.1f} ms with the guard, {bare * 1000:.1f} ms without "
            f"({cost:+.1f}%)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
