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
the store runs each append again on its own, looking its ids up first, so it is
answered from storage. The store hands out results only after ``COMMIT``.
"""

from __future__ import annotations

__all__ = ["AppendJob", "GroupStatements", "commit_group"]

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from eventstore import ConcurrencyError, EventStoreError, IdempotencyConflictError, RunId, SessionId
from eventstore.backend import (
    EventEnvelope,
    PendingEvent,
    envelope_json,
    new_envelope,
    stamp_sessions,
)

from ._codec import decode_row, to_micros, type_column


@dataclass(slots=True)
class AppendJob:
    """One caller's append, waiting for its group."""

    run_id: RunId
    events: Sequence[PendingEvent]
    expected_seq: int | None
    future: asyncio.Future[list[EventEnvelope]]
    outcome: list[EventEnvelope] | BaseException | None = None

    def settle(self) -> None:
        """Hand the outcome to the caller (unless it stopped waiting)."""
        if self.future.done():
            return
        if isinstance(self.outcome, BaseException):
            self.future.set_exception(self.outcome)
        else:
            assert self.outcome is not None
            self.future.set_result(self.outcome)


class GroupStatements:
    """The statements of a group append, for one table prefix."""

    def __init__(self, prefix: str) -> None:
        events, runs = f"{prefix}events", f"{prefix}runs"
        self.channel = f"{prefix}events"
        # The no-op DO UPDATE locks the row whether or not it existed before; the
        # runs are locked in run-id order.
        self.lock = (
            f"INSERT INTO {runs} AS t (run_id, last_seq) "
            "SELECT u, 0 FROM unnest($1::varchar[]) AS u ORDER BY u "
            "ON CONFLICT (run_id) DO UPDATE SET last_seq = t.last_seq "
            "RETURNING t.run_id, t.last_seq, t.session_id"
        )
        self.look_up = (
            f"SELECT e.run_id, e.seq, e.event_id, e.envelope FROM {events} AS e "
            "JOIN unnest($1::varchar[], $2::varchar[]) AS k(run_id, event_id) "
            "ON e.run_id = k.run_id AND e.event_id = k.event_id"
        )
        self.write = (
            f"WITH ins AS (INSERT INTO {events} "
            "(run_id, seq, event_id, event_type, envelope, session_id, emitted_us) "
            "SELECT *, $9::bigint FROM unnest($1::varchar[], $2::bigint[], $3::varchar[], "
            "$4::varchar[], $5::text[], $11::varchar[])) "
            f"UPDATE {runs} AS t SET last_seq = u.last_seq, session_id = u.session_id "
            "FROM unnest($6::varchar[], $7::bigint[], $8::varchar[]) "
            "AS u(run_id, last_seq, session_id) WHERE t.run_id = u.run_id "
            "RETURNING pg_notify($10, t.run_id)"
        )
        # The same for a group of one run (every sequential append): simpler plans
        # that cost the server less than the unnest joins above.
        self.lock_one = (
            f"INSERT INTO {runs} AS t (run_id, last_seq) VALUES ($1, 0) "
            "ON CONFLICT (run_id) DO UPDATE SET last_seq = t.last_seq "
            "RETURNING t.run_id, t.last_seq, t.session_id"
        )
        self.write_one = (
            f"WITH ins AS (INSERT INTO {events} "
            "(run_id, seq, event_id, event_type, envelope, session_id, emitted_us) "
            "SELECT $1, *, $8::bigint FROM unnest($2::bigint[], $3::varchar[], $4::varchar[], "
            "$5::text[], $10::varchar[])) "
            f"UPDATE {runs} SET last_seq = $6, session_id = $7 WHERE run_id = $1 "
            "RETURNING pg_notify($9, $1)"
        )


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

    now: datetime
    state: dict[str, tuple[int, SessionId | None]]
    stored: dict[tuple[str, str], tuple[int, str]]
    written: dict[tuple[str, str], EventEnvelope] = field(default_factory=dict)
    rows: _Rows = field(default_factory=_Rows)
    touched: set[str] = field(default_factory=set)


def _decide(group: _Group, job: AppendJob) -> list[EventEnvelope]:
    run = str(job.run_id)
    keys = [(run, str(p.event_id)) for p in job.events]
    found = [k for k in keys if k in group.stored or k in group.written]
    if found:
        if len(found) < len(keys):
            raise IdempotencyConflictError(
                f"run {run}: {len(found)} of the batch's {len(keys)} event ids are already "
                "stored; a retried batch must be stored entirely or not at all"
            )
        out = []
        for key in keys:
            earlier = group.written.get(key)
            out.append(
                earlier if earlier is not None else decode_row(job.run_id, *group.stored[key])
            )
        return out
    last, session = group.state[run]
    if job.expected_seq is not None and job.expected_seq != last:
        raise ConcurrencyError(run_id=job.run_id, expected_seq=job.expected_seq, actual_seq=last)
    sessions, current = stamp_sessions(session, job.events)
    envelopes = []
    rows = group.rows
    for offset, (pending, key) in enumerate(zip(job.events, keys, strict=True)):
        seq = last + offset + 1
        envelope = new_envelope(
            event_id=pending.event_id,
            seq=seq,
            run_id=job.run_id,
            session_id=sessions[offset],
            event=pending.event,
            emitted_at=group.now,
        )
        rows.runs.append(run)
        rows.seqs.append(seq)
        rows.ids.append(key[1])
        rows.types.append(type_column(pending.event.event_type))
        rows.sessions.append(None if sessions[offset] is None else str(sessions[offset]))
        rows.texts.append(
            envelope_json(
                event_id=pending.event_id,
                seq=seq,
                run_id=job.run_id,
                session_id=sessions[offset],
                event_json=pending.event_json,
                emitted_at=group.now,
            )
        )
        group.written[key] = envelope
        envelopes.append(envelope)
    group.state[run] = (last + len(envelopes), current)
    group.touched.add(run)
    return envelopes


async def _look_up(
    conn: asyncpg.Connection, sql: GroupStatements, jobs: Sequence[AppendJob]
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
    sql: GroupStatements,
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
    async with conn.transaction(isolation="read_committed"):
        if len(runs) == 1:
            rows = await conn.fetch(sql.lock_one, runs[0])
        else:
            rows = await conn.fetch(sql.lock, runs)
        group = _Group(now=datetime.now(UTC), state={}, stored={})
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


async def _write(conn: asyncpg.Connection, sql: GroupStatements, group: _Group) -> None:
    touched = sorted(group.touched)
    ends = [group.state[run] for run in touched]
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
            to_micros(group.now),
            sql.channel,
            group.rows.sessions,
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
        to_micros(group.now),
        sql.channel,
        group.rows.sessions,
    )
