"""Rules 1 and 7 across OS processes: one run, many writers; a killed writer.

Child processes open the store with ``open_store()`` and find the URL in
``EVENTSTORE_URL``, so a credential in it never shows up in a process listing.
"""

from __future__ import annotations

__all__ = ["MultiProcessTests"]

import asyncio
import os
import sys
from typing import ClassVar, Final

from eventstore import Capability, EventStore, RunId

from .._harness import StoreFactory, contract_test, needs_store_url, requires
from .._support import read_all, take

# Appends ``count`` events (count < 0: until killed) and prints "seq event_id" for
# each append as soon as it returned.
_WRITER: Final = """
import asyncio, sys
from eventstore import RunId, TextDelta, open_store

async def main(run_id, worker, count):
    async with open_store() as store:
        i = 0
        while count < 0 or i < count:
            envelope = await store.append(TextDelta(run_id=run_id, delta=f"{worker}:{i}"))
            print(envelope.seq, envelope.event_id, flush=True)
            i += 1

asyncio.run(main(RunId(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
"""


async def _spawn(url: str, run_id: RunId, worker: int, count: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _WRITER,
        str(run_id),
        str(worker),
        str(count),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "EVENTSTORE_URL": url},
    )


async def _finish(process: asyncio.subprocess.Process) -> list[str]:
    out, err = await process.communicate()
    assert process.returncode == 0, f"writer process failed:\n{err.decode(errors='replace')}"
    return out.decode().split()


@needs_store_url
class MultiProcessTests:
    """Several processes sharing one store keep the contract's guarantees."""

    #: Writer processes in the concurrent-append test (override in a subclass).
    multiprocess_writers: ClassVar[int] = 4
    #: Appends each writer process makes.
    multiprocess_appends: ClassVar[int] = 50

    @requires(Capability.MULTI_PROCESS)
    @contract_test
    async def test_sequence_many_processes_append_to_one_run(
        self, store_factory: StoreFactory, store_url: str
    ) -> None:
        run_id = RunId.new()
        writers, each = self.multiprocess_writers, self.multiprocess_appends
        processes = [await _spawn(store_url, run_id, w, each) for w in range(writers)]
        await asyncio.gather(*(_finish(p) for p in processes))
        async with store_factory() as store:
            stored = await read_all(store, run_id)
        total = writers * each
        assert [e.seq for e in stored] == list(range(1, total + 1))
        texts = sorted(e.event.delta for e in stored)  # type: ignore[union-attr]
        assert texts == sorted(f"{w}:{i}" for w in range(writers) for i in range(each))

    @requires(Capability.MULTI_PROCESS, Capability.LIVE_SUBSCRIBE)
    @contract_test
    async def test_subscribe_live_sees_appends_of_another_process(
        self, store: EventStore, store_url: str
    ) -> None:
        # A live subscriber in this process, the writer in another: no wake-up that
        # lives in one process (a notifier shared by its store objects) can reach it.
        run_id = RunId.new()
        stream = store.subscribe(run_id)
        try:
            waiting = asyncio.ensure_future(take(stream, 5))
            await asyncio.sleep(0.2)  # the subscriber is waiting live by now
            written = await _finish(await _spawn(store_url, run_id, 0, 5))
            received = await waiting
        finally:
            waiting.cancel()
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        assert [f"{e.seq} {e.event_id}" for e in received] == [
            f"{seq} {event_id}" for seq, event_id in zip(written[::2], written[1::2], strict=True)
        ]
        assert received == await read_all(store, run_id)

    @requires(Capability.DURABLE)
    @contract_test
    async def test_durability_killed_writer_keeps_returned_appends(
        self, store_factory: StoreFactory, store_url: str
    ) -> None:
        run_id = RunId.new()
        process = await _spawn(store_url, run_id, 0, -1)
        assert process.stdout is not None
        acknowledged: list[tuple[int, str]] = []
        while len(acknowledged) < 25:
            line = await process.stdout.readline()
            if not line:
                _, err = await process.communicate()
                raise AssertionError(f"writer process died:\n{err.decode(errors='replace')}")
            seq, event_id = line.split()
            acknowledged.append((int(seq), event_id.decode()))
        process.kill()
        await process.wait()
        async with store_factory() as store:
            stored = {(e.seq, str(e.event_id)) for e in await read_all(store, run_id)}
        assert set(acknowledged) <= stored
