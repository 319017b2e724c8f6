"""Nanosecond times in the SQL stores, and the schema step (version 2) that keeps them.

The envelope JSON keeps every digit of a time; the ``emitted_us`` and ``emitted_ns``
columns keep ``emitted_at`` for ``list_runs``, so ``RunInfo`` times are exact too,
for years 1 to 9999, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable

import asyncpg
import pytest
import sqlalchemy as sa
from _sql_support import connect_kwargs
from eventstore_sqlalchemy import SQLEventStore, _base, _pg_append, _schema, migrate
from eventstore_sqlalchemy._codec import join_time, split_time
from whenever import Instant

import eventstore
from eventstore import (
    ConfigurationError,
    EventEnvelope,
    EventId,
    RunId,
    RunInfo,
    RunStarted,
    SessionId,
    TextDelta,
)
from eventstore import _envelope as core_envelope
from eventstore.backend import encode_envelope, parse_time
from eventstore.copy import copy_runs, verify_runs

BACKENDS = ["sqlite", "postgres"]

#: Times with every digit in use, at and next to the ends of the range and the epoch.
EARLIEST = "0001-01-01T00:00:00Z"
EARLY = "0001-01-01T00:00:00.000000001Z"
BEFORE_EPOCH = "1969-12-31T23:59:59.999999999Z"
NOW_ISH = "2026-11-26T10:15:30.123456789Z"
LATE = "9999-12-31T23:59:59.999999998Z"
LATEST = "9999-12-31T23:59:59.999999999Z"
TIMES = [EARLIEST, EARLY, BEFORE_EPOCH, NOW_ISH, LATE, LATEST]


def _t(text: str) -> Instant:
    return parse_time(text)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[Instant], None]:
    """Set the commit time the stores stamp appends with (both the SQLite and PostgreSQL path)."""

    def set_time(moment: Instant) -> None:
        monkeypatch.setattr(core_envelope, "utc_now", lambda: moment)
        monkeypatch.setattr(_pg_append, "utc_now", lambda: moment)

    return set_time


async def _time_columns(store: eventstore.EventStore, run_id: RunId) -> list[tuple[int, int]]:
    """The run's ``(emitted_us, emitted_ns)`` in seq order, read past the store."""
    assert isinstance(store, SQLEventStore)
    events = store._tables.events
    query = (
        sa.select(events.c.emitted_us, events.c.emitted_ns)
        .where(events.c.run_id == str(run_id))
        .order_by(events.c.seq)
    )
    async with store.engine.connect() as conn:
        return [(row[0], row[1]) for row in (await conn.execute(query)).all()]


def _info(envelopes: list[EventEnvelope]) -> RunInfo:
    return RunInfo(
        run_id=envelopes[0].run_id,
        session_id=envelopes[-1].session_id,
        last_seq=envelopes[-1].seq,
        first_emitted_at=envelopes[0].emitted_at,
        last_emitted_at=envelopes[-1].emitted_at,
    )


async def _listed(store: eventstore.EventStore, run_id: RunId) -> RunInfo:
    (info,) = [r for r in await store.list_runs(limit=10_000) if r.run_id == run_id]
    return info


# -- the columns ------------------------------------------------------------------------


@pytest.mark.parametrize("text", TIMES)
def test_split_time_round_trips_every_digit(text: str) -> None:
    moment = _t(text)
    micros, nanos = split_time(moment)
    assert 0 <= nanos <= 999
    assert -(2**63) <= micros < 2**63  # fits BIGINT
    assert join_time(micros, nanos) == moment


def test_split_time_rounds_down_before_the_epoch() -> None:
    # One nanosecond before the epoch is the microsecond before it, plus 999 ns: the
    # columns order rows as their times are ordered.
    assert split_time(_t(BEFORE_EPOCH)) == (-1, 999)
    assert join_time(None, None) is None


# -- appends, imports, copies ------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_appended_times_keep_nanoseconds_to_the_ends_of_the_range(
    backend: str, request: pytest.FixtureRequest, clock: Callable[[Instant], None]
) -> None:
    url = request.getfixturevalue(f"{backend}_url")

    async def scenario() -> None:
        async with eventstore.open_store(url) as store:
            for commit_time in TIMES:
                run_id = RunId.new()
                clock(_t(commit_time))
                events: list[eventstore.AgentEvent] = [
                    TextDelta(run_id=run_id, delta="before", timestamp=_t(EARLY)),
                    RunStarted(
                        run_id=run_id,
                        session_id=SessionId.new(),
                        provider="p",
                        model="m",
                        timestamp=_t(LATEST),
                    ),
                ]
                first = await store.append(events[0])
                rest = await store.append_batch(
                    [events[1], TextDelta(run_id=run_id, delta="x", timestamp=_t(NOW_ISH))]
                )
                appended = [first, *rest]
                assert {e.emitted_at for e in appended} == {_t(commit_time)}
                assert f'"emitted_at":"{commit_time}"' in encode_envelope(first)
                stored = await store.list_after(run_id)
                assert stored == appended
                assert [e.event.timestamp for e in stored] == [_t(EARLY), _t(LATEST), _t(NOW_ISH)]
                assert await _listed(store, run_id) == _info(appended)
                assert set(await _time_columns(store, run_id)) == {split_time(_t(commit_time))}
            # Concurrent appends to many runs: committed in groups (on PostgreSQL, the
            # many-run statement), each envelope with the group's exact time.
            clock(_t(BEFORE_EPOCH))
            runs = [RunId.new() for _ in range(24)]
            envelopes = await asyncio.gather(
                *(store.append(TextDelta(run_id=run, delta="c")) for run in runs)
            )
            for run, envelope in zip(runs, envelopes, strict=True):
                assert envelope.emitted_at == _t(BEFORE_EPOCH)
                assert await store.list_after(run) == [envelope]
                assert await _listed(store, run) == _info([envelope])
                assert await _time_columns(store, run) == [(-1, 999)]

    asyncio.run(scenario())


def _envelopes(run_id: RunId, times: list[str]) -> list[EventEnvelope]:
    """One envelope per time, the event stamped with the same time, seqs from 1."""
    session = SessionId.new()
    envelopes = []
    for seq, text in enumerate(times, 1):
        when = _t(text)
        event = (
            RunStarted(run_id=run_id, session_id=session, provider="p", model="m", timestamp=when)
            if seq == 1
            else TextDelta(run_id=run_id, delta=str(seq), timestamp=when)
        )
        envelopes.append(
            EventEnvelope(
                event_id=EventId.new(),
                seq=seq,
                run_id=run_id,
                session_id=session,
                event=event,
                emitted_at=when,
            )
        )
    return envelopes


@pytest.mark.parametrize("backend", BACKENDS)
def test_imported_times_keep_nanoseconds_to_the_ends_of_the_range(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(f"{backend}_url")
    # Forwards, backwards (an import keeps the times it is given, in any order) and
    # a run whose first and last times are the extremes.
    orders = [TIMES, TIMES[::-1], [LATEST, NOW_ISH, EARLIEST]]

    async def scenario() -> None:
        async with eventstore.open_store(url) as store:
            for times in orders:
                run_id = RunId.new()
                envelopes = _envelopes(run_id, times)
                assert await store.import_envelopes(envelopes[:2]) == 2
                assert await store.import_envelopes(envelopes) == len(envelopes) - 2
                stored = await store.list_after(run_id)
                assert stored == envelopes
                assert [encode_envelope(e) for e in stored] == [
                    encode_envelope(e) for e in envelopes
                ]
                for envelope, text in zip(stored, times, strict=True):
                    assert f'"emitted_at":"{text}"' in encode_envelope(envelope)
                assert await _listed(store, run_id) == _info(envelopes)
                assert await _time_columns(store, run_id) == [split_time(_t(t)) for t in times]

    asyncio.run(scenario())


def test_copies_between_sqlite_and_postgres_keep_nanoseconds(
    sqlite_url: str, postgres_url: str
) -> None:
    async def scenario() -> None:
        run_ids = [RunId.new(), RunId.new()]
        async with (
            eventstore.open_store("memory://") as source,
            eventstore.open_store(sqlite_url) as lite,
            eventstore.open_store(postgres_url) as pg,
        ):
            for run_id, times in zip(run_ids, [TIMES, TIMES[::-1]], strict=True):
                await source.import_envelopes(_envelopes(run_id, times))
            # memory -> SQLite -> PostgreSQL, and each copy equals the original.
            assert (await copy_runs(source, lite, run_ids, page_size=4)).events_copied == 12
            assert (await copy_runs(lite, pg, run_ids, page_size=5)).events_copied == 12
            for store in (lite, pg):
                comparison = await verify_runs(source, store, run_ids)
                assert all(result.identical for result in comparison), comparison
                listed = [r for r in await store.list_runs() if r.run_id in run_ids]
                expected = [r for r in await source.list_runs() if r.run_id in run_ids]
                assert listed == expected

    asyncio.run(scenario())


# -- the schema step: version 1 databases ------------------------------------------------

#: Times a version 1 store wrote: whole microseconds (Python datetimes).
V1_TIMES = ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00.123456Z", "1969-12-31T23:59:59.999999Z"]


@pytest.fixture
def at_version_1(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Create a database at schema version 1, as the release before version 2 left it."""

    def create(url: str) -> None:
        with monkeypatch.context() as patch:
            patch.setattr(_schema, "_MIGRATIONS", _schema._MIGRATIONS[:1])
            patch.setattr(_schema, "SCHEMA_VERSION", 1)
            patch.setattr(_base, "SCHEMA_VERSION", 1)
            assert len(asyncio.run(migrate(url))) == 1

    return create


def _v1_rows(run_id: RunId) -> tuple[list[EventEnvelope], list[tuple[str | int, ...]]]:
    """Envelopes and the ``events`` rows a version 1 store held for them."""
    envelopes = _envelopes(run_id, V1_TIMES)
    rows: list[tuple[str | int, ...]] = [
        (
            str(run_id),
            e.seq,
            str(e.event_id),
            e.event.event_type,
            str(e.session_id),
            split_time(e.emitted_at)[0],
            encode_envelope(e),
        )
        for e in envelopes
    ]
    return envelopes, rows


_V1_INSERT = (
    "INSERT INTO {p}events (run_id, seq, event_id, event_type, session_id, emitted_us, "
    "envelope) VALUES ({marks})"
)


def _fill_v1_sqlite(url: str, run_id: RunId) -> list[EventEnvelope]:
    envelopes, rows = _v1_rows(run_id)
    with sqlite3.connect(url.split("///", 1)[1]) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(eventstore_events)")]
        assert "emitted_ns" not in columns
        conn.executemany(_V1_INSERT.format(p="eventstore_", marks=", ".join("?" * 7)), rows)
        conn.execute(
            "INSERT INTO eventstore_runs (run_id, session_id) VALUES (?, ?)",
            (str(run_id), str(envelopes[-1].session_id)),
        )
    return envelopes


async def _fill_v1_postgres(url: str, prefix: str, run_id: RunId) -> list[EventEnvelope]:
    envelopes, rows = _v1_rows(run_id)
    conn = await asyncpg.connect(**connect_kwargs(url.split("?")[0]))
    try:
        columns = await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = $1",
            f"{prefix}events",
        )
        assert "emitted_ns" not in {c[0] for c in columns}
        marks = ", ".join(f"${i}" for i in range(1, 8))
        await conn.executemany(_V1_INSERT.format(p=prefix, marks=marks), rows)
        await conn.execute(
            f"INSERT INTO {prefix}runs (run_id, last_seq, session_id) VALUES ($1, $2, $3)",
            str(run_id),
            envelopes[-1].seq,
            str(envelopes[-1].session_id),
        )
    finally:
        await conn.close()
    return envelopes


@pytest.mark.parametrize("backend", BACKENDS)
def test_version_1_database_is_migrated_on_open_and_reads_back(
    backend: str,
    request: pytest.FixtureRequest,
    at_version_1: Callable[[str], None],
    clock: Callable[[Instant], None],
) -> None:
    url = request.getfixturevalue(f"{backend}_url")
    at_version_1(url)
    run_id = RunId.new()
    if backend == "sqlite":
        envelopes = _fill_v1_sqlite(url, run_id)
    else:
        prefix = request.getfixturevalue("postgres_prefix")
        envelopes = asyncio.run(_fill_v1_postgres(url, prefix, run_id))

    async def scenario() -> None:
        # Opened with the default migrate_on_open: the step is applied, once.
        async with eventstore.open_store(url) as store:
            assert isinstance(store, SQLEventStore)
            assert await store.migrate() == []
            version = store._tables.version
            async with store.engine.connect() as conn:
                steps = (
                    await conn.execute(sa.select(version.c.version).order_by(version.c.version))
                ).all()
            assert [row[0] for row in steps] == [1, 2]
            # The old rows got 0 ns, which is exact, and read back unchanged.
            assert await _time_columns(store, run_id) == [
                (split_time(e.emitted_at)[0], 0) for e in envelopes
            ]
            assert await store.list_after(run_id) == envelopes
            assert await _listed(store, run_id) == _info(envelopes)
            # New appends to the old run keep their nanoseconds.
            clock(_t(NOW_ISH))
            appended = await store.append(TextDelta(run_id=run_id, delta="after"))
            assert appended.seq == len(envelopes) + 1
            assert appended.session_id == envelopes[-1].session_id
            assert await store.list_after(run_id) == [*envelopes, appended]
            assert (await _listed(store, run_id)).last_emitted_at == _t(NOW_ISH)
            assert (await _time_columns(store, run_id))[-1] == split_time(_t(NOW_ISH))

    asyncio.run(scenario())


def test_version_1_database_without_migrate_on_open_is_refused_until_migrated(
    sqlite_url: str, at_version_1: Callable[[str], None]
) -> None:
    at_version_1(sqlite_url)
    envelopes = _fill_v1_sqlite(sqlite_url, RunId.new())
    store = eventstore.open_store(sqlite_url, migrate_on_open=False)
    with pytest.raises(ConfigurationError, match="schema version 1 is older than 2"):
        asyncio.run(store.open())
    applied = asyncio.run(migrate(sqlite_url))
    assert len(applied) == 1 and "emitted_ns" in applied[0]

    async def reopen() -> list[EventEnvelope]:
        async with eventstore.open_store(sqlite_url, migrate_on_open=False) as store:
            return await store.list_after(envelopes[0].run_id)

    assert asyncio.run(reopen()) == envelopes


def test_new_and_migrated_databases_have_the_same_tables(
    at_version_1: Callable[[str], None], sqlite_url: str
) -> None:
    fresh = sqlite_url.replace("events.db", "fresh.db")
    asyncio.run(migrate(fresh))
    at_version_1(sqlite_url)
    asyncio.run(migrate(sqlite_url))

    def schema(url: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(url.split("///", 1)[1]) as conn:
            return [
                tuple(row)
                for table in ("eventstore_events", "eventstore_runs")
                for row in conn.execute(f"PRAGMA table_info({table})")
            ]

    assert schema(fresh) == schema(sqlite_url)
    assert ("emitted_ns", "SMALLINT", 1, "0") in [row[1:5] for row in schema(fresh)]
