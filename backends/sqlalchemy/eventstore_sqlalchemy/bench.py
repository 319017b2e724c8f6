"""Raw-driver baselines for ``eventstore bench`` (see :class:`eventstore.bench.RawBaseline`).

Each does the work of the store's scenario with the bare driver and the same
durability settings, in storage of its own that ``close`` removes. Like the store,
the raw baselines keep each event as envelope JSON text (event id, seq, run, time
around the event), so both sides write and JSON-decode the same bytes:

- ``raw sqlite3``: one thread with a sqlite3 connection (WAL, the store's
  ``synchronous``), the store's key and unique index; an append is ``BEGIN
  IMMEDIATE``, read the run's last seq, insert the event, ``COMMIT``; a batch is
  one ``executemany``.
- ``eventsourcing sqlite``: the ``eventsourcing`` library's SQLite aggregate
  recorder inserting one stored event per call (appends of one event only), its
  connections set to the store's ``synchronous``.
- ``raw asyncpg``: one asyncpg connection running the store's transaction shape
  (lock the counter row, insert, bump the counter, commit).
"""

from __future__ import annotations

__all__ = [
    "EventsourcingSQLiteBaseline",
    "RawAsyncpgBaseline",
    "RawSQLiteBaseline",
    "postgres_baselines",
    "sqlite_baselines",
]

import asyncio
import json
import os
import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from eventstore import RunId
from eventstore.backend import format_time, utc_now
from eventstore.bench import RawBaseline

from ._options import resolve

_SQLITE_DDL = (
    "CREATE TABLE IF NOT EXISTS events (run_id TEXT NOT NULL, seq INTEGER NOT NULL, "
    "event_id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (run_id, seq), "
    "UNIQUE (run_id, event_id)) WITHOUT ROWID",
)


def _envelope(event_id: str, seq: int, run: str, event_json: str, stamp: str) -> str:
    """The same text the store keeps per event, so both sides store and decode alike."""
    return (
        f'{{"event_id":"{event_id}","seq":{seq},"run_id":"{run}",'
        f'"session_id":null,"event":{event_json},"emitted_at":"{stamp}"}}'
    )


def _stamp() -> str:
    return format_time(utc_now())


def _side_file(path: str, label: str) -> Path:
    """A file next to the store's, unique to this baseline instance."""
    base = Path(path).resolve()
    return base.with_name(f"{base.name}.{label}-{uuid.uuid4().hex[:8]}.db")


def _remove_sqlite_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


class RawSQLiteBaseline:
    """The store's SQLite work done with ``sqlite3`` on one thread."""

    name = "raw sqlite3"

    def __init__(self, path: Path, synchronous: str) -> None:
        self._path = path
        self._synchronous = synchronous
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="raw-sqlite3")
        self._conn: sqlite3.Connection | None = None

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _open(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        for statement in _SQLITE_DDL:
            conn.execute(statement)
        self._conn = conn

    async def open(self) -> None:
        """Create the baseline's own database file."""
        await self._call(self._open)

    async def close(self) -> None:
        """Close and delete the file."""
        if self._conn is not None:
            await self._call(self._conn.close)
        self._executor.shutdown()
        _remove_sqlite_files(self._path)

    def _append(self, run: str, bodies: list[str]) -> None:
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT seq FROM events WHERE run_id = ? ORDER BY seq DESC LIMIT 1", (run,)
            ).fetchone()
            last = 0 if row is None else row[0]
            stamp = _stamp()
            rows = []
            for offset, body in enumerate(bodies):
                event_id, seq = str(uuid.uuid4()), last + offset + 1
                rows.append((run, seq, event_id, _envelope(event_id, seq, run, body, stamp)))
            if len(rows) == 1:
                conn.execute("INSERT INTO events VALUES (?, ?, ?, ?)", rows[0])
            else:
                conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def append_one(self, run_id: RunId, event_json: str) -> None:
        """One event, one transaction."""
        await self._call(self._append, str(run_id), [event_json])

    async def append_many(self, run_id: RunId, events_json: list[str]) -> None:
        """One batch, one transaction, one ``executemany``."""
        await self._call(self._append, str(run_id), events_json)

    def _read(self, run: str, after_seq: int, limit: int) -> int:
        assert self._conn is not None
        rows = self._conn.execute(
            "SELECT seq, body FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (run, after_seq, limit),
        ).fetchall()
        for _seq, body in rows:
            json.loads(body)
        return len(rows)

    async def read_page(self, run_id: RunId, after_seq: int, limit: int) -> int:
        """One page, each row JSON-decoded."""
        result: int = await self._call(self._read, str(run_id), after_seq, limit)
        return result


class EventsourcingSQLiteBaseline:
    """The ``eventsourcing`` library's SQLite recorder storing one event per call."""

    name = "eventsourcing sqlite"

    def __init__(self, path: Path, synchronous: str) -> None:
        self._path = path
        self._synchronous = synchronous
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="eventsourcing")
        self._recorder: Any = None
        self._datastore: Any = None
        self._versions: dict[RunId, int] = {}

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _open(self) -> None:
        from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteDatastore

        self._datastore = SQLiteDatastore(str(self._path))
        # eventsourcing has no setting for it: give its connections the store's
        # `synchronous`, so both sides pay for the same durability.
        pool = self._datastore.pool
        create = pool._create_connection

        def create_with_pragma() -> Any:
            connection = create()
            connection._sqlite_conn.execute(f"PRAGMA synchronous={self._synchronous}")
            return connection

        pool._create_connection = create_with_pragma
        self._recorder = SQLiteAggregateRecorder(self._datastore)
        self._recorder.create_table()

    async def open(self) -> None:
        """Create the recorder's table in its own file."""
        await self._call(self._open)

    async def close(self) -> None:
        """Close the datastore and delete the file."""
        if self._datastore is not None:
            await self._call(self._datastore.close)
        self._executor.shutdown()
        _remove_sqlite_files(self._path)

    def _insert(self, run_id: RunId, version: int, body: str) -> None:
        from eventsourcing.persistence import StoredEvent

        self._recorder.insert_events(
            [StoredEvent(run_id, version, "eventstore:event", body.encode())]
        )

    async def append_one(self, run_id: RunId, event_json: str) -> None:
        """One stored event with the aggregate's next version."""
        version = self._versions.get(run_id, 0) + 1
        self._versions[run_id] = version
        await self._call(self._insert, run_id, version, event_json)

    async def append_many(self, run_id: RunId, events_json: list[str]) -> None:
        """Not measured: only single appends are compared with eventsourcing."""
        raise NotImplementedError

    async def read_page(self, run_id: RunId, after_seq: int, limit: int) -> int:
        """Not measured: only single appends are compared with eventsourcing."""
        raise NotImplementedError


class RawAsyncpgBaseline:
    """The store's PostgreSQL append transaction on one bare asyncpg connection."""

    name = "raw asyncpg"

    def __init__(self, connect_kwargs: dict[str, Any]) -> None:
        self._kwargs = connect_kwargs
        self._prefix = f"rawbase_{os.getpid()}_{uuid.uuid4().hex[:6]}_"
        self._conn: Any = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Connect and create the baseline's own tables."""
        import asyncpg

        self._conn = await asyncpg.connect(**self._kwargs)
        p = self._prefix
        await self._conn.execute(
            f"CREATE TABLE {p}runs (run_id varchar(36) PRIMARY KEY, last_seq bigint NOT NULL);"
            f"CREATE TABLE {p}events (run_id varchar(36), seq bigint, event_id varchar(36) "
            "NOT NULL, body text NOT NULL, PRIMARY KEY (run_id, seq), UNIQUE (run_id, event_id))"
        )

    async def close(self) -> None:
        """Drop the tables and disconnect."""
        if self._conn is not None:
            p = self._prefix
            await self._conn.execute(f"DROP TABLE IF EXISTS {p}events, {p}runs")
            await self._conn.close()

    async def _append(self, run: str, bodies: list[str]) -> None:
        p = self._prefix
        # One connection: concurrent callers take turns, as on any single connection.
        async with self._lock, self._conn.transaction():
            last = await self._conn.fetchval(
                f"INSERT INTO {p}runs AS t VALUES ($1, 0) ON CONFLICT (run_id) "
                "DO UPDATE SET last_seq = t.last_seq RETURNING t.last_seq",
                run,
            )
            seqs = list(range(last + 1, last + 1 + len(bodies)))
            ids = [str(uuid.uuid4()) for _ in bodies]
            stamp = _stamp()
            texts = [
                _envelope(i, seq, run, body, stamp)
                for i, seq, body in zip(ids, seqs, bodies, strict=True)
            ]
            await self._conn.execute(
                f"WITH ins AS (INSERT INTO {p}events SELECT $1, s, e, b FROM "
                "unnest($2::bigint[], $3::varchar[], $4::text[]) AS u(s, e, b)) "
                f"UPDATE {p}runs SET last_seq = $5 WHERE run_id = $1",
                run,
                seqs,
                ids,
                texts,
                seqs[-1],
            )

    async def append_one(self, run_id: RunId, event_json: str) -> None:
        """One event, one transaction."""
        await self._append(str(run_id), [event_json])

    async def append_many(self, run_id: RunId, events_json: list[str]) -> None:
        """One batch, one transaction."""
        await self._append(str(run_id), events_json)

    async def read_page(self, run_id: RunId, after_seq: int, limit: int) -> int:
        """One page, each row JSON-decoded."""
        async with self._lock:
            rows = await self._conn.fetch(
                f"SELECT seq, body FROM {self._prefix}events WHERE run_id = $1 AND seq > $2 "
                "ORDER BY seq LIMIT $3",
                str(run_id),
                after_seq,
                limit,
            )
        for row in rows:
            json.loads(row[1])
        return len(rows)


def sqlite_baselines(url: str) -> list[RawBaseline]:
    """Baselines for a ``sqlite://`` store URL: raw sqlite3 and eventsourcing."""
    target = resolve(url, {}, backend="sqlite")
    baselines: list[RawBaseline] = [
        RawSQLiteBaseline(_side_file(target.sqlite_path, "raw"), target.options.synchronous)
    ]
    try:
        import eventsourcing  # noqa: F401
    except ImportError:  # the `bench` extra is not installed
        return baselines
    baselines.append(
        EventsourcingSQLiteBaseline(
            _side_file(target.sqlite_path, "es"), target.options.synchronous
        )
    )
    return baselines


def postgres_baselines(url: str) -> list[RawBaseline]:
    """Baselines for a ``postgresql://`` store URL: raw asyncpg."""
    target = resolve(url, {}, backend="postgresql")
    engine_url = target.engine_url
    kwargs = {
        "host": engine_url.host,
        "port": engine_url.port,
        "user": engine_url.username,
        "password": engine_url.password,
        "database": engine_url.database,
    }
    return [RawAsyncpgBaseline({k: v for k, v in kwargs.items() if v is not None})]
