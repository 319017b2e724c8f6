"""Scenarios S1-S6: one workload each, run against a store and against raw baselines.

A round builds its events first, then times only the calls under test, then
removes what it wrote (when the store supports ``delete_run``) so that repeated
rounds do not grow the store without bound. Every round writes to fresh run ids.
"""

from __future__ import annotations

__all__ = ["SCENARIOS", "BenchmarkError", "Sample", "Scenario"]

import asyncio
import contextlib
import gc
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Final

from .._capabilities import Capability
from .._errors import EventStoreError
from .._events import AgentEvent
from .._ids import RunId
from .._store import EventStore
from ._baseline import RawBaseline
from ._workload import workload_events, workload_json

#: Concurrent appenders in S2 (one run each) and S3 (all on one run).
S2_TASKS: Final = 64
S3_TASKS: Final = 16
#: Events per batch in S4 and per page in S5.
BATCH: Final = 100
PAGE: Final = 100
#: S6 measures at most this many appends: each waits for its delivery.
S6_MAX_SAMPLES: Final = 1000
#: How long S6 waits for one delivery before declaring live subscribe broken.
S6_DELIVERY_TIMEOUT: Final = 30.0
#: How long S6 waits for its cancelled subscriber task to finish.
S6_CANCEL_TIMEOUT: Final = 5.0
#: Events per ``append_batch``/``append_many`` when S5 fills the run it reads.
_FILL_CHUNK: Final = 1000


class BenchmarkError(EventStoreError):
    """A scenario could not run or a store misbehaved during it."""


@dataclass(frozen=True)
class Sample:
    """One timed round: ``events`` events in ``seconds``, and S6's latencies."""

    seconds: float
    events: int
    latencies: tuple[float, ...] = ()


StoreRound = Callable[[EventStore, int], Awaitable[Sample]]
BaselineRound = Callable[[RawBaseline, int], Awaitable[Sample]]


@dataclass(frozen=True)
class Scenario:
    """A named workload; ``baseline_round`` is ``None`` when raw drivers cannot do it."""

    id: str
    title: str
    store_round: StoreRound
    baseline_round: BaselineRound | None = None


def _clock() -> float:
    # Collect garbage left by the setup so that a collection it caused does not
    # land inside the timed section.
    gc.collect()
    return time.perf_counter()


async def _forget(store: EventStore, runs: Iterable[RunId]) -> None:
    if Capability.DELETE in store.capabilities:
        for run_id in runs:
            await store.delete_run(run_id)


async def _gather(workers: Iterable[Awaitable[None]]) -> None:
    await asyncio.gather(*workers)


# -- S1 sequential single appends to one run -------------------------------------------


async def _s1_store(store: EventStore, count: int) -> Sample:
    run_id = RunId.new()
    events = workload_events(run_id, count)
    append = store.append
    start = _clock()
    for event in events:
        await append(event)
    elapsed = time.perf_counter() - start
    await _forget(store, [run_id])
    return Sample(elapsed, count)


async def _s1_baseline(baseline: RawBaseline, count: int) -> Sample:
    run_id = RunId.new()
    events = workload_json(run_id, count)
    append = baseline.append_one
    start = _clock()
    for event in events:
        await append(run_id, event)
    return Sample(time.perf_counter() - start, count)


# -- S2 / S3 concurrent appenders ------------------------------------------------------


async def _concurrent_store(store: EventStore, count: int, tasks: int, runs: int) -> Sample:
    per_task = max(1, count // tasks)
    run_ids = [RunId.new() for _ in range(runs)]
    batches = [workload_events(run_ids[i % runs], per_task) for i in range(tasks)]

    async def worker(events: list[AgentEvent]) -> None:
        for event in events:
            await store.append(event)

    start = _clock()
    await _gather(worker(events) for events in batches)
    elapsed = time.perf_counter() - start
    await _forget(store, run_ids)
    return Sample(elapsed, per_task * tasks)


async def _concurrent_baseline(baseline: RawBaseline, count: int, tasks: int, runs: int) -> Sample:
    per_task = max(1, count // tasks)
    run_ids = [RunId.new() for _ in range(runs)]
    batches = [
        (run_ids[i % runs], workload_json(run_ids[i % runs], per_task)) for i in range(tasks)
    ]

    async def worker(run_id: RunId, events: list[str]) -> None:
        for event in events:
            await baseline.append_one(run_id, event)

    start = _clock()
    await _gather(worker(run_id, events) for run_id, events in batches)
    return Sample(time.perf_counter() - start, per_task * tasks)


async def _s2_store(store: EventStore, count: int) -> Sample:
    return await _concurrent_store(store, count, S2_TASKS, S2_TASKS)


async def _s2_baseline(baseline: RawBaseline, count: int) -> Sample:
    return await _concurrent_baseline(baseline, count, S2_TASKS, S2_TASKS)


async def _s3_store(store: EventStore, count: int) -> Sample:
    return await _concurrent_store(store, count, S3_TASKS, 1)


async def _s3_baseline(baseline: RawBaseline, count: int) -> Sample:
    return await _concurrent_baseline(baseline, count, S3_TASKS, 1)


# -- S4 batch appends ------------------------------------------------------------------


async def _s4_store(store: EventStore, count: int) -> Sample:
    run_id = RunId.new()
    batches = max(1, count // BATCH)
    events = workload_events(run_id, batches * BATCH)
    chunks = [events[i : i + BATCH] for i in range(0, len(events), BATCH)]
    start = _clock()
    for chunk in chunks:
        await store.append_batch(chunk)
    elapsed = time.perf_counter() - start
    await _forget(store, [run_id])
    return Sample(elapsed, len(events))


async def _s4_baseline(baseline: RawBaseline, count: int) -> Sample:
    run_id = RunId.new()
    batches = max(1, count // BATCH)
    events = workload_json(run_id, batches * BATCH)
    chunks = [events[i : i + BATCH] for i in range(0, len(events), BATCH)]
    start = _clock()
    for chunk in chunks:
        await baseline.append_many(run_id, chunk)
    return Sample(time.perf_counter() - start, len(events))


# -- S5 reading a whole run in pages ---------------------------------------------------


async def _s5_store(store: EventStore, count: int) -> Sample:
    run_id = RunId.new()
    events = workload_events(run_id, count)
    for i in range(0, count, _FILL_CHUNK):
        await store.append_batch(events[i : i + _FILL_CHUNK])
    del events
    read = after = 0
    start = _clock()
    while True:
        page = await store.list_after(run_id, after, PAGE)
        read += len(page)
        if len(page) < PAGE:
            break
        after = page[-1].seq
    elapsed = time.perf_counter() - start
    await _forget(store, [run_id])
    if read != count:
        raise BenchmarkError(f"S5 read {read} events of run {run_id}, wrote {count}")
    return Sample(elapsed, count)


async def _s5_baseline(baseline: RawBaseline, count: int) -> Sample:
    run_id = RunId.new()
    events = workload_json(run_id, count)
    try:
        for i in range(0, count, _FILL_CHUNK):
            await baseline.append_many(run_id, events[i : i + _FILL_CHUNK])
    except NotImplementedError:
        # Reading is what S5 measures; a baseline without batches can still fill.
        for event in events:
            await baseline.append_one(run_id, event)
    read = after = 0
    start = _clock()
    while True:
        got = await baseline.read_page(run_id, after, PAGE)
        read += got
        if got < PAGE:
            break
        after += got
    elapsed = time.perf_counter() - start
    if read != count:
        raise BenchmarkError(f"S5 baseline read {read} events, wrote {count}")
    return Sample(elapsed, count)


# -- S6 append-to-live-delivery latency ------------------------------------------------


async def _s6_store(store: EventStore, count: int) -> Sample:
    count = min(count, S6_MAX_SAMPLES)
    run_id = RunId.new()
    # One extra event first, untimed: it proves the subscription is live.
    events = workload_events(run_id, count + 1)
    arrivals: asyncio.Queue[tuple[int, float] | Exception] = asyncio.Queue()

    async def follow() -> None:
        try:
            async for envelope in store.subscribe(run_id):
                arrivals.put_nowait((envelope.seq, time.perf_counter()))
        except Exception as exc:
            # Hand the failure to the timing loop instead of letting it wait forever.
            arrivals.put_nowait(exc)

    async def delivery(expected_seq: int) -> float:
        try:
            async with asyncio.timeout(S6_DELIVERY_TIMEOUT):
                item = await arrivals.get()
        except TimeoutError:
            raise BenchmarkError(
                f"S6: seq {expected_seq} of run {run_id} was not delivered by subscribe "
                f"within {S6_DELIVERY_TIMEOUT:g} s"
            ) from None
        if isinstance(item, Exception):
            raise BenchmarkError(f"S6: subscribe failed: {item}") from item
        seq, arrived = item
        if seq != expected_seq:
            raise BenchmarkError(f"S6: subscribe delivered seq {seq}, expected {expected_seq}")
        return arrived

    follower = asyncio.create_task(follow())
    try:
        await store.append(events[0])
        await delivery(1)
        latencies: list[float] = []
        start = _clock()
        for seq, event in enumerate(events[1:], start=2):
            sent = time.perf_counter()
            await store.append(event)
            latencies.append(await delivery(seq) - sent)
        elapsed = time.perf_counter() - start
    finally:
        follower.cancel()
        done, _ = await asyncio.wait({follower}, timeout=S6_CANCEL_TIMEOUT)
    if not done:
        raise BenchmarkError(
            f"S6: the subscriber of run {run_id} did not finish within "
            f"{S6_CANCEL_TIMEOUT:g} s of being cancelled (a store bug: a cancelled "
            "subscribe must end promptly)"
        )
    with contextlib.suppress(asyncio.CancelledError):
        await follower
    await _forget(store, [run_id])
    return Sample(elapsed, count, tuple(latencies))


#: Every scenario, by id, in order.
SCENARIOS: Final[dict[str, Scenario]] = {
    s.id: s
    for s in (
        Scenario("S1", "sequential single appends, one run", _s1_store, _s1_baseline),
        Scenario("S2", f"{S2_TASKS} concurrent appenders, distinct runs", _s2_store, _s2_baseline),
        Scenario("S3", f"{S3_TASKS} concurrent appenders, one run", _s3_store, _s3_baseline),
        Scenario("S4", f"batch appends of {BATCH}", _s4_store, _s4_baseline),
        Scenario("S5", f"read a whole run in pages of {PAGE}", _s5_store, _s5_baseline),
        Scenario("S6", "append to live delivery latency", _s6_store),
    )
}
