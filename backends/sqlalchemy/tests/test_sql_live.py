"""Live subscribe across store objects: the core's shared poller and PostgreSQL's LISTEN.

Each test subscribes through one store object and writes through another on the
same database, as another process would: the reader's notifier never hears of those
writes, so the wake-ups tested here come from the poller (``_last_seqs``) or NOTIFY.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any

import asyncpg
import pytest
from _sql_support import connect_kwargs
from eventstore_sqlalchemy import (
    PostgresEventStore,
    SQLEventStore,
    SQLiteEventStore,
    _postgres,
    _sqlite,
)

import eventstore
from eventstore import RunId, TextDelta
from eventstore.errors import RunDeletedError

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def delta(run_id: RunId, text: str = "x") -> TextDelta:
    return TextDelta(run_id=run_id, delta=text)


def open_sql(url: str) -> SQLEventStore:
    store = eventstore.open_store(url)
    assert isinstance(store, SQLEventStore)
    return store


def _count_last_seqs(store: SQLEventStore) -> list[int]:
    """Record how many runs each ``_last_seqs`` call of ``store`` asks for."""
    calls: list[int] = []
    original = store._last_seqs

    async def counting(run_ids: Sequence[RunId]) -> dict[RunId, int]:
        calls.append(len(run_ids))
        return await original(run_ids)

    store._last_seqs = counting  # type: ignore[method-assign]
    return calls


def _count_last_seq(store: SQLEventStore) -> list[RunId]:
    calls: list[RunId] = []
    original = store._last_seq

    async def counting(run_id: RunId) -> int:
        calls.append(run_id)
        return await original(run_id)

    store._last_seq = counting  # type: ignore[method-assign]
    return calls


async def _follow(stream: Any, got: asyncio.Queue[Any]) -> None:
    try:
        async for envelope in stream:
            got.put_nowait(envelope)
    except Exception as exc:
        got.put_nowait(exc)


def _poller_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "eventstore-poller" and not t.done()]


def test_last_seqs_answers_many_runs_in_chunks(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sqlite, "_LAST_SEQS_CHUNK", 4)
    monkeypatch.setattr(_postgres, "_LAST_SEQS_CHUNK", 3)
    run_ids = [RunId.new() for _ in range(11)]

    async def body() -> dict[RunId, int]:
        async with open_sql(url) as store:
            for index, run_id in enumerate(run_ids[:9]):
                await store.append_batch([delta(run_id)] * (index + 1))
            await store.delete_run(run_ids[0])
            return await store._last_seqs(run_ids)

    found = run(body())
    # Deleted and unknown runs read as 0, whether they are in the result or not.
    assert [found.get(run_id, 0) for run_id in run_ids] == [0, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0]


def test_many_idle_subscribers_cost_one_last_seqs_call_per_round(url: str) -> None:
    count = 60

    async def body() -> tuple[list[int], list[RunId], int]:
        run_ids = [RunId.new() for _ in range(count)]
        async with open_sql(url) as readers, open_sql(url) as writer:
            for run_id in run_ids:
                await writer.append(delta(run_id))
            got: asyncio.Queue[Any] = asyncio.Queue()
            tasks = [
                asyncio.ensure_future(_follow(readers.subscribe(run_id), got)) for run_id in run_ids
            ]
            for _ in range(count):
                assert (await asyncio.wait_for(got.get(), 10)).seq == 1
            await asyncio.sleep(0.3)
            calls = _count_last_seqs(readers)
            singles = _count_last_seq(readers)
            await asyncio.sleep(1.5)
            seen = list(calls)
            pollers = len(_poller_tasks())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return seen, singles, pollers

    calls, singles, pollers = run(body())
    assert pollers == 1
    # SQLite polls every 100 ms when idle; PostgreSQL, listening, once a second.
    assert 1 <= len(calls) <= 20, calls
    assert all(asked == count for asked in calls), calls
    assert singles == []  # no subscriber looks by itself


def test_a_subscriber_is_woken_by_another_store_objects_append(url: str) -> None:
    async def body() -> list[float]:
        run_id = RunId.new()
        latencies = []
        async with open_sql(url) as reader, open_sql(url) as writer:
            got: asyncio.Queue[Any] = asyncio.Queue()
            task = asyncio.ensure_future(_follow(reader.subscribe(run_id), got))
            loop = asyncio.get_running_loop()
            for index in range(5):
                await asyncio.sleep(0.3)  # the subscriber waits, the poller backs off
                started = loop.time()
                await writer.append(delta(run_id, str(index)))
                envelope = await asyncio.wait_for(got.get(), 5)
                assert envelope.seq == index + 1
                latencies.append(loop.time() - started)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return latencies

    latencies = run(body())
    # Polling backs off to 100 ms; NOTIFY is faster still. Generous for a loaded CI.
    assert max(latencies) < 1.0, latencies


def test_a_delete_by_another_store_object_ends_the_subscriber(url: str) -> None:
    async def body() -> float:
        run_id = RunId.new()
        async with open_sql(url) as reader, open_sql(url) as writer:
            await writer.append_batch([delta(run_id)] * 2)
            stream = reader.subscribe(run_id)
            assert [(await anext(stream)).seq for _ in range(2)] == [1, 2]
            waiting = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(0.3)
            loop = asyncio.get_running_loop()
            started = loop.time()
            await writer.delete_run(run_id)
            with pytest.raises(RunDeletedError):
                await asyncio.wait_for(waiting, 5)
            return loop.time() - started

    # SQLite: the next poll; PostgreSQL: the delete's NOTIFY (else the 1 s safety poll).
    assert run(body()) < 1.0


def test_no_poller_task_is_left_after_close(url: str) -> None:
    async def body() -> tuple[int, int]:
        store = open_sql(url)
        await store.open()
        got: asyncio.Queue[Any] = asyncio.Queue()
        tasks = [
            asyncio.ensure_future(_follow(store.subscribe(RunId.new()), got)) for _ in range(3)
        ]
        await asyncio.sleep(0.2)
        during = len(_poller_tasks())
        await store.close()
        after = len(_poller_tasks())
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        return during, after

    assert run(body()) == (1, 0)


def test_sqlite_idle_subscribers_poll_at_100_ms(sqlite_url: str) -> None:
    async def body() -> int:
        async with SQLiteEventStore.from_url(sqlite_url) as store:
            got: asyncio.Queue[Any] = asyncio.Queue()
            task = asyncio.ensure_future(_follow(store.subscribe(RunId.new()), got))
            await asyncio.sleep(0.5)
            calls = _count_last_seqs(store)
            await asyncio.sleep(1.0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return len(calls)

    assert 5 <= run(body()) <= 12


async def _terminate(server_url: str, pid: int) -> None:
    conn = await asyncpg.connect(**connect_kwargs(server_url))
    try:
        await conn.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


def test_postgres_subscribers_poll_while_the_listener_is_lost(postgres_url: str) -> None:
    # A lost LISTEN connection wakes every subscriber, and until a wait connects a
    # new one, the poller looks at the default pace: appends meanwhile are not lost.
    async def body() -> tuple[list[int], float]:
        run_id = RunId.new()
        async with open_sql(postgres_url) as reader, open_sql(postgres_url) as writer:
            assert isinstance(reader, PostgresEventStore)
            got: asyncio.Queue[Any] = asyncio.Queue()
            task = asyncio.ensure_future(_follow(reader.subscribe(run_id), got))
            await writer.append(delta(run_id))
            assert (await asyncio.wait_for(got.get(), 5)).seq == 1
            listener = reader._listener
            assert listener is not None
            await _terminate(postgres_url, listener.get_server_pid())
            loop = asyncio.get_running_loop()
            started = loop.time()
            seqs = []
            for _ in range(3):
                await writer.append(delta(run_id))
                seqs.append((await asyncio.wait_for(got.get(), 5)).seq)
            elapsed = loop.time() - started
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return seqs, elapsed

    seqs, elapsed = run(body())
    assert seqs == [2, 3, 4]
    assert elapsed < 3.0
