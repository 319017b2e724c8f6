"""The SQLite store: ``sqlite:///path`` and ``sqlite+aiosqlite:///path``.

Appends run on one writer thread (see :mod:`._worker`): one job per append, all its
statements in one function, concurrent appends committed together. Reads run on a
second thread with its own connection; WAL mode lets it read while the writer
writes. Other processes share the file safely: ``BEGIN IMMEDIATE`` serializes
writers, and a locked database is retried until ``lock_timeout_s``.
"""

from __future__ import annotations

__all__ = ["SQLiteEventStore"]

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from eventstore import (
    ConcurrencyError,
    EventEnvelope,
    IdempotencyConflictError,
    RunId,
    SessionId,
)
from eventstore.backend import ImportBatch, PendingEvent, Stamped, stamp

from ._base import SQLEventStore
from ._codec import decode_row, decode_rows, split_time, type_column
from ._options import SQLTarget
from ._worker import SQLiteWorker, WorkerSettings

# SQLite's default limit on host parameters is 32766; stay far below it.
_LOOKUP_CHUNK = 500
# The live subscribers' poller asks for the last seqs of up to this many runs per
# statement, padded to a power of two so that a handful of statements are prepared.
_LAST_SEQS_CHUNK = 512


class _Statements:
    """The hand-written SQL of the hot paths, for one table prefix."""

    def __init__(self, prefix: str) -> None:
        events, runs = f"{prefix}events", f"{prefix}runs"
        self.events = events
        self.runs = runs
        # The run's last event: its seq and session (a primary-key probe).
        self.select_last = (
            f"SELECT seq, session_id FROM {events} WHERE run_id = ? ORDER BY seq DESC LIMIT 1"
        )
        self.register_run = (
            f"INSERT INTO {runs} (run_id, session_id) VALUES (?, ?) "
            "ON CONFLICT (run_id) DO UPDATE SET session_id = excluded.session_id"
        )
        self.delete_after = f"DELETE FROM {events} WHERE run_id = ? AND seq > ?"
        self.lookup_one = (
            f"SELECT event_id, seq, envelope FROM {events} WHERE run_id = ? AND event_id = ?"
        )
        self.insert_event = (
            f"INSERT INTO {events} (run_id, seq, event_id, event_type, session_id, "
            "emitted_us, emitted_ns, envelope) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        )
        self.list_after = (
            f"SELECT seq, envelope FROM {events} WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        )
        self.last_seq = f"SELECT max(seq) FROM {events} WHERE run_id = ?"
        self.delete_events = f"DELETE FROM {events} WHERE run_id = ?"
        self.delete_run = f"DELETE FROM {runs} WHERE run_id = ?"
        self._last_seqs: dict[int, str] = {}

    def last_seqs(self, count: int) -> str:
        """The last seq of ``count`` runs: one primary-key probe each, like ``last_seq``.

        Not ``max(seq) ... WHERE run_id IN (...) GROUP BY run_id``, which reads every
        row of those runs.
        """
        statement = self._last_seqs.get(count)
        if statement is None:
            keys = ", ".join(["(?)"] * count)
            statement = self._last_seqs[count] = (
                f"WITH k(run_id) AS (VALUES {keys}) SELECT k.run_id, "
                f"(SELECT max(seq) FROM {self.events} AS e WHERE e.run_id = k.run_id) FROM k"
            )
        return statement

    def lookup_many(self, count: int) -> str:
        marks = ", ".join("?" * count)
        return (
            f"SELECT event_id, seq, envelope FROM {self.events} "
            f"WHERE run_id = ? AND event_id IN ({marks})"
        )


@dataclass(frozen=True, slots=True)
class _Stored:
    rows: list[tuple[int, str]]  # (seq, envelope JSON) in the order of the batch


def _lookup(
    cur: sqlite3.Cursor, sql: _Statements, run: str, ids: list[str]
) -> dict[str, tuple[int, str]]:
    if len(ids) == 1:
        rows = cur.execute(sql.lookup_one, (run, ids[0])).fetchall()
    else:
        rows = []
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = ids[start : start + _LOOKUP_CHUNK]
            rows.extend(cur.execute(sql.lookup_many(len(chunk)), (run, *chunk)).fetchall())
    return {row[0]: (row[1], row[2]) for row in rows}


def _stored_or_conflict(
    cur: sqlite3.Cursor, sql: _Statements, run_id: RunId, ids: list[str]
) -> _Stored | None:
    """The stored rows if every id is stored, ``None`` if none is, else a conflict."""
    stored = _lookup(cur, sql, str(run_id), ids)
    if not stored:
        return None
    if len(stored) == len(ids):
        return _Stored([stored[i] for i in ids])
    raise IdempotencyConflictError.partial_batch(run_id=run_id, stored=len(stored), total=len(ids))


def _append_job(
    cur: sqlite3.Cursor,
    sql: _Statements,
    run_id: RunId,
    events: Sequence[PendingEvent],
    expected_seq: int | None,
) -> Stamped | _Stored:
    """One append, on the writer thread, inside the group's transaction.

    The common case is two statements: read the run's last seq and session (the
    write lock is held, so no one else appends meanwhile), insert. Event ids are
    checked by the unique index rather than looked up first: on a duplicate this
    job's rows are removed again and the stored events returned. A refusal leaves
    nothing written, so the rest of the group is unaffected.
    """
    run = str(run_id)
    ids = [str(p.event_id) for p in events]
    row = cur.execute(sql.select_last, (run,)).fetchone()
    last, session = (0, None) if row is None else row
    if expected_seq is not None and expected_seq != last:
        stored = _stored_or_conflict(cur, sql, run_id, ids)  # ids win over expected_seq
        if stored is not None:
            return stored
        raise ConcurrencyError(run_id=run_id, expected_seq=expected_seq, actual_seq=last)
    before = None if session is None else SessionId.parse(session)
    stamped = stamp(run_id, events, last_seq=last, session_id=before)
    micros, nanos = split_time(stamped.emitted_at)
    rows = [
        (
            run,
            seq,
            event_id,
            type_column(pending.event.event_type),
            None if session_id is None else str(session_id),
            micros,
            nanos,
            text,
        )
        for seq, (event_id, pending, session_id, text) in enumerate(
            zip(ids, events, stamped.session_ids, stamped.texts(), strict=True), last + 1
        )
    ]
    try:
        if len(rows) == 1:
            cur.execute(sql.insert_event, rows[0])
        else:
            cur.executemany(sql.insert_event, rows)
    except sqlite3.IntegrityError:
        cur.execute(sql.delete_after, (run, last))
        stored = _stored_or_conflict(cur, sql, run_id, ids)
        if stored is None:
            raise  # not an event id after all: the group is rolled back and replayed
        return stored
    current = stamped.session_after
    if last == 0 or current != before:
        cur.execute(sql.register_run, (run, None if current is None else str(current)))
    return stamped


def _read_page(
    cur: sqlite3.Cursor, sql: _Statements, run: str, after_seq: int, limit: int
) -> list[tuple[int, str]]:
    return cur.execute(sql.list_after, (run, after_seq, limit)).fetchall()


def _read_last_seq(cur: sqlite3.Cursor, sql: _Statements, run: str) -> int:
    (last,) = cur.execute(sql.last_seq, (run,)).fetchone()
    return 0 if last is None else int(last)


def _read_last_seqs(cur: sqlite3.Cursor, sql: _Statements, runs: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for start in range(0, len(runs), _LAST_SEQS_CHUNK):
        chunk = runs[start : start + _LAST_SEQS_CHUNK]
        size = 1 << (len(chunk) - 1).bit_length()  # padded with the last id again
        chunk += [chunk[-1]] * (size - len(chunk))
        for run, last in cur.execute(sql.last_seqs(size), chunk):
            out[run] = 0 if last is None else int(last)
    return out


def _import_job(cur: sqlite3.Cursor, sql: _Statements, batch: ImportBatch) -> None:
    """Store copied envelopes verbatim if the run still ends at ``expected_seq``."""
    run_id, expected_seq = batch.run_id, batch.expected_seq
    run = str(run_id)
    row = cur.execute(sql.select_last, (run,)).fetchone()
    last, session = (0, None) if row is None else row
    if last != expected_seq:
        raise ConcurrencyError(run_id=run_id, expected_seq=expected_seq, actual_seq=last)
    rows = [
        (
            run,
            envelope.seq,
            str(envelope.event_id),
            type_column(envelope.event.event_type),
            None if envelope.session_id is None else str(envelope.session_id),
            *split_time(envelope.emitted_at),
            text,
        )
        for envelope, text in zip(batch.envelopes, batch.texts, strict=True)
    ]
    try:
        cur.executemany(sql.insert_event, rows)
    except sqlite3.IntegrityError:
        cur.execute(sql.delete_after, (run, last))
        raise IdempotencyConflictError.copied_id_taken(run_id=run_id) from None
    current = rows[-1][4]
    if last == 0 or current != session:
        cur.execute(sql.register_run, (run, current))


def _delete_job(cur: sqlite3.Cursor, sql: _Statements, run: str) -> int:
    removed = cur.execute(sql.delete_events, (run,)).rowcount
    cur.execute(sql.delete_run, (run,))
    return int(removed)


class SQLiteEventStore(SQLEventStore):
    """An event store in one SQLite file, shared safely by threads and processes."""

    backend_name: ClassVar[str] = "sqlite"
    dialect: ClassVar[str] = "sqlite"

    def __init__(self, target: SQLTarget) -> None:
        super().__init__(target)
        self._sql = _Statements(self._tables.prefix)
        self._writer: SQLiteWorker | None = None
        self._reader: SQLiteWorker | None = None

    async def _do_open(self) -> None:
        await self._open_engine()
        opts = self._target.options
        settings = WorkerSettings(
            path=self._target.sqlite_path,
            synchronous=opts.synchronous,
            busy_timeout_ms=opts.busy_timeout_ms,
            lock_timeout_s=opts.lock_timeout_s,
            group_max=opts.group_commit_max,
        )
        self._writer = SQLiteWorker(settings, name="eventstore-sqlite-writer", transactional=True)
        self._reader = SQLiteWorker(settings, name="eventstore-sqlite-reader", transactional=False)
        try:
            await self._writer.start()
            await self._reader.start()
        except BaseException:
            await self._do_close()
            raise

    async def _do_close(self) -> None:
        workers = [w for w in (self._writer, self._reader) if w is not None]
        self._writer = self._reader = None
        # Each thread finishes the jobs it has accepted, then ends; the waiting for
        # that runs to its end even if close() is cancelled.
        for worker in workers:
            worker.request_stop()
        await self._release_surely(self._release(workers))

    async def _release(self, workers: list[SQLiteWorker]) -> None:
        try:
            for worker in workers:
                await worker.stop()
        finally:
            await self._close_engine()

    def _workers(self) -> tuple[SQLiteWorker, SQLiteWorker]:
        if self._writer is None or self._reader is None:
            self._require_open()
            raise AssertionError("workers missing while open")
        return self._writer, self._reader

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        writer, _ = self._workers()
        result = await writer.run(_append_job, self._sql, run_id, events, expected_seq)
        if type(result) is _Stored:
            return [decode_row(run_id, seq, text) for seq, text in result.rows]
        assert isinstance(result, Stamped)
        return result.envelopes()

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        _, reader = self._workers()
        rows = await reader.run(_read_page, self._sql, str(run_id), after_seq, limit)
        return decode_rows(run_id, rows)

    async def _last_seq(self, run_id: RunId) -> int:
        _, reader = self._workers()
        return await reader.run(_read_last_seq, self._sql, str(run_id))

    async def _last_seqs(self, run_ids: Sequence[RunId]) -> dict[RunId, int]:
        # The live subscribers' poller, every round: one job, one statement per 512 runs.
        _, reader = self._workers()
        runs = {str(run_id): run_id for run_id in run_ids}
        found = await reader.run(_read_last_seqs, self._sql, list(runs))
        return {runs[run]: last for run, last in found.items() if run in runs}

    async def _import(self, batch: ImportBatch) -> None:
        writer, _ = self._workers()
        await writer.run(_import_job, self._sql, batch)

    async def _delete_run(self, run_id: RunId) -> int:
        writer, _ = self._workers()
        return await writer.run(_delete_job, self._sql, str(run_id))
