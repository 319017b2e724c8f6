"""Automatic pipelining of concurrent script calls."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from _redis_support import run
from eventstore_redis._batcher import ScriptBatcher
from eventstore_redis._scripts import Script
from redis.asyncio import Redis


def _counter_script() -> Script:
    # A source no server has seen yet (the comment makes its SHA unique), so its
    # first EVALSHA meets NOSCRIPT.
    return Script(f"-- {uuid.uuid4()}\nreturn redis.call('INCR', KEYS[1])")


def test_a_pipeline_that_meets_noscript_loads_and_runs_every_call(
    redis_server_url: str, prefix: str
) -> None:
    async def body() -> tuple[list[Any], object]:
        client = Redis.from_url(redis_server_url)
        try:
            batcher = ScriptBatcher(client, _counter_script())
            future = asyncio.get_running_loop().create_future
            calls: list[tuple[list[str], list[str | int], asyncio.Future[Any]]] = [
                ([f"{prefix}n"], [], future()) for _ in range(5)
            ]
            replies = await batcher._pipeline(calls)
            return replies, await client.get(f"{prefix}n")
        finally:
            await client.aclose()

    replies, stored = run(body())
    assert sorted(replies) == [1, 2, 3, 4, 5]
    assert stored == b"5"


def test_concurrent_calls_each_get_their_own_reply(redis_server_url: str, prefix: str) -> None:
    async def body() -> list[int]:
        client = Redis.from_url(redis_server_url)
        try:
            batcher = ScriptBatcher(client, _counter_script())
            return list(await asyncio.gather(*(batcher([f"{prefix}n"], []) for _ in range(100))))
        finally:
            await client.aclose()

    assert sorted(run(body())) == list(range(1, 101))


def test_cancelled_callers_do_not_disturb_the_other_calls_of_their_pipeline(
    redis_server_url: str, prefix: str
) -> None:
    async def body() -> tuple[list[int], object]:
        client = Redis.from_url(redis_server_url)
        batcher = ScriptBatcher(client, _counter_script())
        try:
            calls = [asyncio.ensure_future(batcher([f"{prefix}n"], [])) for _ in range(40)]
            await asyncio.sleep(0)  # every call is queued or sent
            for call in calls[::4]:
                call.cancel()
            done = await asyncio.gather(*calls, return_exceptions=True)
            replies = [reply for reply in done if isinstance(reply, int)]
            return replies, await client.get(f"{prefix}n")
        finally:
            await batcher.aclose()
            await client.aclose()

    replies, stored = run(body())
    assert len(replies) == 30
    assert len(set(replies)) == 30  # each its own script run
    # A cancelled call that was already sent still ran; one not yet sent may not have.
    assert isinstance(stored, bytes)
    assert 30 <= int(stored) <= 40
