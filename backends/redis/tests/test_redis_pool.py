"""More callers than connections, and calls from an event loop the store was not opened on."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from _redis_support import run
from eventstore_redis import RedisEventStore

from eventstore import RunId, TextDelta, UnsupportedOperationError


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
