"""PostgreSQL when things go wrong: lost acknowledgements, close() racing appends or
cancelled, and a database whose default isolation level is not the server's default."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from _pg_proxy import LostAckProxy
from _sql_support import connect_kwargs, create_database, drop_database, with_options
from eventstore_sqlalchemy import PostgresEventStore
from sqlalchemy.engine import make_url

import eventstore
from eventstore import BackendUnavailableError, ConcurrencyError, EventEnvelope, RunId, TextDelta
from eventstore.errors import StoreClosedError


def _delta(run_id: RunId, index: int) -> TextDelta:
    return TextDelta(run_id=run_id, delta=f"{index}")


@contextlib.asynccontextmanager
async def _run_locked(database_url: str, prefix: str, run_id: RunId) -> AsyncIterator[Any]:
    """Hold the run's counter row from another connection: its appends wait behind it.

    Yields the holding transaction; roll it back to let them through.
    """
    blocker = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        holding = blocker.transaction()
        await holding.start()
        await blocker.execute(
            f"SELECT 1 FROM {prefix}runs WHERE run_id = $1 FOR UPDATE", str(run_id)
        )
        yield holding
    finally:
        await blocker.close()


async def _store_connections(database_url: str) -> int:
    """Connections to the test database other than this one."""
    conn = await asyncpg.connect(**connect_kwargs(database_url))
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return count
    finally:
        await conn.close()


def test_lost_acknowledgement_of_delete_and_import(
    postgres_database: str, postgres_prefix: str
) -> None:
    parsed = make_url(postgres_database)

    async def scenario() -> None:
        async with LostAckProxy(parsed.host or "127.0.0.1", parsed.port or 5432) as proxy:
            through = parsed.set(port=proxy.port).render_as_string(hide_password=False)
            url = with_options(through, table_prefix=postgres_prefix)
            async with eventstore.open_store(url) as store:
                run_id = RunId.new()
                for index in range(5):
                    await store.append(_delta(run_id, index))
                proxy.armed = 1
                # Committed, acknowledgement lost, retried: still the number deleted.
                assert await store.delete_run(run_id) == 5
                assert proxy.cuts == 1
                assert await store.list_after(run_id) == []

                async with eventstore.open_store("memory://") as source:
                    copied = RunId.new()
                    envelopes = [await source.append(_delta(copied, i)) for i in range(3)]
                proxy.armed = 1
                # The retry finds its own import stored: success, not "diverged".
                assert await store.import_envelopes(envelopes) == 3
                assert proxy.cuts == 2
                assert await store.list_after(copied) == envelopes

    asyncio.run(scenario())


def test_cancelled_close_answers_every_append_and_releases_connections(
    postgres_url: str, postgres_database: str, postgres_prefix: str
) -> None:
    async def scenario() -> list[EventEnvelope | BaseException]:
        run_id = RunId.new()
        store = eventstore.open_store(postgres_url)
        await store.open()
        await store.append(_delta(run_id, 0))
        async with _run_locked(postgres_database, postgres_prefix, run_id) as blocking:
            first = asyncio.create_task(store.append(_delta(run_id, 1)))  # the caller's own
            await asyncio.sleep(0.1)
            queued = [asyncio.create_task(store.append(_delta(run_id, i))) for i in range(2, 6)]
            await asyncio.sleep(0.1)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(store.close(), 0.3)
            await blocking.rollback()
            done, pending = await asyncio.wait([first, *queued], timeout=15)
            assert not pending, "an append was never answered after close() was cancelled"
            return [task.exception() or task.result() for task in done]

    outcomes = asyncio.run(scenario())
    assert len(outcomes) == 5
    for outcome in outcomes:
        assert isinstance(outcome, (EventEnvelope, StoreClosedError)), outcome
    assert asyncio.run(_store_connections(postgres_database)) == 0


@pytest.mark.parametrize("pool_size", [1, 3])
def test_close_lets_every_accepted_append_finish(postgres_url: str, pool_size: int) -> None:
    async def scenario() -> tuple[list[object], list[EventEnvelope]]:
        run_id = RunId.new()
        store = eventstore.open_store(postgres_url, pool_size=pool_size)
        await store.open()
        appends = [asyncio.create_task(store.append(_delta(run_id, i))) for i in range(200)]
        await asyncio.sleep(0)  # every append accepted, the first ones in flight
        await store.close()
        results = await asyncio.gather(*appends, return_exceptions=True)
        async with eventstore.open_store(postgres_url) as reader:
            stored = await reader.list_after(run_id, None, 1000)
        return results, stored

    results, stored = asyncio.run(scenario())
    assert collections.Counter(type(r).__name__ for r in results) == {"EventEnvelope": 200}
    assert [e.seq for e in stored] == list(range(1, 201))


def test_appends_under_repeatable_read_default_isolation(postgres_server: str) -> None:
    database = create_database(postgres_server)
    name = make_url(database).database
    try:

        async def scenario() -> list[object]:
            admin = await asyncpg.connect(**connect_kwargs(database))
            try:
                await admin.execute(
                    f"ALTER DATABASE \"{name}\" SET default_transaction_isolation = 'repeatable read'"
                )
            finally:
                await admin.close()
            run_id = RunId.new()
            async with (
                eventstore.open_store(database) as one,
                eventstore.open_store(database) as two,
            ):
                results = await asyncio.gather(
                    *((one, two)[i % 2].append(_delta(run_id, i)) for i in range(100)),
                    return_exceptions=True,
                )
                assert await one.delete_run(run_id) == 100
            return results

        results = asyncio.run(scenario())
        assert collections.Counter(type(r).__name__ for r in results) == {"EventEnvelope": 100}
    finally:
        drop_database(postgres_server, database)


def test_cancelled_committer_answers_its_callers(
    postgres_url: str, postgres_database: str, postgres_prefix: str
) -> None:
    # What the event loop shutting down does to the store's committer tasks.
    async def scenario() -> list[BaseException | EventEnvelope]:
        run_id = RunId.new()
        async with eventstore.open_store(postgres_url) as store:
            assert isinstance(store, PostgresEventStore)
            await store.append(_delta(run_id, 0))
            async with _run_locked(postgres_database, postgres_prefix, run_id) as blocking:
                first = asyncio.create_task(store.append(_delta(run_id, 1)))
                await asyncio.sleep(0.1)
                queued = [asyncio.create_task(store.append(_delta(run_id, i))) for i in (2, 3)]
                await asyncio.sleep(0.1)
                assert store._writer._tasks, "the queued appends have a committer task"
                for task in list(store._writer._tasks):
                    task.cancel()
                done, pending = await asyncio.wait(queued, timeout=10)
                assert not pending, "a caller of a cancelled committer was never answered"
                await blocking.rollback()
                await first
                return [task.exception() or task.result() for task in done]

    for outcome in asyncio.run(scenario()):
        assert isinstance(outcome, BackendUnavailableError), outcome
        assert "interrupted" in str(outcome)


def test_lost_commit_is_not_mistaken_for_a_lost_acknowledgement(
    postgres_url: str, postgres_database: str, postgres_prefix: str
) -> None:
    # The COMMIT itself is lost (rolled back), and another client deletes or imports
    # the same data before the retry: the two calls must not both claim it.
    parsed = make_url(postgres_database)

    async def scenario() -> tuple[list[int], list[int | BaseException]]:
        async with LostAckProxy(parsed.host or "127.0.0.1", parsed.port or 5432) as proxy:
            proxy.drop_commit = True
            through = parsed.set(port=proxy.port).render_as_string(hide_password=False)
            url = with_options(through, table_prefix=postgres_prefix)
            async with (
                eventstore.open_store(url) as cut,
                eventstore.open_store(postgres_url) as other,
            ):
                run_id = RunId.new()
                for index in range(5):
                    await other.append(_delta(run_id, index))

                async def other_after_cut(call: Any) -> int:
                    await proxy.after_cut.wait()
                    proxy.after_cut.clear()
                    return int(await call())

                proxy.armed = 1
                deleted = await asyncio.gather(
                    cut.delete_run(run_id),
                    other_after_cut(lambda: other.delete_run(run_id)),
                )
                async with eventstore.open_store("memory://") as source:
                    copied = RunId.new()
                    envelopes = [await source.append(_delta(copied, i)) for i in range(3)]
                proxy.armed = 1
                imported = await asyncio.gather(
                    cut.import_envelopes(envelopes),
                    other_after_cut(lambda: other.import_envelopes(envelopes)),
                    return_exceptions=True,
                )
                assert proxy.cuts == 2
                assert await other.list_after(copied) == envelopes
                return list(deleted), list(imported)

    deleted, imported = asyncio.run(scenario())
    assert sum(deleted) == 5, deleted
    # One import stored the envelopes; the other found them stored (0 new) or, if it
    # was the retry that came second, found the run moved on (ConcurrencyError: a
    # copy is simply run again).
    counts = [n for n in imported if isinstance(n, int)]
    assert sum(counts) == 3, imported
    assert all(isinstance(e, ConcurrencyError) for e in imported if not isinstance(e, int))
