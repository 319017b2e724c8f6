"""What one SQLite append costs in the database: the store against the eventsourcing recorder.

``eventstore bench`` measures S1 end to end: the event loop, the hand-off to a thread,
the SQL and the commit. This script takes the SQL and the commit alone, to show where
the two sides differ:

- **WAL pages**: with automatic checkpoints off, the WAL frames each single-event
  commit adds (each frame is one changed b-tree page; with ``synchronous=full`` the
  commit waits for an fsync of them).
- **µs per append**: the same appends timed on a plain ``sqlite3`` connection in the
  calling thread, no event loop and no thread hand-off, with the store's
  ``synchronous`` (default ``full``) and automatic checkpoints on; interleaved rounds,
  best and median round reported.

The two sides:

- ``store``: the SQLite store's own schema and append job (``BEGIN IMMEDIATE``; read the
  run's last seq and session; insert into the events b-tree and the ``(run_id,
  event_id)`` idempotency index; ``COMMIT``), on a file the store created;
- ``recorder``: the ``eventsourcing`` library's SQLite aggregate recorder schema (one
  ``WITHOUT ROWID`` b-tree keyed by originator id and version, no other index) and its
  insert, with the caller supplying the version, storing the same event JSON.

Usage::

    python backends/sqlalchemy/benchmarks/sqlite_wal_frames.py [--events N] [--rounds K]
        [--synchronous off|normal|full]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from eventstore_sqlalchemy._sqlite import _append_job, _Statements

import eventstore
from eventstore import EventId, RunId
from eventstore._events import encode_event
from eventstore.backend import PendingEvent
from eventstore.bench._workload import workload_events

_WAL_HEADER, _FRAME_HEADER = 32, 24
_WARMUP = 50  # appends before counting: past the first pages of a new table
_RECORDER_DDL = (
    "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, "
    "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version)) WITHOUT ROWID"
)

Append = Callable[[int], None]


def _frames(database: Path) -> int:
    wal = Path(f"{database}-wal")
    if not wal.exists():
        return 0
    with sqlite3.connect(database) as conn:
        page_size: int = conn.execute("PRAGMA page_size").fetchone()[0]
    return (wal.stat().st_size - _WAL_HEADER) // (page_size + _FRAME_HEADER)


def _connect(database: Path, synchronous: str, autocheckpoint: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(f"PRAGMA wal_autocheckpoint={1000 if autocheckpoint else 0}")
    return conn


def _store_side(database: Path, conn: sqlite3.Connection, events: int) -> Append:
    """The store's append job, one transaction per event, on ``conn``."""
    run_id = RunId.new()
    pending = [
        PendingEvent(event, EventId.new(), encode_event(event))
        for event in workload_events(run_id, events)
    ]
    sql = _Statements("eventstore_")
    cursor = conn.cursor()

    def append(index: int) -> None:
        cursor.execute("BEGIN IMMEDIATE")
        _append_job(cursor, sql, run_id, (pending[index],), None)
        cursor.execute("COMMIT")

    return append


def _recorder_side(conn: sqlite3.Connection, events: int) -> Append:
    """The recorder's insert, one transaction per event, on ``conn``."""
    run_id = RunId.new()
    bodies = [encode_event(event).encode() for event in workload_events(run_id, events)]
    conn.execute(_RECORDER_DDL)
    cursor = conn.cursor()
    originator = run_id.hex

    def append(index: int) -> None:
        cursor.execute("BEGIN")
        cursor.execute(
            "INSERT INTO stored_events VALUES (?,?,?,?)",
            (originator, index + 1, "eventstore:event", bodies[index]),
        )
        cursor.execute("COMMIT")

    return append


async def _create_store_file(database: Path) -> None:
    async with eventstore.open_store(f"sqlite:///{database}"):
        pass


def _side(
    name: str, directory: Path, events: int, synchronous: str, autocheckpoint: bool
) -> tuple[Path, sqlite3.Connection, Append]:
    database = directory / f"{name}-{time.monotonic_ns()}.db"
    if name == "store":
        asyncio.run(_create_store_file(database))
    conn = _connect(database, synchronous, autocheckpoint)
    if name == "store":
        return database, conn, _store_side(database, conn, events + _WARMUP)
    return database, conn, _recorder_side(conn, events + _WARMUP)


def pages_per_append(name: str, directory: Path, events: int) -> float:
    """WAL frames one single-event append adds, averaged over ``events`` appends."""
    database, conn, append = _side(name, directory, events, "full", autocheckpoint=False)
    for index in range(_WARMUP):
        append(index)
    before = _frames(database)
    for index in range(_WARMUP, _WARMUP + events):
        append(index)
    frames = (_frames(database) - before) / events
    conn.close()
    return frames


def micros_per_append(name: str, directory: Path, events: int, synchronous: str) -> float:
    """Seconds per append (in µs) of one timed round on a fresh file."""
    _, conn, append = _side(name, directory, events, synchronous, autocheckpoint=True)
    for index in range(_WARMUP):
        append(index)
    started = time.perf_counter()
    for index in range(_WARMUP, _WARMUP + events):
        append(index)
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed / events * 1e6


def main() -> None:
    """Print WAL pages and µs per append for both sides."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--synchronous", default="full", choices=["off", "normal", "full"])
    args = parser.parse_args()
    sides = ("store", "recorder")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        pages = {name: pages_per_append(name, directory, args.events) for name in sides}
        timings: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.rounds):  # interleaved, so both sides see the same load
            for name in sides:
                timings[name].append(
                    micros_per_append(name, directory, args.events, args.synchronous)
                )
    print(
        f"{args.events} single-event appends per round, {args.rounds} rounds, SQL only, "
        f"synchronous={args.synchronous}"
    )
    print(f"{'':10} {'WAL pages':>10} {'best µs':>9} {'median µs':>10}")
    for name in sides:
        best, median = min(timings[name]), statistics.median(timings[name])
        print(f"{name:10} {pages[name]:10.2f} {best:9.1f} {median:10.1f}")


if __name__ == "__main__":
    main()
