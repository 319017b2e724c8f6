"""The shared poller of live subscribers (eventstore/_poller.py) and the subscribe loop.

Stores here share their runs through a dict, like two processes sharing a database:
the notifier of one never hears of the other's writes, so only the poller can wake
a subscriber of one for an append or a delete made through the other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any

import pytest

import eventstore as es
from eventstore import _poller
from eventstore.errors import RunDeletedError
from eventstore.memory import MemoryEventStore


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def delta(run_id: es.RunId, text: str = "x") -> es.TextDelta:
    return es.TextDelta(run_id=run_id, delta=text)


class Shared(MemoryEventStore):
    """A memory store on a dict shared with other objects: it must poll."""

    def __init__(self, runs: dict[es.RunId, Any], interval: float | None = None) -> None:
        super().__init__()
        self._runs = runs
        self.interval = interval
        self.last_seqs_calls: list[int] = []  # how many runs each call asked for
        self.last_seq_calls = 0
        self.list_after_calls = 0
        self.fail = False

    _default_interval = es.EventStore._poll_interval

    def _poll_interval(self, idle_rounds: int) -> float | None:
        if self.interval is not None:
            return self.interval
        return self._default_interval(idle_rounds)

    async def _last_seq(self, run_id: es.RunId) -> int:
        self.last_seq_calls += 1
        return await super()._last_seq(run_id)

    async def _last_seqs(self, run_ids: Sequence[es.RunId]) -> dict[es.RunId, int]:
        self.last_seqs_calls.append(len(run_ids))
        if self.fail:
            raise ConnectionError("the storage is gone")
        return {r: len(self._runs[r].envelopes) for r in run_ids if r in self._runs}

    async def _list_after(
        self, run_id: es.RunId, after_seq: int, limit: int
    ) -> list[es.EventEnvelope]:
        self.list_after_calls += 1
        return await super()._list_after(run_id, after_seq, limit)

    async def _do_close(self) -> None:
        pass  # the dict stays for the other store objects


def _poller_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "eventstore-poller" and not t.done()]


async def _follow(stream: Any, got: asyncio.Queue[Any]) -> None:
    try:
        async for envelope in stream:
            got.put_nowait(envelope)
    except Exception as exc:
        got.put_nowait(exc)


def test_one_last_seqs_call_per_round_for_every_waiting_subscriber() -> None:
    count = 200

    async def body() -> tuple[list[int], int, int]:
        runs: dict[es.RunId, Any] = {}
        run_ids = [es.RunId.new() for _ in range(count)]
        async with Shared(runs) as readers, Shared(runs) as writer:
            for run_id in run_ids:
                await writer.append(delta(run_id))
            got: asyncio.Queue[Any] = asyncio.Queue()
            tasks = [
                asyncio.ensure_future(_follow(readers.subscribe(run_id), got)) for run_id in run_ids
            ]
            for _ in range(count):
                assert (await asyncio.wait_for(got.get(), 5)).seq == 1
            await asyncio.sleep(0.2)  # every subscriber waits
            readers.last_seqs_calls.clear()
            reads_before = readers.list_after_calls
            await asyncio.sleep(0.6)
            calls = list(readers.last_seqs_calls)
            reads = readers.list_after_calls - reads_before
            # An append through the other object wakes its subscriber, and only it.
            await writer.append(delta(run_ids[7]))
            woken = await asyncio.wait_for(got.get(), 2)
            assert (woken.run_id, woken.seq) == (run_ids[7], 2)
            await asyncio.sleep(0.2)
            assert got.empty()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return calls, reads, readers.last_seq_calls

    calls, reads, last_seq_calls = run(body())
    # Idle: a few full rounds (backing off to 100 ms), each one call for all 200 runs.
    assert 2 <= len(calls) <= 12, calls
    assert all(asked == count for asked in calls), calls
    assert reads == 0  # idle subscribers read nothing
    assert last_seq_calls == 0  # no subscriber looked by itself


def test_a_delete_through_another_store_object_ends_the_subscriber() -> None:
    async def body() -> type[BaseException]:
        runs: dict[es.RunId, Any] = {}
        run_id = es.RunId.new()
        async with Shared(runs) as reader, Shared(runs) as writer:
            await writer.append_batch([delta(run_id)] * 2)
            stream = reader.subscribe(run_id)
            assert [(await anext(stream)).seq for _ in range(2)] == [1, 2]
            waiting = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(0.3)  # waiting, the poller idle
            await writer.delete_run(run_id)
            try:
                await asyncio.wait_for(waiting, 2)
            except RunDeletedError as exc:
                return type(exc)
            raise AssertionError("the delete was not noticed")

    assert run(body()) is RunDeletedError


def test_a_new_waiter_is_rechecked_at_once_whatever_the_poll_interval() -> None:
    # An append made between a subscriber's last read and its registration reaches
    # it through the recheck, not after the next full round (here 60 s away).
    async def body() -> float:
        runs: dict[es.RunId, Any] = {}
        run_id = es.RunId.new()
        async with Shared(runs, interval=60.0) as reader, Shared(runs) as writer:
            await writer.append(delta(run_id))  # after the reader's "read" at seq 0
            loop = asyncio.get_running_loop()
            started = loop.time()
            await asyncio.wait_for(reader._wait_for_append(run_id, 0, 0), 2)
            return loop.time() - started

    assert run(body()) < 1.0


def test_no_poller_task_is_left_after_close() -> None:
    async def body() -> tuple[int, int, int]:
        runs: dict[es.RunId, Any] = {}
        run_ids = [es.RunId.new() for _ in range(5)]
        reader = Shared(runs)
        await reader.open()
        got: asyncio.Queue[Any] = asyncio.Queue()
        tasks = [asyncio.ensure_future(_follow(reader.subscribe(r), got)) for r in run_ids]
        await asyncio.sleep(0.1)
        running = len(_poller_tasks())
        await reader.close()
        after_close = len(_poller_tasks())
        await asyncio.wait_for(asyncio.gather(*tasks), 2)  # the subscribers end too
        return running, after_close, len(reader._pollers)

    assert run(body()) == (1, 0, 0)


def test_the_poller_task_ends_once_nobody_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_poller, "LINGER", 0.05)

    async def body() -> tuple[int, int]:
        runs: dict[es.RunId, Any] = {}
        async with Shared(runs) as reader:
            stream = reader.subscribe(es.RunId.new())
            waiting = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(0.1)
            during = len(_poller_tasks())
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
            await asyncio.sleep(0.3)
            return during, len(_poller_tasks()) + len(reader._pollers)

    assert run(body()) == (1, 0)


def test_a_failing_look_wakes_the_subscribers_and_backs_off() -> None:
    async def body() -> int:
        runs: dict[es.RunId, Any] = {}
        run_id = es.RunId.new()
        async with Shared(runs) as reader, Shared(runs) as writer:
            await writer.append(delta(run_id))
            got: asyncio.Queue[Any] = asyncio.Queue()
            task = asyncio.ensure_future(_follow(reader.subscribe(run_id), got))
            assert (await asyncio.wait_for(got.get(), 2)).seq == 1
            reader.fail = True
            await asyncio.sleep(0.2)
            reader.last_seqs_calls.clear()
            await asyncio.sleep(1.0)
            failing_calls = len(reader.last_seqs_calls)
            reader.fail = False
            await writer.append(delta(run_id))
            assert (await asyncio.wait_for(got.get(), 3)).seq == 2
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return failing_calls

    failing_calls = run(body())
    assert 1 <= failing_calls <= 12  # backing off to 1 s, not a busy loop


def test_a_subscriber_past_the_run_end_neither_spins_nor_misses_the_seq_it_waits_for() -> None:
    async def body() -> tuple[int, list[int]]:
        runs: dict[es.RunId, Any] = {}
        run_id = es.RunId.new()
        async with Shared(runs) as reader, Shared(runs) as writer:
            await writer.append_batch([delta(run_id)] * 3)
            got: asyncio.Queue[Any] = asyncio.Queue()
            task = asyncio.ensure_future(_follow(reader.subscribe(run_id, 5), got))
            await asyncio.sleep(0.1)
            reads_before = reader.list_after_calls
            await asyncio.sleep(0.5)
            idle_reads = reader.list_after_calls - reads_before
            for _ in range(3):
                await writer.append(delta(run_id))
            first = await asyncio.wait_for(got.get(), 2)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return idle_reads, [first.seq]

    idle_reads, seqs = run(body())
    assert idle_reads == 0
    assert seqs == [6]


def test_a_short_page_is_not_read_again_before_waiting() -> None:
    # Every delivery costs one read: the page that brought the event. The run was
    # read to its end (the page was short), so the wait comes next, not a re-read.
    async def body() -> int:
        store = MemoryEventStore()
        calls = 0
        original = store._list_after

        async def counting(run_id: es.RunId, after: int, limit: int) -> list[es.EventEnvelope]:
            nonlocal calls
            calls += 1
            return await original(run_id, after, limit)

        store._list_after = counting  # type: ignore[method-assign]
        run_id = es.RunId.new()
        async with store:
            stream = store.subscribe(run_id)
            for index in range(20):
                waiting = asyncio.ensure_future(anext(stream))
                await asyncio.sleep(0)
                await store.append(delta(run_id, str(index)))
                assert (await asyncio.wait_for(waiting, 2)).seq == index + 1
            await stream.aclose()  # type: ignore[attr-defined]
        return calls

    assert run(body()) <= 21


def test_full_pages_are_read_on_without_waiting() -> None:
    async def body() -> list[int]:
        store = MemoryEventStore()
        store.subscribe_page_size = 4  # type: ignore[misc]
        run_id = es.RunId.new()
        async with store:
            await store.append_batch([delta(run_id)] * 10)
            stream = store.subscribe(run_id)
            seqs = [(await asyncio.wait_for(anext(stream), 2)).seq for _ in range(10)]
            await stream.aclose()  # type: ignore[attr-defined]
        return seqs

    assert run(body()) == list(range(1, 11))


def test_the_default_last_seqs_asks_last_seq_run_by_run() -> None:
    async def body() -> dict[es.RunId, int]:
        store = MemoryEventStore()
        first, second = es.RunId.new(), es.RunId.new()
        async with store:
            await store.append_batch([delta(first)] * 3)
            return await es.EventStore._last_seqs(store, [first, second])

    result = run(body())
    assert sorted(result.values()) == [0, 3]


def test_poll_delay_backs_off_from_5_to_100_ms() -> None:
    from eventstore.backend import poll_delay

    assert [poll_delay(n) for n in range(8)] == [0.005, 0.01, 0.02, 0.04, 0.08, 0.1, 0.1, 0.1]
