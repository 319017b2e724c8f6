"""Live subscribers share one blocking reader per store (issue 13, item 3).

Appends come from a second store object, as from another process: only the shared
reader (not the in-process notifier) can wake the subscribers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis
from _redis_support import run
from eventstore_redis import RedisEventStore

from eventstore import RunCompleted, RunId, TextDelta
from eventstore.errors import RunDeletedError

MakeStore = Callable[..., RedisEventStore]


def delta(run_id: RunId, text: str = "x") -> TextDelta:
    return TextDelta(run_id=run_id, delta=text)


async def _follow(
    store: RedisEventStore, run_id: RunId, got: asyncio.Queue[tuple[RunId, int]]
) -> None:
    async for envelope in store.subscribe(run_id):
        got.put_nowait((run_id, envelope.seq))


async def _until(condition: Callable[[], bool], seconds: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def test_many_subscribers_share_one_blocking_connection(
    make_store: MakeStore, raw: redis.Redis
) -> None:
    count = 300

    async def body() -> tuple[int, int, int, int, list[tuple[RunId, int]]]:
        name = f"esreader{uuid.uuid4().hex[:8]}"
        runs = [RunId.new() for _ in range(count)]
        async with make_store(client_name=name) as readers, make_store() as writer:
            got: asyncio.Queue[tuple[RunId, int]] = asyncio.Queue()
            tasks = [asyncio.create_task(_follow(readers, r, got)) for r in runs]
            reader = readers._reader
            assert reader is not None
            assert await _until(lambda: reader.streams == count, 10)
            await asyncio.sleep(0.2)  # every subscriber is blocked
            blocking = readers.open_connections()["blocking"]
            server_side = sum(1 for c in raw.client_list() if c.get("name") == name)
            delivered = []
            for run_id in (runs[0], runs[count // 2], runs[-1]):
                await writer.append(delta(run_id))
                async with asyncio.timeout(5):
                    delivered.append(await got.get())
            # Every one of them is live: one event each, all delivered.
            await asyncio.gather(*(writer.append(delta(r)) for r in runs))
            seen = set()
            async with asyncio.timeout(30):
                while len(seen) < count:
                    seen.add(await got.get())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return blocking, server_side, reader.shards, len(seen), delivered

    blocking, server_side, shards, seen, delivered = run(body())
    assert blocking <= 2
    assert shards == 1
    # The command pool grows with concurrent reads (bounded by max_connections); the
    # subscribers themselves hold none.
    assert server_side <= 1 + 256
    assert seen == count
    assert [seq for _, seq in delivered] == [1, 1, 1]


def test_a_subscriber_added_while_the_reader_blocks_is_not_delayed(
    make_store: MakeStore,
) -> None:
    async def body() -> float:
        first, second = RunId.new(), RunId.new()
        async with make_store(block_ms=10_000) as readers, make_store() as writer:
            got: asyncio.Queue[tuple[RunId, int]] = asyncio.Queue()
            waiting = asyncio.create_task(_follow(readers, first, got))
            await asyncio.sleep(0.3)  # the reader is blocked on `first` alone
            joining = asyncio.create_task(_follow(readers, second, got))
            await asyncio.sleep(0.1)
            loop = asyncio.get_running_loop()
            start = loop.time()
            await writer.append(delta(second))
            async with asyncio.timeout(2):
                assert await got.get() == (second, 1)
            elapsed = loop.time() - start
            for task in (waiting, joining):
                task.cancel()
            await asyncio.gather(waiting, joining, return_exceptions=True)
            return elapsed

    assert run(body()) < 2


def test_without_the_control_stream_a_new_subscriber_is_not_delayed(
    make_store: MakeStore,
) -> None:
    # An ACL that refuses the control stream's XADD: the read is cancelled instead.
    async def body() -> int:
        first, second = RunId.new(), RunId.new()
        async with make_store(block_ms=10_000) as readers, make_store() as writer:
            reader = readers._reader
            assert reader is not None
            reader.control_refused = True
            got: asyncio.Queue[tuple[RunId, int]] = asyncio.Queue()
            waiting = asyncio.create_task(_follow(readers, first, got))
            await asyncio.sleep(0.3)
            joining = asyncio.create_task(_follow(readers, second, got))
            await asyncio.sleep(0.1)
            await writer.append(delta(second))
            async with asyncio.timeout(2):
                _, seq = await got.get()
            await writer.append(delta(first))
            async with asyncio.timeout(2):
                assert await got.get() == (first, 1)
            for task in (waiting, joining):
                task.cancel()
            await asyncio.gather(waiting, joining, return_exceptions=True)
            return seq

    assert run(body()) == 1


def test_cancelling_one_subscriber_leaves_the_others_live(make_store: MakeStore) -> None:
    runs = [RunId.new() for _ in range(5)]

    async def body() -> tuple[bool, list[tuple[RunId, int]]]:
        async with make_store(block_ms=10_000) as readers, make_store() as writer:
            got: asyncio.Queue[tuple[RunId, int]] = asyncio.Queue()
            tasks = [asyncio.create_task(_follow(readers, r, got)) for r in runs]
            await asyncio.sleep(0.3)
            tasks[2].cancel()
            done, _ = await asyncio.wait({tasks[2]}, timeout=5)
            delivered = []
            for run_id in runs:
                await writer.append(delta(run_id))
                if run_id != runs[2]:
                    async with asyncio.timeout(2):
                        delivered.append(await got.get())
            await asyncio.sleep(0.2)
            assert got.empty()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return bool(done) and tasks[2].cancelled(), delivered

    cancelled, delivered = run(body())
    assert cancelled
    assert delivered == [(r, 1) for r in runs if r != runs[2]]


def test_another_stores_delete_ends_a_subscriber_within_block_ms(make_store: MakeStore) -> None:
    async def body() -> type[BaseException]:
        run_id = RunId.new()
        async with make_store(block_ms=300) as readers, make_store() as writer:
            await writer.append_batch([delta(run_id)] * 2)
            stream = readers.subscribe(run_id)
            assert [(await anext(stream)).seq for _ in range(2)] == [1, 2]
            following = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(0.1)
            await writer.delete_run(run_id)
            try:
                await asyncio.wait_for(following, 5)
            except Exception as exc:
                return type(exc)
            raise AssertionError("the subscriber did not notice the delete")

    assert run(body()) is RunDeletedError


def test_a_killed_reader_connection_recovers(make_store: MakeStore, raw: redis.Redis) -> None:
    async def body() -> list[int]:
        name = f"esreader{uuid.uuid4().hex[:8]}"
        run_id = RunId.new()
        async with make_store(client_name=name, block_ms=10_000) as readers, make_store() as writer:
            stream = readers.subscribe(run_id)
            following = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(0.3)
            for client in raw.client_list():
                if client.get("name") == name and "xread" in client.get("cmd", ""):
                    raw.client_kill_filter(_id=client["id"])
            await asyncio.sleep(0.3)
            await writer.append(delta(run_id))
            first = await asyncio.wait_for(following, 5)
            await writer.append(delta(run_id))
            second = await asyncio.wait_for(anext(stream), 5)
            await stream.aclose()  # type: ignore[attr-defined]
            return [first.seq, second.seq]

    assert run(body()) == [1, 2]


def test_the_control_stream_is_deleted_at_close(
    make_store: MakeStore, raw: redis.Redis, prefix: str
) -> None:
    async def body() -> None:
        first, second = RunId.new(), RunId.new()
        async with make_store(block_ms=10_000) as readers:
            tasks = [
                asyncio.create_task(_follow(readers, first, asyncio.Queue())),
            ]
            await asyncio.sleep(0.3)
            tasks.append(asyncio.create_task(_follow(readers, second, asyncio.Queue())))
            await asyncio.sleep(0.3)
            assert raw.keys(f"{prefix}reader:*")  # it was used
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    run(body())
    assert raw.keys(f"{prefix}reader:*") == []


@pytest.mark.parametrize("delivered_by", ["same store", "other store"])
def test_subscribers_of_one_run_all_receive(make_store: MakeStore, delivered_by: str) -> None:
    async def body() -> list[int]:
        run_id = RunId.new()
        async with make_store(block_ms=10_000) as readers, make_store() as other:
            writer = readers if delivered_by == "same store" else other
            got: asyncio.Queue[tuple[RunId, int]] = asyncio.Queue()
            tasks = [asyncio.create_task(_follow(readers, run_id, got)) for _ in range(3)]
            await asyncio.sleep(0.2)
            seqs = []
            for _ in range(3):
                await writer.append(delta(run_id))
                for _ in range(3):
                    async with asyncio.timeout(5):
                        seqs.append((await got.get())[1])
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return seqs

    assert run(body()) == [1, 1, 1, 2, 2, 2, 3, 3, 3]


def test_idle_subscribers_do_not_reread_and_one_pipeline_per_round_checks_for_deletes(
    make_store: MakeStore,
) -> None:
    # Deletes by another process add no entry for the shared reader: the core's
    # shared poller asks every waited run's last seq in one pipeline every block_ms.
    # Subscribers no longer look again on a timer of their own.
    count = 50

    async def body() -> tuple[int, list[int], int, int]:
        runs = [RunId.new() for _ in range(count)]
        async with make_store(block_ms=200) as readers, make_store() as writer:
            for run_id in runs:
                await writer.append(delta(run_id))
            got: asyncio.Queue[tuple[RunId, int]] = asyncio.Queue()

            async def follow(run_id: RunId) -> None:
                try:
                    await _follow(readers, run_id, got)
                except RunDeletedError:
                    got.put_nowait((run_id, -1))

            tasks = [asyncio.create_task(follow(r)) for r in runs]
            async with asyncio.timeout(10):
                for _ in range(count):
                    await got.get()
            await asyncio.sleep(0.3)
            reads = 0
            list_after = readers._list_after

            async def counting_reads(run_id: RunId, after: int, limit: int) -> Any:
                nonlocal reads
                reads += 1
                return await list_after(run_id, after, limit)

            looks: list[int] = []
            last_seqs = readers._last_seqs

            async def counting_looks(run_ids: Any) -> dict[RunId, int]:
                looks.append(len(run_ids))
                return await last_seqs(run_ids)

            readers._list_after = counting_reads  # type: ignore[method-assign]
            readers._last_seqs = counting_looks  # type: ignore[method-assign]
            await asyncio.sleep(1.1)
            idle_reads = reads
            # A delete through the other object is noticed by the next look.
            loop = asyncio.get_running_loop()
            started = loop.time()
            await writer.delete_run(runs[3])
            async with asyncio.timeout(5):
                ended = await got.get()
            elapsed = loop.time() - started
            assert ended == (runs[3], -1)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            pollers = [t for t in asyncio.all_tasks() if t.get_name() == "eventstore-poller"]
            return idle_reads, looks, int(elapsed * 1000), len(pollers)

    idle_reads, looks, elapsed_ms, pollers = run(body())
    assert idle_reads == 0
    assert 3 <= len(looks) <= 8, looks  # every 200 ms
    assert all(asked == count for asked in looks), looks
    assert elapsed_ms < 1000
    assert pollers == 1


def test_no_poller_task_is_left_after_close(make_store: MakeStore) -> None:
    async def body() -> tuple[int, int]:
        store = make_store(block_ms=200)
        await store.open()
        got: asyncio.Queue[tuple[RunId, int]] = asyncio.Queue()
        tasks = [asyncio.create_task(_follow(store, RunId.new(), got)) for _ in range(3)]
        await asyncio.sleep(0.5)
        during = sum(1 for t in asyncio.all_tasks() if t.get_name() == "eventstore-poller")
        await store.close()
        after = sum(
            1 for t in asyncio.all_tasks() if t.get_name() == "eventstore-poller" and not t.done()
        )
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
        return during, after

    assert run(body()) == (1, 0)


def test_skip_corrupt_misses_nothing_appended_while_the_consumer_was_busy(
    make_store: MakeStore,
) -> None:
    # With skip_corrupt the wait starts after the run's last seq (entries skipped as
    # corrupt must not wake it for ever); events appended while the consumer was
    # still busy with its last page must be read, not waited past.
    async def body() -> list[int]:
        run_id = RunId.new()
        async with make_store(skip_corrupt=True) as readers, make_store() as writer:
            await writer.append_batch([delta(run_id, str(i)) for i in range(5)])
            seen: list[int] = []

            async def consume() -> None:
                async for envelope in readers.subscribe(run_id, until_terminal=True):
                    seen.append(envelope.seq)
                    if envelope.seq == 5:
                        await asyncio.sleep(0.3)  # busy: the next appends land now

            task = asyncio.ensure_future(consume())
            await _until(lambda: 5 in seen, 5)
            await writer.append(delta(run_id, "late"))
            await writer.append(RunCompleted(run_id=run_id, finish_reason="stop", iterations=1))
            await asyncio.wait_for(task, 3)
            return seen

    assert run(body()) == [1, 2, 3, 4, 5, 6, 7]
