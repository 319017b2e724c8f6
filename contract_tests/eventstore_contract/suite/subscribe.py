"""``subscribe``: catch-up from the store, live delivery, resume, ``until_terminal``.

Catching up is plain reading and applies to every backend; the live parts need
``live_subscribe``. Every wait is bounded by the suite's time guard, so a
subscription that loses an event fails the test instead of hanging it.
"""

from __future__ import annotations

__all__ = ["SubscribeTests"]

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from eventstore import Capability, EventEnvelope, EventStore, RunCompleted, RunId
from eventstore import FinishReason as Reason

from .._harness import StoreFactory, contract_test, requires
from .._support import delta, note_stalled_stream, read_all, take


async def _drain(stream: AsyncIterator[EventEnvelope]) -> list[EventEnvelope]:
    return [envelope async for envelope in stream]


async def _closing(stream: AsyncIterator[EventEnvelope]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


class SubscribeTests:
    """Subscribers see every envelope once, in order, whatever their pace."""

    @contract_test
    async def test_subscribe_catches_up_from_the_store(self, store: EventStore) -> None:
        run_id = RunId.new()
        appended = await store.append_batch([delta(run_id, i) for i in range(30)])
        stream = store.subscribe(run_id)
        try:
            assert await take(stream, 30) == appended
        finally:
            await _closing(stream)

    @contract_test
    async def test_subscribe_resumes_from_any_seq(self, store: EventStore) -> None:
        run_id = RunId.new()
        appended = await store.append_batch([delta(run_id, i) for i in range(8)])
        for after in range(8):
            stream = store.subscribe(run_id, after)
            try:
                assert await take(stream, 8 - after) == appended[after:]
            finally:
                await _closing(stream)

    @contract_test
    async def test_subscribe_until_terminal_ends_after_terminal_event(
        self, store: EventStore
    ) -> None:
        run_id = RunId.new()
        appended = await store.append_batch([delta(run_id, i) for i in range(3)])
        end = await store.append(
            RunCompleted(run_id=run_id, finish_reason=Reason.STOP, iterations=1)
        )
        received = await _collect(store.subscribe(run_id, until_terminal=True), 4)
        assert received == [*appended, end]

    @contract_test
    async def test_subscribe_until_terminal_resumed_after_the_terminal_event_ends(
        self, store: EventStore
    ) -> None:
        # A consumer that saw the terminal event and reconnects with its seq must not
        # wait forever for events that will never come.
        run_id = RunId.new()
        await store.append(delta(run_id, 0))
        end = await store.append(
            RunCompleted(run_id=run_id, finish_reason=Reason.STOP, iterations=1)
        )
        stream = store.subscribe(run_id, end.seq, until_terminal=True)
        assert await asyncio.wait_for(_drain(stream), 10) == []

    @contract_test
    async def test_subscribe_rejects_invalid_after_seq(self, store: EventStore) -> None:
        # Raising when called or on first iteration both honour the contract.
        with pytest.raises(ValueError, match="after_seq"):
            await _drain(store.subscribe(RunId.new(), -1))

    @requires(Capability.LIVE_SUBSCRIBE)
    @contract_test
    async def test_subscribe_live_delivers_new_events(self, store: EventStore) -> None:
        run_id = RunId.new()
        stream = store.subscribe(run_id)
        try:
            waiting = asyncio.ensure_future(take(stream, 5))
            # Long enough for the subscriber to finish its (empty) catch-up and wait
            # for a wake-up, so the appends below exercise live delivery itself.
            await asyncio.sleep(0.2)
            appended = [await store.append(delta(run_id, i)) for i in range(5)]
            assert await waiting == appended
        finally:
            await _closing(stream)

    @requires(Capability.LIVE_SUBSCRIBE)
    @contract_test
    async def test_subscribe_events_appended_during_catch_up_are_not_lost(
        self, store: EventStore
    ) -> None:
        run_id = RunId.new()
        appended = await store.append_batch([delta(run_id, i) for i in range(10)])
        stream = store.subscribe(run_id)
        try:
            received = await take(stream, 3)
            # The subscriber is mid catch-up: these land between its history read
            # and its live tail, the classic place to lose events.
            appended += await store.append_batch([delta(run_id, i) for i in range(10, 15)])
            received += await take(stream, 7)
            appended += [await store.append(delta(run_id, 15))]
            received += await take(stream, 6)
        finally:
            await _closing(stream)
        assert received == appended

    @requires(Capability.LIVE_SUBSCRIBE)
    @contract_test
    async def test_subscribe_slow_consumer_misses_nothing(self, store: EventStore) -> None:
        run_id = RunId.new()
        total = 150

        async def produce() -> list[EventEnvelope]:
            out = []
            for i in range(total):
                out.append(await store.append(delta(run_id, i)))
            return out

        async def consume() -> list[EventEnvelope]:
            got = []
            stream = store.subscribe(run_id, until_terminal=False)
            try:
                async for envelope in stream:
                    got.append(envelope)
                    for _ in range(5):  # a consumer much slower than the producer
                        await asyncio.sleep(0)
                    if len(got) == total:
                        break
            finally:
                await _closing(stream)
            return got

        consumed, produced = await asyncio.gather(consume(), produce())
        assert consumed == produced

    @requires(Capability.LIVE_SUBSCRIBE)
    @contract_test
    async def test_subscribe_until_terminal_live(self, store: EventStore) -> None:
        run_id = RunId.new()
        first = await store.append(delta(run_id, 0))
        following = asyncio.ensure_future(_collect(store.subscribe(run_id, until_terminal=True), 3))
        await asyncio.sleep(0)
        rest = [await store.append(delta(run_id, 1))]
        rest.append(
            await store.append(RunCompleted(run_id=run_id, finish_reason=Reason.STOP, iterations=2))
        )
        assert await following == [first, *rest]

    @requires(Capability.LIVE_SUBSCRIBE)
    @contract_test
    async def test_subscribe_many_subscribers_see_the_same_log(self, store: EventStore) -> None:
        run_id = RunId.new()
        streams = [store.subscribe(run_id, 0) for _ in range(3)]
        try:
            readers = [asyncio.ensure_future(take(s, 12)) for s in streams]
            await asyncio.sleep(0)
            for i in range(4):
                await store.append_batch([delta(run_id, 3 * i + k) for k in range(3)])
            results = await asyncio.gather(*readers)
        finally:
            for stream in streams:
                with contextlib.suppress(Exception):
                    await _closing(stream)
        expected = await read_all(store, run_id)
        for index, result in enumerate(results):
            assert result == expected, f"subscriber {index} of {len(results)} saw another log"

    @requires(Capability.MULTI_PROCESS, Capability.LIVE_SUBSCRIBE)
    @contract_test
    async def test_subscribe_live_sees_appends_of_another_store_object(
        self, store: EventStore, store_factory: StoreFactory
    ) -> None:
        # Appends through another store object on the same storage (another process,
        # in production) reach a live subscriber too: it cannot rely on its own
        # store's wake-ups alone.
        run_id = RunId.new()
        stream = store.subscribe(run_id)
        try:
            waiting = asyncio.ensure_future(take(stream, 4))
            await asyncio.sleep(0.2)  # the subscriber is waiting live by now
            async with store_factory() as other:
                appended = [await other.append(delta(run_id, i)) for i in range(3)]
                appended += await other.append_batch([delta(run_id, 3)])
                assert await waiting == appended
        finally:
            await _closing(stream)


async def _collect(stream: AsyncIterator[EventEnvelope], most: int) -> list[EventEnvelope]:
    # Bounded: a subscription that never ends would otherwise grow the list forever
    # without ever suspending, out of reach of the time guard.
    out: list[EventEnvelope] = []
    try:
        async for envelope in stream:
            out.append(envelope)
            if len(out) > most:
                await _closing(stream)
                raise AssertionError(f"until_terminal subscription went on past {most} envelopes")
    except asyncio.CancelledError:
        note_stalled_stream(out, None)
        raise
    return out
