"""The SQLite store used from several threads and event loops, and closed under them."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import eventstore
from eventstore import EventStoreError, RunCancelled, RunId, TextDelta
from eventstore.errors import StoreClosedError


def _open_files(prefix: str) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(prefix):
            found.append(target)
    return found


def _store_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("eventstore-sqlite")]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to list open files")
def test_cancelled_close_still_ends_both_threads_and_closes_the_file(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = eventstore.open_store(f"sqlite:///{tmp_path}/ev.db")
        await store.open()
        await store.append(TextDelta(run_id=RunId.new(), delta="x"))
        closing = asyncio.create_task(store.close())
        await asyncio.sleep(0)  # close() is waiting for the writer thread now
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        assert not store.is_open
        # A second close() waits for the release the cancelled one left running.
        await store.close()
        assert not _store_threads()
        assert not _open_files(str(tmp_path))

    asyncio.run(scenario())


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    # Only makes the interleavings this test is about (a job queued as the store
    # stops) far more frequent; correctness does not depend on it.
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("frequent_thread_switches")
def test_appends_from_other_threads_racing_close_are_all_answered(tmp_path: Path) -> None:
    trials, threads = 100, 8

    def appender(store: eventstore.EventStore, run_id: RunId, hung: list[int]) -> None:
        async def loop() -> None:
            while True:
                try:
                    await asyncio.wait_for(store.append(TextDelta(run_id=run_id, delta="x")), 5)
                except StoreClosedError:
                    return
                except TimeoutError:
                    hung.append(1)
                    return

        asyncio.run(loop())

    async def trial(index: int) -> int:
        store = eventstore.open_store(f"sqlite:///{tmp_path}/t{index}.db?synchronous=off")
        await store.open()
        run_id, hung = RunId.new(), []
        workers = [
            threading.Thread(target=appender, args=(store, run_id, hung)) for _ in range(threads)
        ]
        for worker in workers:
            worker.start()
        await asyncio.sleep(0.02)
        await store.close()
        for worker in workers:
            await asyncio.to_thread(worker.join, 30)
        return len(hung)

    async def scenario() -> list[int]:
        return [await trial(index) for index in range(trials)]

    assert sum(asyncio.run(scenario())) == 0


def test_subscribers_on_other_event_loops_see_every_append(tmp_path: Path) -> None:
    count = 20
    run_id = RunId.new()
    store = eventstore.open_store(f"sqlite:///{tmp_path}/ev.db")
    seen: dict[int, list[int] | BaseException] = {}
    ready = threading.Barrier(3)

    def subscriber(slot: int) -> None:
        async def follow() -> list[int]:
            seqs = []
            ready.wait()
            async for envelope in store.subscribe(run_id, 0, until_terminal=True):
                seqs.append(envelope.seq)
            return seqs

        try:
            seen[slot] = asyncio.run(asyncio.wait_for(follow(), 30))
        except (EventStoreError, TimeoutError) as exc:
            seen[slot] = exc

    async def scenario() -> None:
        await store.open()
        followers = [threading.Thread(target=subscriber, args=(slot,)) for slot in range(2)]
        for follower in followers:
            follower.start()
        await asyncio.to_thread(ready.wait)
        await asyncio.sleep(0.05)  # both are waiting live now
        for index in range(count):
            await store.append(TextDelta(run_id=run_id, delta=f"{index}"))
        await store.append(RunCancelled(run_id=run_id))
        for follower in followers:
            await asyncio.to_thread(follower.join, 60)
        await store.close()

    asyncio.run(scenario())
    assert seen == {0: list(range(1, count + 2)), 1: list(range(1, count + 2))}
