"""Issue 4's performance targets, measured against this backend's raw baselines.

    python backends/redis/benchmarks/redis_bench.py [--url redis://127.0.0.1:6379/0] [-n 3000]

Every figure is taken in the same run as the baseline it is compared with, each
pair interleaved over several rounds (best round kept), so machine noise cancels
out of the ratios. Keys go under random prefixes and are deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

from eventstore_redis import RedisEventStore
from eventstore_redis.bench import (
    RawPipelinedXaddBaseline,
    RawScriptBaseline,
    ReferenceDesignBaseline,
)

import eventstore
from eventstore import RunId, TextDelta
from eventstore.events import encode_event

ROUNDS = 5


def event(run_id: RunId, i: int) -> TextDelta:
    """A small event, as an agent streams many of."""
    return TextDelta(run_id=run_id, delta=f"token {i} of a streamed answer")


async def rate(count: int, body: Callable[[], Awaitable[None]]) -> float:
    """Events per second of one run of ``body``."""
    start = time.perf_counter()
    await body()
    return count / (time.perf_counter() - start)


async def main(url: str, n: int) -> None:
    """Open the store and the baselines, run everything, clean up."""
    store_url = f"{url}{'&' if '?' in url else '?'}prefix=esbench:{uuid.uuid4().hex[:10]}:"
    store = eventstore.open_store(store_url)
    assert isinstance(store, RedisEventStore)
    raw, ref = RawScriptBaseline(url), ReferenceDesignBaseline(url)
    xadd = RawPipelinedXaddBaseline(url)
    async with store:
        for baseline in (raw, ref, xadd):
            await baseline.open()
        try:
            await run_all(store, raw, ref, xadd, n)
        finally:
            for baseline in (raw, ref, xadd):
                await baseline.close()
            for info in await store.list_runs(limit=10_000):
                await store.delete_run(info.run_id)


async def s1(
    store: RedisEventStore, raw: RawScriptBaseline, ref: ReferenceDesignBaseline, n: int
) -> dict[str, float]:
    """S1: sequential single appends to one run, store and both baselines."""
    run_id = RunId.new()
    events = [event(run_id, i) for i in range(n)]
    jsons = [encode_event(e) for e in events]

    async def store_loop() -> None:
        for e in events:
            await store.append(e)

    async def raw_loop() -> None:
        for j in jsons:
            await raw.append_one(run_id, j)

    async def ref_loop() -> None:
        for j in jsons:
            await ref.append_one(run_id, j)

    return {
        "S1 store": await rate(n, store_loop),
        "S1 raw script": await rate(n, raw_loop),
        "S1 reference": await rate(n, ref_loop),
    }


async def s2(store: RedisEventStore, n: int) -> dict[str, float]:
    """S2: 64 concurrent appenders, each on its own run."""
    per = max(n // 64, 10)

    async def one() -> None:
        run_id = RunId.new()
        for i in range(per):
            await store.append(event(run_id, i))

    async def all_appenders() -> None:
        await asyncio.gather(*(one() for _ in range(64)))

    return {"S2 store": await rate(per * 64, all_appenders)}


async def s4_s5(
    store: RedisEventStore, raw: RawScriptBaseline, xadd: RawPipelinedXaddBaseline, n: int
) -> dict[str, float]:
    """S4: batches of 100 (store vs pipelined XADD); S5: reading them in pages of 100."""
    batch_run, xadd_run, raw_run = RunId.new(), RunId.new(), RunId.new()
    batches = [[event(batch_run, b * 100 + i) for i in range(100)] for b in range(n // 100)]
    batch_jsons = [[encode_event(e) for e in b] for b in batches]
    total = len(batches) * 100

    async def store_batches() -> None:
        for b in batches:
            await store.append_batch(b)

    async def xadd_batches() -> None:
        for b in batch_jsons:
            await xadd.append_many(xadd_run, b)

    async def store_pages() -> None:
        after = 0
        while page := await store.list_after(batch_run, after, 100):
            after = page[-1].seq

    async def raw_pages() -> None:
        after = 0
        while got := await raw.read_page(raw_run, after, 100):
            after += got

    figures = {
        "S4 store": await rate(total, store_batches),
        "S4 raw pipelined XADD": await rate(total, xadd_batches),
    }
    for b in batch_jsons:  # the same entries, written by the store's script
        await raw.append_many(raw_run, b)
    figures["S5 store"] = await rate(total, store_pages)
    figures["S5 raw XRANGE+json"] = await rate(total, raw_pages)
    return figures


async def run_all(
    store: RedisEventStore,
    raw: RawScriptBaseline,
    ref: ReferenceDesignBaseline,
    xadd: RawPipelinedXaddBaseline,
    n: int,
) -> None:
    """Every scenario for ROUNDS rounds; the best round of each figure is reported."""
    results: dict[str, list[float]] = {}
    for _ in range(ROUNDS):
        for figures in (
            await s1(store, raw, ref, n),
            await s2(store, n),
            await s4_s5(store, raw, xadd, n),
        ):
            for name, value in figures.items():
                results.setdefault(name, []).append(value)
    latencies = await s6(store, 300)

    best = {name: max(values) for name, values in results.items()}
    for name, value in best.items():
        print(f"{name:28s} {value:12,.0f} events/s")
    print(
        f"S6 latency p50 {statistics.median(latencies) * 1000:.2f} ms, "
        f"p99 {statistics.quantiles(latencies, n=100)[98] * 1000:.2f} ms"
    )
    print("ratios (target):")
    print(f"  S1 store / raw script    {best['S1 store'] / best['S1 raw script']:.2f}  (>= 0.8)")
    print(f"  S1 store / reference     {best['S1 store'] / best['S1 reference']:.2f}  (>= 2)")
    print(f"  S2 store / S1 store      {best['S2 store'] / best['S1 store']:.2f}  (>= 3)")
    print(
        f"  S4 store / raw XADD      {best['S4 store'] / best['S4 raw pipelined XADD']:.2f}"
        "  (>= 0.7)"
    )
    print(
        f"  S5 store / raw XRANGE    {best['S5 store'] / best['S5 raw XRANGE+json']:.2f}  (>= 0.7)"
    )


async def s6(store: RedisEventStore, count: int) -> list[float]:
    """S6: seconds from each append's call to its delivery to a live subscriber."""
    run_id = RunId.new()
    sent: dict[int, float] = {}
    latencies: list[float] = []
    ready = asyncio.Event()

    async def consume() -> None:
        iterator = store.subscribe(run_id)
        ready.set()
        async for envelope in iterator:
            latencies.append(time.perf_counter() - sent[envelope.seq])
            if len(latencies) == count:
                return

    consumer = asyncio.create_task(consume())
    await ready.wait()
    await asyncio.sleep(0.05)
    for i in range(count):
        sent[i + 1] = time.perf_counter()
        await store.append(event(run_id, i))
        await asyncio.sleep(0.002)
    await asyncio.wait_for(consumer, 30)
    return latencies


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("-n", type=int, default=3000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.url, arguments.n))
