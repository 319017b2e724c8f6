"""Scenarios S1-S7: one workload each, run against a store and against raw baselines.

A round builds its events first, then times only the calls under test, then
removes what it wrote (when the store supports ``delete_run``) so that repeated
rounds do not grow the store without bound. Every round writes to fresh run ids.
"""

from __future__ import annotations

__all__ = ["DEFAULT_SCENARIOS", "SCENARIOS", "BenchmarkError", "Fleet", "Sample", "Scenario"]

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
from ._connections import ConnectionCount, ConnectionProbe, connection_probe
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
#: S7: live subscribers, one run each (fewer when a round has fewer events).
S7_SUBSCRIBERS: Final = 1000
#: S7: concurrent writers, appending round-robin to the subscribers' runs.
S7_WRITERS: Final = 64
#: S7: total appends per second of all writers together, and at most this many.
S7_RATE: Final = 500.0
S7_MAX_EVENTS: Final = 2000
#: S7: how long subscribers may take to be live, and the last delivery to arrive.
S7_SETUP_TIMEOUT: Final = 120.0
S7_DELIVERY_TIMEOUT: Final = 30.0
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
    #: S7: connections opened by the live subscribers, and what was measured.
    connections: ConnectionCount | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Fleet:
    """What S7 runs on: the subscribing store, the writing store and a connection probe.

    The harness gives the writers a second store object on the same URL when the
    backend is shared between processes (``multi_process``), so deliveries go the
    way another process's appends do; otherwise both are the same store.
    """

    readers: EventStore
    writers: EventStore
    connections: ConnectionProbe


StoreRound = Callable[[EventStore, int], Awaitable[Sample]]
BaselineRound = Callable[[RawBaseline, int], Awaitable[Sample]]


FleetRound = Callable[[Fleet, int], Awaitable[Sample]]


@dataclass(frozen=True)
class Scenario:
    """A named workload; ``baseline_round`` is ``None`` when raw drivers cannot do it.

    ``fleet_round``, when set, is what the runner calls instead of ``store_round``,
    with a :class:`Fleet` (a second store for writers, a connection probe).
    """

    id: str
    title: str
    store_round: StoreRound
    baseline_round: BaselineRound | None = None
    fleet_round: FleetRound | None = None


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


# -- S7 many live subscribers ----------------------------------------------------------


async def _s7_fleet(fleet: Fleet, count: int) -> Sample:
    """``min(count, S7_SUBSCRIBERS)`` subscribers, one run each, S7_WRITERS writers.

    Each subscriber first receives one untimed event (it is live); the connection
    probe runs before the subscribers start and once they are all live. Then the
    writers append ``min(count, S7_MAX_EVENTS)`` events round-robin over the runs at
    ``S7_RATE`` events/s in all; each latency is from just before ``append()`` to the
    subscriber's receipt.
    """
    readers, writers = fleet.readers, fleet.writers
    subscribers = max(1, min(count, S7_SUBSCRIBERS))
    tasks_count = min(S7_WRITERS, subscribers)
    per_writer = max(1, min(count, S7_MAX_EVENTS) // tasks_count)
    run_ids = [RunId.new() for _ in range(subscribers)]
    owned = [list(range(w, subscribers, tasks_count)) for w in range(tasks_count)]
    # Events by run: seq 1 (untimed) and then one per timed append to that run.
    timed_per_run = [0] * subscribers
    plans: list[list[tuple[int, int]]] = []  # per writer: (run index, seq)
    for w in range(tasks_count):
        plan = []
        for j in range(per_writer):
            index = owned[w][j % len(owned[w])]
            timed_per_run[index] += 1
            plan.append((index, timed_per_run[index] + 1))
        plans.append(plan)
    events = [workload_events(run_id, timed_per_run[i] + 1) for i, run_id in enumerate(run_ids)]
    arrivals: dict[tuple[int, int], float] = {}
    failures: list[BaseException] = []
    live = asyncio.Event()
    live_count = 0
    total = sum(timed_per_run)
    complete = asyncio.Event()

    async def follow(index: int) -> None:
        nonlocal live_count
        clock = time.perf_counter
        try:
            async for envelope in readers.subscribe(run_ids[index]):
                arrivals[index, envelope.seq] = clock()
                if envelope.seq == 1:
                    live_count += 1
                    if live_count == subscribers:
                        live.set()
                elif len(arrivals) - subscribers >= total:
                    complete.set()
        except Exception as exc:
            failures.append(exc)
            live.set()
            complete.set()

    sent: dict[tuple[int, int], float] = {}

    async def write(w: int) -> None:
        interval = tasks_count / S7_RATE
        loop = asyncio.get_running_loop()
        start = loop.time() + w / S7_RATE
        for j, (index, seq) in enumerate(plans[w]):
            delay = start + j * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[index, seq] = time.perf_counter()
            await writers.append(events[index][seq - 1])

    async def wait(event: asyncio.Event, seconds: float, what: str) -> None:
        try:
            async with asyncio.timeout(seconds):
                await event.wait()
        except TimeoutError:
            raise BenchmarkError(f"S7: {what} within {seconds:g} s") from None
        if failures:
            raise BenchmarkError(f"S7: subscribe failed: {failures[0]}") from failures[0]

    before = await fleet.connections()
    followers = [asyncio.create_task(follow(i)) for i in range(subscribers)]
    try:
        for start in range(0, subscribers, BATCH):
            chunk = range(start, min(start + BATCH, subscribers))
            await asyncio.gather(*(writers.append(events[i][0]) for i in chunk))
        await wait(live, S7_SETUP_TIMEOUT, f"{subscribers - live_count} subscribers not live")
        during = (await fleet.connections()).minus(before)
        begin = _clock()
        await _gather(write(w) for w in range(tasks_count))
        await wait(
            complete,
            S7_DELIVERY_TIMEOUT,
            f"{total - (len(arrivals) - subscribers)} of {total} events not delivered",
        )
        elapsed = time.perf_counter() - begin
    finally:
        for follower in followers:
            follower.cancel()
        _done, pending = await asyncio.wait(followers, timeout=S6_CANCEL_TIMEOUT)
    if pending:
        raise BenchmarkError(
            f"S7: {len(pending)} subscribers did not finish within {S6_CANCEL_TIMEOUT:g} s "
            "of being cancelled"
        )
    await _forget(writers, run_ids)
    latencies = tuple(arrivals[key] - sent[key] for key in sent)
    return Sample(
        elapsed,
        total,
        latencies,
        connections=during,
        detail=f"{subscribers} subscribers, {tasks_count} writers, {total} events "
        f"at {S7_RATE:g}/s" + ("" if writers is not readers else ", writers on the same store"),
    )


async def _s7_store(store: EventStore, count: int) -> Sample:
    return await _s7_fleet(Fleet(store, store, connection_probe(store, None)), count)


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
        Scenario(
            "S7",
            f"{S7_SUBSCRIBERS} live subscribers, {S7_WRITERS} writers: delivery latency",
            _s7_store,
            fleet_round=_s7_fleet,
        ),
    )
}
#: What runs when no scenario is named: S7 (a thousand subscribers) only on request.
DEFAULT_SCENARIOS: Final = ("S1", "S2", "S3", "S4", "S5", "S6")
