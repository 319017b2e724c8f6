"""Backend-specific behaviour: options, redaction, schema versions, prefixes, corruption,
group commit and a locked database."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest
from _sql_support import connect_kwargs, with_options
from eventstore_sqlalchemy import (
    SCHEMA_VERSION,
    PostgresEventStore,
    SQLEventStore,
    SQLiteEventStore,
    migrate,
)

import eventstore
from eventstore import (
    BackendUnavailableError,
    ConcurrencyError,
    ConfigurationError,
    CorruptEventError,
    RunId,
    TextDelta,
)
from eventstore.backend import StoreURL


def _db_path(sqlite_url: str) -> str:
    return sqlite_url.split("///", 1)[1]


# -- URLs and options -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "cls"),
    [
        ("sqlite:///x.db", SQLiteEventStore),
        ("sqlite+aiosqlite:///x.db", SQLiteEventStore),
        ("postgresql://u@h/db", PostgresEventStore),
        ("postgresql+asyncpg://u@h/db", PostgresEventStore),
    ],
)
def test_plain_and_driver_schemes_pick_the_backend(url: str, cls: type) -> None:
    store = eventstore.open_store(url)
    assert type(store) is cls
    assert not store.is_open


@pytest.mark.parametrize("cls", [SQLiteEventStore, PostgresEventStore])
def test_from_url_takes_a_string_or_a_parsed_url(cls: type[SQLEventStore]) -> None:
    url = "sqlite:///x.db?synchronous=normal" if cls is SQLiteEventStore else "postgresql://u@h/db"
    parsed = StoreURL.parse(url)
    from_text, from_parsed = cls.from_url(url), cls.from_url(parsed)
    assert from_parsed._target.store_url is parsed
    assert from_text._target.options == from_parsed._target.options


@pytest.mark.parametrize(
    "options",
    [
        {"no_such_option": "1"},
        {"table_prefix": "Bad-Prefix"},
        {"table_prefix": "x" * 40},
        {"synchronous": "sometimes"},
        {"busy_timeout_ms": "-1"},
        # Past SQLite's 32-bit int it would silently mean no wait at all.
        {"busy_timeout_ms": "4294967296000"},
        {"lock_timeout_s": "inf"},
        {"pool_size": "0"},
    ],
)
def test_bad_options_raise_configuration_error(options: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        eventstore.open_store(with_options("sqlite:///x.db", **options))
    assert next(iter(options)) in str(caught.value)


def test_options_come_from_query_and_keywords(tmp_path: Path) -> None:
    store = eventstore.open_store(
        f"sqlite:///{tmp_path}/e.db?table_prefix=app_&synchronous=normal", busy_timeout_ms=10
    )
    assert isinstance(store, SQLiteEventStore)
    options = store._target.options
    assert (options.table_prefix, options.synchronous, options.busy_timeout_ms) == (
        "app_",
        "normal",
        10,
    )


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite+aiosqlite:///:memory:"])
def test_in_memory_sqlite_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="in-memory"):
        eventstore.open_store(url)


@pytest.mark.parametrize("url", ["sqlite:///file:events.db", "sqlite:///FILE:x%3Fmode=memory"])
def test_sqlite_file_uris_are_refused(url: str) -> None:
    # SQLAlchemy would open the literal name and sqlite3 the URI's file.
    with pytest.raises(ConfigurationError, match="'file:' URIs"):
        eventstore.open_store(url)


# -- credentials ----------------------------------------------------------------------

SECRET = "s3cr3t-pa55"


def test_password_never_in_repr_or_describe() -> None:
    store = eventstore.open_store(f"postgresql://app:{SECRET}@127.0.0.1:1/db")
    assert SECRET not in repr(store)
    assert SECRET not in store.describe()
    assert "app:***@" in repr(store)


def test_password_never_in_connection_errors() -> None:
    store = eventstore.open_store(f"postgresql://app:{SECRET}@127.0.0.1:1/db?connect_timeout_s=2")
    with pytest.raises(BackendUnavailableError) as caught:
        asyncio.run(store.open())
    text = str(caught.value)
    assert SECRET not in text
    assert "postgresql" in text
    cause: BaseException | None = caught.value
    while cause is not None:
        assert SECRET not in str(cause)
        cause = cause.__cause__


def test_password_never_in_option_errors() -> None:
    with pytest.raises(ConfigurationError) as caught:
        eventstore.open_store(f"postgresql://app:{SECRET}@h/db?pool_size=zero")
    assert SECRET not in str(caught.value)


# -- schema ---------------------------------------------------------------------------


def test_schema_is_created_on_first_open_with_its_version(sqlite_url: str) -> None:
    async def scenario() -> None:
        async with eventstore.open_store(sqlite_url):
            pass

    asyncio.run(scenario())
    with sqlite3.connect(_db_path(sqlite_url)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        version = conn.execute("SELECT max(version) FROM eventstore_schema_version").fetchone()
    assert {"eventstore_events", "eventstore_runs", "eventstore_schema_version"} <= tables
    assert version == (SCHEMA_VERSION,)


def test_newer_schema_version_raises_configuration_error(sqlite_url: str) -> None:
    assert asyncio.run(migrate(sqlite_url))  # creates the tables
    with sqlite3.connect(_db_path(sqlite_url)) as conn:
        conn.execute(
            "INSERT INTO eventstore_schema_version VALUES (?, 'from the future', 'now')",
            (SCHEMA_VERSION + 1,),
        )
    with pytest.raises(ConfigurationError, match="newer"):
        asyncio.run(eventstore.open_store(sqlite_url).open())
    with pytest.raises(ConfigurationError, match="newer"):
        asyncio.run(migrate(sqlite_url))


def test_migrate_applies_pending_steps_once(sqlite_url: str) -> None:
    applied = asyncio.run(migrate(sqlite_url))
    assert len(applied) == SCHEMA_VERSION
    assert asyncio.run(migrate(sqlite_url)) == []


def test_migrate_of_a_current_schema_does_not_wait_for_writers(sqlite_url: str) -> None:
    async def scenario() -> list[str]:
        async with eventstore.open_store(sqlite_url, lock_timeout_s=0.3) as store:
            assert isinstance(store, SQLiteEventStore)
            other = sqlite3.connect(_db_path(sqlite_url), isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")  # another process mid-append
                return await store.migrate()
            finally:
                other.close()

    assert asyncio.run(scenario()) == []


def test_migrate_of_a_locked_database_raises_backend_unavailable(sqlite_url: str) -> None:
    path = _db_path(sqlite_url)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("PRAGMA journal_mode=WAL")
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(BackendUnavailableError, match="locked"):
            asyncio.run(migrate(sqlite_url, lock_timeout_s=0.3, busy_timeout_ms=10))
    finally:
        other.close()


def test_missing_schema_without_migrate_on_open_raises(sqlite_url: str) -> None:
    store = eventstore.open_store(sqlite_url, migrate_on_open=False)
    with pytest.raises(ConfigurationError, match="eventstore migrate"):
        asyncio.run(store.open())
    asyncio.run(migrate(sqlite_url))

    async def reopen() -> int:
        async with eventstore.open_store(sqlite_url, migrate_on_open=False) as store:
            return await store.last_seq(RunId.new())

    assert asyncio.run(reopen()) == 0


def test_prefixes_keep_stores_apart_in_one_database(sqlite_url: str) -> None:
    run_id = RunId.new()

    async def scenario() -> tuple[int, int]:
        async with (
            eventstore.open_store(sqlite_url, table_prefix="one_") as one,
            eventstore.open_store(sqlite_url, table_prefix="two_") as two,
        ):
            await one.append(TextDelta(run_id=run_id, delta="a"))
            await one.append(TextDelta(run_id=run_id, delta="b"))
            await two.append(TextDelta(run_id=run_id, delta="c"))
            return await one.last_seq(run_id), await two.last_seq(run_id)

    assert asyncio.run(scenario()) == (2, 1)
    with sqlite3.connect(_db_path(sqlite_url)) as conn:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    assert {"one_events", "one_runs", "two_events", "two_runs"} <= tables


def test_prefix_on_postgres(postgres_url: str, postgres_prefix: str) -> None:
    async def scenario() -> list[str]:
        async with eventstore.open_store(postgres_url) as store:
            await store.append(TextDelta(run_id=RunId.new(), delta="x"))
        conn = await asyncpg.connect(**connect_kwargs(postgres_url.split("?")[0]))
        try:
            rows = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE $1 ORDER BY 1",
                f"{postgres_prefix}%",
            )
        finally:
            await conn.close()
        return [row[0] for row in rows]

    assert asyncio.run(scenario()) == [
        f"{postgres_prefix}events",
        f"{postgres_prefix}runs",
        f"{postgres_prefix}schema_version",
    ]


# -- corruption -----------------------------------------------------------------------


def _written_then_damaged(sqlite_url: str, count: int, seq: int, envelope_sql: str) -> RunId:
    """A run of ``count`` events whose row ``seq`` then gets ``envelope_sql`` (one ``?``)."""
    run_id = RunId.new()

    async def write() -> None:
        async with eventstore.open_store(sqlite_url) as store:
            await store.append_batch([TextDelta(run_id=run_id, delta=str(i)) for i in range(count)])

    asyncio.run(write())
    with sqlite3.connect(_db_path(sqlite_url)) as conn:
        conn.execute(
            f"UPDATE eventstore_events SET envelope = {envelope_sql} WHERE run_id = ? AND seq = ?",
            (str(run_id), seq),
        )
    return run_id


def _read(sqlite_url: str, run_id: RunId, after: int = 0, limit: int = 100) -> None:
    async def read() -> None:
        async with eventstore.open_store(sqlite_url) as store:
            await store.list_after(run_id, after, limit)

    asyncio.run(read())


@pytest.mark.parametrize(
    "damage",
    ["{not json", '{"event_id": "x"}', "", "[]"],
)
def test_corrupt_row_names_run_and_seq(sqlite_url: str, damage: str) -> None:
    quoted = "'" + damage.replace("'", "''") + "'"
    run_id = _written_then_damaged(sqlite_url, 5, 3, quoted)
    for after, limit in ((0, 100), (2, 1)):
        with pytest.raises(CorruptEventError) as caught:
            _read(sqlite_url, run_id, after, limit)
        assert caught.value.run_id == run_id
        assert caught.value.position == "seq 3"
    _read(sqlite_url, run_id, 3)  # the rows after it still read


@pytest.mark.parametrize(("count", "seq"), [(2, 2), (1, 1), (5, 1), (5, 3)])
def test_envelope_claiming_another_seq_is_corrupt(sqlite_url: str, count: int, seq: int) -> None:
    # Whether the row is first, last, alone or in the middle of its page.
    claims = "replace(envelope, '\"seq\":' || seq || ',', '\"seq\":7,')"
    run_id = _written_then_damaged(sqlite_url, count, seq, claims)
    with pytest.raises(CorruptEventError, match=f"seq {seq}"):
        _read(sqlite_url, run_id)


# -- group commit and locking ---------------------------------------------------------


def test_group_commit_gives_each_caller_its_own_result(sqlite_url: str) -> None:
    async def scenario() -> list[object]:
        async with eventstore.open_store(sqlite_url) as store:
            runs = [RunId.new() for _ in range(32)]
            # Every odd caller expects a seq its run does not have.
            calls = [
                store.append(TextDelta(run_id=run, delta="x"), expected_seq=index % 2)
                for index, run in enumerate(runs)
            ]
            results = await asyncio.gather(*calls, return_exceptions=True)
            last = [await store.last_seq(run) for run in runs]
        return [*results, last]

    *results, last = asyncio.run(scenario())
    for index, result in enumerate(results):
        if index % 2:
            assert isinstance(result, ConcurrencyError)
            assert (result.expected_seq, result.actual_seq) == (1, 0)
        else:
            assert isinstance(result, eventstore.EventEnvelope)
            assert result.seq == 1
    assert last == [0 if i % 2 else 1 for i in range(32)]


def test_locked_database_is_waited_for_not_reported(sqlite_url: str) -> None:
    asyncio.run(migrate(sqlite_url))
    blocker = sqlite3.connect(_db_path(sqlite_url), isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")

    async def scenario() -> int:
        async with eventstore.open_store(sqlite_url, busy_timeout_ms=20) as store:
            append = asyncio.create_task(store.append(TextDelta(run_id=RunId.new(), delta="x")))
            await asyncio.sleep(0.3)  # several busy timeouts pass while it waits
            assert not append.done()
            blocker.execute("COMMIT")
            return (await append).seq

    try:
        assert asyncio.run(scenario()) == 1
    finally:
        blocker.close()


def test_lock_held_past_the_deadline_is_backend_unavailable(sqlite_url: str) -> None:
    asyncio.run(migrate(sqlite_url))
    blocker = sqlite3.connect(_db_path(sqlite_url), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")

    async def scenario() -> None:
        async with eventstore.open_store(
            sqlite_url, busy_timeout_ms=10, lock_timeout_s=0.2
        ) as store:
            await store.append(TextDelta(run_id=RunId.new(), delta="x"))

    try:
        with pytest.raises(BackendUnavailableError, match="locked") as caught:
            asyncio.run(scenario())
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    finally:
        blocker.close()


def test_list_runs_pages_by_run_id_and_session(sqlite_url: str) -> None:
    session = eventstore.SessionId.new()

    async def scenario() -> tuple[list[RunId], list[RunId], list[RunId]]:
        async with eventstore.open_store(sqlite_url) as store:
            runs = sorted(RunId.new() for _ in range(5))
            for run in runs:
                await store.append(
                    eventstore.RunStarted(run_id=run, session_id=session, provider="p", model="m")
                )
            await store.append(TextDelta(run_id=RunId.new(), delta="no session"))
            first = [r.run_id for r in await store.list_runs(session_id=session, limit=3)]
            rest = [
                r.run_id
                for r in await store.list_runs(session_id=session, limit=3, after=first[-1])
            ]
            return runs, first, rest

    runs, first, rest = asyncio.run(scenario())
    assert first + rest == runs


# -- delete racing an append ------------------------------------------------------------


def test_postgres_delete_waits_for_an_append_in_flight_and_removes_its_event(
    postgres_url: str, postgres_prefix: str
) -> None:
    """An append holding the run's counter row commits, then the delete removes it too.

    Reading the events in the same statement that waited for the lock would miss the
    appended row, leaving an orphan event that later collides with new seqs.
    """
    run_id = RunId.new()

    async def scenario() -> None:
        async with eventstore.open_store(postgres_url) as store:
            stored = await store.append_batch(
                [TextDelta(run_id=run_id, delta=str(i)) for i in range(3)]
            )
            late = stored[-1].model_copy(update={"seq": 4, "event_id": eventstore.EventId.new()})
            conn = await asyncpg.connect(**connect_kwargs(postgres_url.split("?")[0]))
            try:
                # Play an append in flight: lock the counter row, write seq 4, not committed yet.
                transaction = conn.transaction()
                await transaction.start()
                await conn.execute(
                    f"SELECT 1 FROM {postgres_prefix}runs WHERE run_id = $1 FOR UPDATE", str(run_id)
                )
                await conn.execute(
                    f"INSERT INTO {postgres_prefix}events "
                    "(run_id, seq, event_id, event_type, envelope, session_id, emitted_us) "
                    "VALUES ($1, 4, $2, 'TextDelta', $3, NULL, 0)",
                    str(run_id),
                    str(late.event_id),
                    late.model_dump_json(),
                )
                await conn.execute(
                    f"UPDATE {postgres_prefix}runs SET last_seq = 4 WHERE run_id = $1", str(run_id)
                )
                deleting = asyncio.ensure_future(store.delete_run(run_id))
                await asyncio.sleep(0.3)
                assert not deleting.done()  # it waits for the append's lock
                await transaction.commit()
                assert await deleting == 4
            finally:
                await conn.close()
            assert await store.list_after(run_id) == []
            assert await store.last_seq(run_id) == 0
            again = await store.append_batch(
                [TextDelta(run_id=run_id, delta=str(i)) for i in range(5)]
            )
            assert [e.seq for e in again] == [1, 2, 3, 4, 5]

    asyncio.run(scenario())
