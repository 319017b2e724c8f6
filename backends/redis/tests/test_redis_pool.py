"""More callers than connections, and calls from an event loop the store was not opened on."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis
from _redis_support import run
from eventstore_redis import RedisEventStore
from eventstore_redis._pool import WaitingConnectionPool
from redis.asyncio import Redis

from eventstore import EventStoreError, RunId, TextDelta
from eventstore.errors import UnsupportedOperationError


@pytest.mark.parametrize("max_connections", [1, 2, 25])
def test_callers_wait_for_a_connection_instead_of_failing(
    make_store: Callable[..., RedisEventStore], max_connections: int
) -> None:
    async def scenario() -> None:
        async with make_store(max_connections=max_connections) as store:
            run_id = RunId.new()
            appended = await asyncio.gather(
                *(store.append(TextDelta(run_id=run_id, delta=f"{i}")) for i in range(40))
            )
            assert sorted(e.seq for e in appended) == list(range(1, 41))
            pages = await asyncio.gather(*(store.list_after(run_id) for _ in range(300)))
            assert all(len(page) == 40 for page in pages)

    run(scenario())


def test_a_call_from_another_event_loop_is_refused_clearly(
    make_store: Callable[..., RedisEventStore],
) -> None:
    async def scenario() -> None:
        async with make_store() as store:
            run_id = RunId.new()
            await store.append(TextDelta(run_id=run_id, delta="first"))
            outcome: dict[str, Any] = {}

            def elsewhere() -> None:
                async def call() -> None:
                    await store.list_after(run_id)

                try:
                    asyncio.run(call())
                except Exception as exc:  # reported below
                    outcome["error"] = exc

            thread = threading.Thread(target=elsewhere)
            thread.start()
            await asyncio.to_thread(thread.join)
            assert isinstance(outcome.get("error"), UnsupportedOperationError), outcome
            assert "another event loop" in str(outcome["error"])
            # The store is untouched on its own loop.
            await store.append(TextDelta(run_id=run_id, delta="second"))
            assert [e.seq for e in await store.list_after(run_id)] == [1, 2]

    run(scenario())


def _pool(url: str, size: int, wait: float) -> WaitingConnectionPool:
    return WaitingConnectionPool.from_url(url, max_connections=size, wait_timeout=wait)


def test_a_waiting_caller_is_not_starved_by_a_busy_one(redis_server_url: str) -> None:
    # One task pings in a tight loop on a pool of one; a second caller must get its
    # turn, not lose every race to the busy task until it times out.
    async def scenario() -> float:
        client = Redis.from_pool(_pool(redis_server_url, 1, 2.0))
        stop = asyncio.Event()

        async def busy() -> None:
            while not stop.is_set():
                await client.ping()

        hog = asyncio.create_task(busy())
        await asyncio.sleep(0.05)
        started = time.monotonic()
        try:
            await client.ping()
            return time.monotonic() - started
        finally:
            stop.set()
            await hog
            await client.aclose()

    assert run(scenario()) < 1.0


def test_callers_waiting_when_the_store_closes_open_no_connection(
    make_store: Callable[..., RedisEventStore], raw: redis.Redis
) -> None:
    name = f"poolclose{uuid.uuid4().hex[:8]}"

    async def scenario() -> list[object]:
        store = make_store(max_connections=2, client_name=name)
        await store.open()
        run_id = RunId.new()
        await store.append(TextDelta(run_id=run_id, delta="x"))
        reads = [asyncio.create_task(store.list_after(run_id)) for _ in range(50)]
        await asyncio.sleep(0)
        await store.close()
        return await asyncio.gather(*reads, return_exceptions=True)

    outcomes = run(scenario())
    assert all(isinstance(o, (list, EventStoreError)) for o in outcomes), outcomes
    deadline = time.monotonic() + 2  # the server notices closed sockets a moment later
    while (clients := [c for c in raw.client_list() if c.get("name") == name]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert clients == [], clients


def test_a_cancelled_waiter_passes_its_turn_on(redis_server_url: str) -> None:
    async def scenario() -> float:
        pool = _pool(redis_server_url, 1, 5.0)
        held = await pool.get_connection()
        first = asyncio.create_task(pool.get_connection())
        second = asyncio.create_task(pool.get_connection())
        await asyncio.sleep(0.01)
        await pool.release(held)  # wakes `first`...
        first.cancel()  # ...which is cancelled before its turn
        started = time.monotonic()
        connection = await asyncio.wait_for(second, 2)
        waited = time.monotonic() - started
        await pool.release(connection)
        await pool.aclose()
        return waited

    assert run(scenario()) < 0.5
