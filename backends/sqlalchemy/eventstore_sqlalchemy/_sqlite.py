"""The SQLite store: ``sqlite:///path`` and ``sqlite+aiosqlite:///path``.

Appends run on one writer thread (see :mod:`._worker`): one job per append, all its
statements in one function, concurrent appends committed together. Reads run on a
second thread with its own connection; WAL mode lets it read while the writer
writes. Other processes share the file safely: ``BEGIN IMMEDIATE`` serializes
writers, and a locked database is retried until ``lock_timeout_s``.
"""

from __future__ import annotations

__all__ = ["SQLiteEventStore"]

import asyncio
import contextlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from eventstore import ConcurrencyError, IdempotencyConflictError, RunId, SessionId
from eventstore.backend import (
    Backdoor,
    EventEnvelope,
    PendingEvent,
    RunNotifier,
    envelope_json,
    new_envelope,
    stamp_sessions,
)

from ._base import SQLEventStore
from ._codec import decode_row, decode_rows, to_micros, type_column, verbatim_texts
from ._options import SQLTarget
from ._worker import SQLiteWorker, WorkerSettings

# SQLite's default limit on host parameters is 32766; stay far below it.
_LOOKUP_CHUNK = 500


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
            "emitted_us, envelope) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        self.list_after = (
            f"SELECT seq, envelope FROM {events} WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        )
        self.last_seq = f"SELECT max(seq) FROM {events} WHERE run_id = ?"
        self.delete_events = f"DELETE FROM {events} WHERE run_id = ?"
        self.delete_run = f"DELETE FROM {runs} WHERE run_id = ?"
        self.raw_seqs = f"SELECT seq FROM {events} WHERE run_id = ? ORDER BY seq"
        self.corrupt = f"UPDATE {events} SET envelope = ? WHERE run_id = ? AND seq = ?"

    def lookup_many(self, count: int) -> str:
        marks = ", ".join("?" * count)
        return (
            f"SELECT event_id, seq, envelope FROM {self.events} "
            f"WHERE run_id = ? AND event_id IN ({marks})"
        )


@dataclass(frozen=True, slots=True)
class _Appended:
    first_seq: int
    sessions: list[SessionId | None]
    emitted_at: datetime


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
    cur: sqlite3.Cursor, sql: _Statements, run: str, ids: list[str]
) -> _Stored | None:
    """The stored rows if every id is stored, ``None`` if none is, else a conflict."""
    stored = _lookup(cur, sql, run, ids)
    if not stored:
        return None
    if len(stored) == len(ids):
        return _Stored([stored[i] for i in ids])
    raise IdempotencyConflictError(
        f"run {run}: {len(stored)} of the batch's {len(ids)} event ids are already "
        "stored; a retried batch must be stored entirely or not at all"
    )


def _append_job(
    cur: sqlite3.Cursor,
    sql: _Statements,
    run_id: RunId,
    events: Sequence[PendingEvent],
    expected_seq: int | None,
) -> _Appended | _Stored:
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
        stored = _stored_or_conflict(cur, sql, run, ids)  # ids win over expected_seq
        if stored is not None:
            return stored
        raise ConcurrencyError(run_id=run_id, expected_seq=expected_seq, actual_seq=last)
    before = None if session is None else SessionId.parse(session)
    sessions, current = stamp_sessions(before, events)
    now = datetime.now(UTC)
    micros = to_micros(now)
    rows = [
        (
            run,
            last + offset + 1,
            ids[offset],
            type_column(pending.event.event_type),
            None if sessions[offset] is None else str(sessions[offset]),
            micros,
            envelope_json(
                event_id=pending.event_id,
                seq=last + offset + 1,
                run_id=run_id,
                session_id=sessions[offset],
                event_json=pending.event_json,
                emitted_at=now,
            ),
        )
        for offset, pending in enumerate(events)
    ]
    try:
        if len(rows) == 1:
            cur.execute(sql.insert_event, rows[0])
        else:
            cur.executemany(sql.insert_event, rows)
    except sqlite3.IntegrityError:
        cur.execute(sql.delete_after, (run, last))
        stored = _stored_or_conflict(cur, sql, run, ids)
        if stored is None:
            raise  # not an event id after all: the group is rolled back and replayed
        return stored
    if last == 0 or current != before:
        cur.execute(sql.register_run, (run, None if current is None else str(current)))
    return _Appended(last + 1, sessions, now)


def _read_page(
    cur: sqlite3.Cursor, sql: _Statements, run: str, after_seq: int, limit: int
) -> list[tuple[int, str]]:
    return cur.execute(sql.list_after, (run, after_seq, limit)).fetchall()


def _read_last_seq(cur: sqlite3.Cursor, sql: _Statements, run: str) -> int:
    (last,) = cur.execute(sql.last_seq, (run,)).fetchone()
    return 0 if last is None else int(last)


def _import_job(
    cur: sqlite3.Cursor,
    sql: _Statements,
    run_id: RunId,
    envelopes: Sequence[EventEnvelope],
    texts: list[str],
    expected_seq: int,
) -> None:
    """Store copied envelopes verbatim if the run still ends at ``expected_seq``."""
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
            to_micros(envelope.emitted_at),
            text,
        )
        for envelope, text in zip(envelopes, texts, strict=True)
    ]
    try:
        cur.executemany(sql.insert_event, rows)
    except sqlite3.IntegrityError:
        cur.execute(sql.delete_after, (run, last))
        raise IdempotencyConflictError(
            f"run {run}: a copied event id is already stored at another seq"
        ) from None
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
        self._notifier = RunNotifier()
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
        self._notifier.notify_all()
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
        assert isinstance(result, _Appended)
        self._notifier.notify(run_id)
        first = result.first_seq
        return [
            new_envelope(
                event_id=pending.event_id,
                seq=first + offset,
                run_id=run_id,
                session_id=result.sessions[offset],
                event=pending.event,
                emitted_at=result.emitted_at,
            )
            for offset, pending in enumerate(events)
        ]

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        _, reader = self._workers()
        rows = await reader.run(_read_page, self._sql, str(run_id), after_seq, limit)
        return decode_rows(run_id, rows)

    async def _last_seq(self, run_id: RunId) -> int:
        _, reader = self._workers()
        return await reader.run(_read_last_seq, self._sql, str(run_id))

    async def _import(
        self,
        run_id: RunId,
        envelopes: Sequence[EventEnvelope],
        event_jsons: Sequence[str],
        expected_seq: int,
    ) -> None:
        writer, _ = self._workers()
        texts = verbatim_texts(envelopes, event_jsons)
        await writer.run(_import_job, self._sql, run_id, envelopes, texts, expected_seq)
        self._notifier.notify(run_id)

    async def _delete_run(self, run_id: RunId) -> int:
        writer, _ = self._workers()
        removed = await writer.run(_delete_job, self._sql, str(run_id))
        self._notifier.notify(run_id)
        return removed

    async def _wait_for_append(self, run_id: RunId, after_seq: int, idle_rounds: int) -> None:
        # Appends through this store wake us at once; appends by other processes are
        # found by polling, backing off from 5 ms to 250 ms.
        woken = self._notifier.listen(run_id)
        if not self.is_open or await self._last_seq(run_id) > after_seq:
            return
        delay = min(0.005 * (2 ** min(idle_rounds, 6)), 0.25)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), delay)

    def backdoor(self) -> Backdoor:
        """Raw access to the file, for the conformance suite."""
        return _SQLiteBackdoor(self)


class _SQLiteBackdoor:
    def __init__(self, store: SQLiteEventStore) -> None:
        self._store = store

    async def corrupt(self, run_id: RunId, seq: int) -> None:
        writer, _ = self._store._workers()
        sql = self._store._sql
        changed = await writer.run(_corrupt_job, sql, str(run_id), seq)
        if not changed:
            raise KeyError(f"run {run_id} has no seq {seq}")

    async def raw_seqs(self, run_id: RunId) -> list[int]:
        _, reader = self._store._workers()
        return await reader.run(_raw_seqs, self._store._sql, str(run_id))


def _corrupt_job(cur: sqlite3.Cursor, sql: _Statements, run: str, seq: int) -> int:
    return int(cur.execute(sql.corrupt, ('{"not an envelope', run, seq)).rowcount)


def _raw_seqs(cur: sqlite3.Cursor, sql: _Statements, run: str) -> list[int]:
    return [row[0] for row in cur.execute(sql.raw_seqs, (run,))]
