"""Copy runs memory -> SQLite -> Redis -> PostgreSQL, verifying each hop (issue 5).

Real services: Redis from ``EVENTSTORE_TEST_REDIS_URL`` (default 127.0.0.1:6379) and
PostgreSQL from ``EVENTSTORE_TEST_POSTGRES_URL`` (default the local ``test``
database's server). Unreachable services skip with the reason, or fail when
``EVENTSTORE_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import eventstore as es
import eventstore.backend as es_backend
from eventstore.copy import CopyProgress, copy_runs, verify_runs
from eventstore.memory import MemoryEventStore

REDIS = os.environ.get("EVENTSTORE_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
POSTGRES = (
    os.environ.get("EVENTSTORE_TEST_POSTGRES_URL")
    or "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def _unavailable(reason: str) -> None:
    if os.environ.get("EVENTSTORE_REQUIRE_SERVICES", "") not in ("", "0"):
        pytest.fail(f"{reason} (EVENTSTORE_REQUIRE_SERVICES is set)")
    print(f"SKIP copy round trip: {reason}")
    pytest.skip(reason)


async def _admin(sql: str) -> None:
    import asyncpg

    dsn = POSTGRES.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres", timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    name = f"es_roundtrip_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any failure to reach the server
        _unavailable(f"PostgreSQL at {es_backend.redact_url(POSTGRES)} unreachable: {exc}")
    yield POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def redis_url() -> Iterator[str]:
    import redis

    prefix = f"roundtrip-{uuid.uuid4().hex[:10]}:"
    client = redis.Redis.from_url(REDIS, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable(f"Redis at {es_backend.redact_url(REDIS)} unreachable: {exc}")
    separator = "&" if "?" in REDIS else "?"
    yield f"{REDIS}{separator}prefix={prefix}"
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


async def _fill(store: es.EventStore, runs: int) -> list[es.RunId]:
    ids = []
    for index in range(runs):
        run_id = es.RunId.new()
        await store.append(es.TextDelta(run_id=run_id, delta="before the session"))
        await store.append(
            es.RunStarted(run_id=run_id, session_id=es.SessionId.new(), provider="p", model="m")
        )
        await store.append_batch(
            [es.TextDelta(run_id=run_id, delta=f"{index}:{i} é✓") for i in range(40)]
        )
        await store.append(
            es.UnknownEvent(name="FromTheFuture", payload={"run_id": str(run_id), "x": [1]})
        )
        await store.append(
            es.RunCompleted(run_id=run_id, finish_reason=es.FinishReason.STOP, iterations=1)
        )
        ids.append(run_id)
    return ids


def test_copy_memory_sqlite_redis_postgresql_round_trip(
    tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    sqlite_url = f"sqlite+aiosqlite:///{tmp_path}/copy.db"

    async def body() -> None:
        async with MemoryEventStore() as memory:
            run_ids = await _fill(memory, runs=3)
            chain: list[es.EventStore] = [memory]
            try:
                for url in (sqlite_url, redis_url, postgres_url):
                    destination = await es.open_store(url).open()
                    chain.append(destination)
                    progress = await copy_runs(chain[-2], destination, page_size=16)
                    assert progress.runs_done == 3
                    assert progress.events_copied == 3 * 44
                    comparisons = await verify_runs(chain[-2], destination)
                    assert len(comparisons) == 3
                    assert all(c.identical for c in comparisons), comparisons
                # End to end: PostgreSQL holds exactly what the memory store held.
                for run_id in run_ids:
                    expected = await memory.list_after(run_id, None, 1000)
                    assert await chain[-1].list_after(run_id, None, 1000) == expected
            finally:
                for store in chain[1:]:
                    await store.close()

    asyncio.run(body())


def test_interrupted_copy_into_postgresql_resumes_without_duplicates(
    tmp_path: Path, postgres_url: str
) -> None:
    sqlite_url = f"sqlite+aiosqlite:///{tmp_path}/source.db"

    class Interrupted(Exception):
        pass

    def interrupt_midway(progress: CopyProgress) -> None:
        if progress.events_copied >= 50:
            raise Interrupted

    async def body() -> None:
        async with es.open_store(sqlite_url) as source, es.open_store(postgres_url) as destination:
            run_ids = await _fill(source, runs=2)
            with pytest.raises(Interrupted):
                await copy_runs(source, destination, page_size=10, on_progress=interrupt_midway)
            resumed = await copy_runs(source, destination, page_size=10)
            assert resumed.events_copied + resumed.events_skipped == 2 * 44
            assert resumed.events_skipped >= 50
            for run_id in run_ids:
                copied = await destination.list_after(run_id, None, 1000)
                assert [e.seq for e in copied] == list(range(1, 45))
                assert len({e.event_id for e in copied}) == 44
            assert all(c.identical for c in await verify_runs(source, destination))

    asyncio.run(body())
