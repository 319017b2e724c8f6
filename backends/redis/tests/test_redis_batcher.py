"""Automatic pipelining of concurrent script calls."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from _redis_support import run
from eventstore_redis._batcher import ScriptBatcher
from eventstore_redis._scripts import Script
from redis.asyncio import Redis

import eventstore
from eventstore import RunId, TextDelta


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
            await batcher.aclose(grace=None)
            await client.aclose()

    replies, stored = run(body())
    assert len(replies) == 30
    assert len(set(replies)) == 30  # each its own script run
    # A cancelled call that was already sent still ran; one not yet sent may not have.
    assert isinstance(stored, bytes)
    assert 30 <= int(stored) <= 40


def test_a_small_pool_is_not_starved_by_kept_connections(redis_server_url: str) -> None:
    """With a pool of 2, a burst of appends and the reads after it all get connections."""

    async def body() -> tuple[int, list[int]]:
        run_ids = [RunId.new() for _ in range(50)]
        url = f"{redis_server_url}?prefix={uuid.uuid4().hex[:8]}:&max_connections=2"
        async with eventstore.open_store(url) as store:
            appended = await asyncio.gather(
                *(store.append(TextDelta(run_id=r, delta="x")) for r in run_ids)
            )
            pages = [await store.list_after(r) for r in run_ids]
            for r in run_ids:
                await store.delete_run(r)
        return len(appended), sorted({len(page) for page in pages})

    assert run(body()) == (50, [1])


def test_closing_with_calls_in_flight_settles_every_caller(
    redis_server_url: str, prefix: str
) -> None:
    """Each caller gets its envelope or StoreClosedError, and the log holds exactly the
    acknowledged appends: calls still queued at close are never sent."""

    async def body() -> tuple[int, set[str], bool]:
        run_id = RunId.new()
        url = f"{redis_server_url}?prefix={prefix}"
        store = eventstore.open_store(url)
        await store.open()
        calls = [
            asyncio.ensure_future(store.append(TextDelta(run_id=run_id, delta=str(i))))
            for i in range(200)
        ]
        await asyncio.wait(calls, return_when=asyncio.FIRST_COMPLETED)
        await store.close()
        outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)
        acknowledged = [o for o in outcomes if isinstance(o, eventstore.EventEnvelope)]
        errors = {type(o).__name__ for o in outcomes if isinstance(o, BaseException)}
        async with eventstore.open_store(url) as reopened:
            stored = await reopened.list_after(run_id, None, 1000)
            await reopened.delete_run(run_id)
        same = {e.event_id for e in acknowledged} == {e.event_id for e in stored}
        return len(acknowledged), errors, same

    acknowledged, errors, same = run(body())
    assert same
    assert errors <= {"StoreClosedError"}
    assert 0 < acknowledged < 200  # the close really came in the middle


def test_pipeline_tasks_cancelled_before_they_start_leave_no_caller_waiting(
    redis_server_url: str, prefix: str
) -> None:
    async def body() -> set[str]:
        client = Redis.from_url(redis_server_url)
        batcher = ScriptBatcher(client, _counter_script())
        try:
            calls = [asyncio.ensure_future(batcher([f"{prefix}n"], [])) for _ in range(40)]
            for _ in range(3):  # the calls queue, and the flush creates the tasks
                await asyncio.sleep(0)
                for task in list(batcher._tasks):
                    task.cancel()
            done = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)
            return {type(outcome).__name__ for outcome in done}
        finally:
            await batcher.aclose(grace=None)
            await client.aclose()

    outcomes = run(body())
    assert outcomes <= {"int", "CancelledError"}


def test_after_noscript_each_call_of_a_pipeline_gets_its_own_reply_or_error(
    redis_server_url: str, prefix: str
) -> None:
    async def body() -> list[object]:
        client = Redis.from_url(redis_server_url)
        await client.set(f"{prefix}bad", "not a number")
        batcher = ScriptBatcher(client, _counter_script())  # unknown to the server yet
        try:
            future = asyncio.get_running_loop().create_future
            calls: list[tuple[list[str], list[str | int], asyncio.Future[Any]]] = [
                ([f"{prefix}{'bad' if i == 2 else 'n'}"], [], future()) for i in range(5)
            ]
            return await batcher._pipeline(calls)
        finally:
            await batcher.aclose(grace=None)
            await client.aclose()

    replies = run(body())
    assert [type(reply).__name__ for reply in replies] == [
        "int",
        "int",
        "ResponseError",
        "int",
        "int",
    ]


def test_a_pool_of_one_recovers_from_lost_scripts(redis_server_url: str) -> None:
    """NOSCRIPT with no second connection to load the script on: it loads on the same."""

    async def body() -> list[int]:
        run_id = RunId.new()
        url = f"{redis_server_url}?prefix={uuid.uuid4().hex[:8]}:&max_connections=1"
        async with eventstore.open_store(url) as store:
            await store.append(TextDelta(run_id=run_id, delta="x"))
            admin = Redis.from_url(redis_server_url)
            try:
                await admin.script_flush()
            finally:
                await admin.aclose()
            for _ in range(3):
                await store.append(TextDelta(run_id=run_id, delta="y"))
            seqs = [e.seq for e in await store.list_after(run_id)]
            await store.delete_run(run_id)
        return seqs

    assert run(body()) == [1, 2, 3, 4]
