"""How many WAL pages one SQLite append writes: the store against the eventsourcing recorder.

With ``synchronous=full`` every commit waits for an fsync of the WAL, and what that fsync
costs grows with the bytes the commit wrote, one page per b-tree page it changed. This
script appends the benchmark workload's events one per transaction, with automatic
checkpoints off, and counts the WAL frames each commit added:

- ``store``: the SQLite store itself (``sqlite:///`` in a temporary directory);
- ``recorder``: the ``eventsourcing`` library's SQLite aggregate recorder schema (a rowid
  table with a primary key on originator id and version), inserting the same event JSON.

Usage: ``python benchmarks/sqlite_wal_frames.py [--events N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
from pathlib import Path

from eventstore_sqlalchemy import SQLiteEventStore

import eventstore
from eventstore import RunId
from eventstore.bench._workload import workload_events, workload_json

_WAL_HEADER, _FRAME_HEADER = 32, 24


def _frames(database: Path, page_size: int) -> int:
    wal = Path(f"{database}-wal")
    size = wal.stat().st_size if wal.exists() else _WAL_HEADER
    return (size - _WAL_HEADER) // (page_size + _FRAME_HEADER)


def _page_size(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        size: int = conn.execute("PRAGMA page_size").fetchone()[0]
    return size


async def store_frames(directory: Path, events: int) -> float:
    """WAL frames per single-event append of the SQLite store."""
    database = directory / "store.db"
    run_id = RunId.new()
    workload = workload_events(run_id, events + 50)
    async with eventstore.open_store(f"sqlite:///{database}") as store:
        # Checkpoints would reset the WAL mid-count; a side connection turns them off
        # for the file (the setting is per connection, so it is set on the writer's).
        assert isinstance(store, SQLiteEventStore)
        writer, _ = store._workers()
        await writer.run(lambda cur: cur.execute("PRAGMA wal_autocheckpoint=0"))
        for event in workload[:50]:  # past the first pages of a new table
            await store.append(event)
        page_size = _page_size(database)
        before = _frames(database, page_size)
        for event in workload[50:]:
            await store.append(event)
        return (_frames(database, page_size) - before) / events


def recorder_frames(directory: Path, events: int) -> float:
    """WAL frames per single-event insert with the eventsourcing recorder's schema."""
    database = directory / "recorder.db"
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute(
        "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, "
        "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))"
    )
    run_id = RunId.new()
    bodies = workload_json(run_id, events + 50)
    page_size = _page_size(database)
    before = 0
    for version, body in enumerate(bodies, 1):
        if version == 51:
            before = _frames(database, page_size)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO stored_events VALUES (?, ?, ?, ?)",
            (run_id.hex, version, "eventstore:event", body.encode()),
        )
        conn.execute("COMMIT")
    frames = (_frames(database, page_size) - before) / events
    conn.close()
    return frames


def main() -> None:
    """Print WAL frames (pages) per append for both sides."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    events = parser.parse_args().events
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        store = asyncio.run(store_frames(directory, events))
        recorder = recorder_frames(directory, events)
        page_size = _page_size(directory / "store.db")
    print(f"WAL pages of {page_size} bytes written per single-event append ({events} appends):")
    print(f"  store     {store:.2f}")
    print(f"  recorder  {recorder:.2f}")


if __name__ == "__main__":
    main()
