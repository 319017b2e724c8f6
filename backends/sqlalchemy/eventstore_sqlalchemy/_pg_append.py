"""PostgreSQL appends, several at a time: one transaction, two statements, any runs.

Appends waiting while the previous group commits are taken together (group
commit). The group's transaction:

1. locks the counter row of every run in the group, in run-id order so that two
   groups never wait for each other in a cycle (an upsert, so new runs get a row);
2. inserts every new event and bumps every counter, which also sends ``NOTIFY``.

Between the two, each append is decided on its own, in arrival order, against
the counters as the appends before it in the group left them: a wrong
``expected_seq`` or a half-stored batch fails only that append, and refusals write
nothing. A retried event id is caught by the unique index: the group rolls back and
the worker (:mod:`._pg_worker`) runs each append again on its own, looking its ids
up first, so it is answered from storage. The worker hands out results only after
``COMMIT``; a new append's result is its :class:`~eventstore.backend.Stamped`
batch, whose envelopes are built then, outside the transaction.
"""

from __future__ import annotations

__all__ = ["AppendJob", "Outcome", "commit_group"]

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import asyncpg
from whenever import Instant

from eventstore import (
    ConcurrencyError,
    EventEnvelope,
    EventStoreError,
    IdempotencyConflictError,
    RunId,
    SessionId,
)
from eventstore.backend import PendingEvent, Stamped, stamp, utc_now

from ._codec import decode_row, split_time, type_column
from ._pg_conn import Transaction
from ._pg_sql import Statements

#: What an append comes to: its new events, or the stored envelopes of a retry.
Outcome: TypeAlias = Stamped | list[EventEnvelope]


@dataclass(slots=True)
class AppendJob:
    """One caller's append, waiting for its group."""

    run_id: RunId
    events: Sequence[PendingEvent]
    expected_seq: int | None
    future: asyncio.Future[Outcome]
    outcome: Outcome | BaseException | None = None

    def settle(self) -> None:
        """Hand the outcome to the caller (unless it stopped waiting)."""
        if self.future.done():
            return
        if isinstance(self.outcome, BaseException):
            self.future.set_exception(self.outcome)
        else:
            assert self.outcome is not None
            self.future.set_result(self.outcome)


@dataclass
class _Rows:
    """Column arrays of the events to insert."""

    runs: list[str] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    sessions: list[str | None] = field(default_factory=list)


@dataclass
class _Group:
    """What the group knows about its runs while deciding its appends."""

    now: Instant
    state: dict[str, tuple[int, SessionId | None]]
    stored: dict[tuple[str, str], tuple[int, str]]
    #: Event ids written by earlier appends of the group: their batch and position.
    written: dict[tuple[str, str], tuple[Stamped, int]] = field(default_factory=dict)
    rows: _Rows = field(default_factory=_Rows)
    touched: set[str] = field(default_factory=set)

    def found(self, run_id: RunId, keys: list[tuple[str, str]]) -> list[EventEnvelope]:
        """The envelopes of ``keys``, stored before or written earlier in the group."""
        out = []
        batches: dict[int, list[EventEnvelope]] = {}
        for key in keys:
            earlier = self.written.get(key)
            if earlier is None:
                out.append(decode_row(run_id, *self.stored[key]))
                continue
            stamped, offset = earlier
            if id(stamped) not in batches:
                batches[id(stamped)] = stamped.envelopes()
            out.append(batches[id(stamped)][offset])
        return out


def _decide(group: _Group, job: AppendJob) -> Outcome:
    run = str(job.run_id)
    ids = [str(p.event_id) for p in job.events]
    keys = [(run, event_id) for event_id in ids]
    found = [k for k in keys if k in group.stored or k in group.written]
    if found:
        if len(found) < len(keys):
            raise IdempotencyConflictError.partial_batch(
                run_id=job.run_id, stored=len(found), total=len(keys)
            )
        return group.found(job.run_id, keys)
    last, session = group.state[run]
    if job.expected_seq is not None and job.expected_seq != last:
        raise ConcurrencyError(run_id=job.run_id, expected_seq=job.expected_seq, actual_seq=last)
    stamped = stamp(job.run_id, job.events, last_seq=last, session_id=session, emitted_at=group.now)
    count = len(ids)
    rows = group.rows
    rows.runs.extend([run] * count)
    rows.seqs.extend(range(last + 1, last + count + 1))
    rows.ids.extend(ids)
    rows.types.extend([type_column(p.event.event_type) for p in job.events])
    rows.texts.extend(stamped.texts())
    rows.sessions.extend([None if s is None else str(s) for s in stamped.session_ids])
    group.written.update({key: (stamped, offset) for offset, key in enumerate(keys)})
    group.state[run] = (last + count, stamped.session_after)
    group.touched.add(run)
    return stamped


async def _look_up(
    conn: asyncpg.Connection, sql: Statements, jobs: Sequence[AppendJob]
) -> dict[tuple[str, str], tuple[int, str]]:
    """The stored ``(seq, envelope)`` of every event id of ``jobs`` that is stored."""
    key_runs: list[str] = []
    key_ids: list[str] = []
    for job in jobs:
        run = str(job.run_id)
        for pending in job.events:
            key_runs.append(run)
            key_ids.append(str(pending.event_id))
    rows = await conn.fetch(sql.look_up, key_runs, key_ids)
    return {(run, event_id): (seq, body) for run, seq, event_id, body in rows}


async def commit_group(
    conn: asyncpg.Connection,
    sql: Statements,
    jobs: Sequence[AppendJob],
    *,
    look_up: bool = False,
) -> None:
    """Run ``jobs`` in one transaction and set each one's outcome.

    Event ids are looked up first only with ``look_up``; otherwise the unique index
    finds a stored one (a retry), the insert fails, and the caller runs each job
    again with ``look_up``: the common case saves a statement. A job whose
    ``expected_seq`` does not match looks its ids up anyway, since a stored id wins.
    A refusal is an :class:`EventStoreError` outcome of its job alone. Anything
    else raises, with the transaction rolled back and no outcome to trust.
    """
    runs = sorted({str(job.run_id) for job in jobs})
    async with Transaction(conn):
        if len(runs) == 1:
            rows = await conn.fetch(sql.lock_one, runs[0])
        else:
            rows = await conn.fetch(sql.lock, runs)
        group = _Group(now=utc_now(), state={}, stored={})
        for run, last, session in rows:
            group.state[run] = (last, None if session is None else SessionId.parse(session))
        if look_up:
            group.stored = await _look_up(conn, sql, jobs)
        for job in jobs:
            expected = job.expected_seq
            last = group.state[str(job.run_id)][0]
            if not look_up and expected is not None and expected != last:
                group.stored.update(await _look_up(conn, sql, [job]))
            try:
                job.outcome = _decide(group, job)
            except EventStoreError as exc:
                job.outcome = exc
        if group.touched:
            await _write(conn, sql, group)


async def _write(conn: asyncpg.Connection, sql: Statements, group: _Group) -> None:
    touched = sorted(group.touched)
    ends = [group.state[run] for run in touched]
    micros, nanos = split_time(group.now)
    if len(touched) == 1:
        last, session = ends[0]
        await conn.execute(
            sql.write_one,
            touched[0],
            group.rows.seqs,
            group.rows.ids,
            group.rows.types,
            group.rows.texts,
            last,
            None if session is None else str(session),
            micros,
            sql.channel,
            group.rows.sessions,
            nanos,
        )
        return
    await conn.execute(
        sql.write,
        group.rows.runs,
        group.rows.seqs,
        group.rows.ids,
        group.rows.types,
        group.rows.texts,
        touched,
        [last for last, _session in ends],
        [None if session is None else str(session) for _last, session in ends],
        micros,
        sql.channel,
        group.rows.sessions,
        nanos,
    )
