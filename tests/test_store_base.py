"""What the EventStore base class does for every backend: argument validation,
size limits, lifecycle and error translation. (Rules of the contract itself are
checked by the conformance suite, run against memory:// in contract_tests.)"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

import eventstore as es
import eventstore.backend as es_backend
import eventstore.errors as es_errors
from eventstore.memory import MemoryEventStore

RUN = es.RunId.new()


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def delta(run_id: es.RunId = RUN, text: str = "x") -> es.TextDelta:
    return es.TextDelta(run_id=run_id, delta=text)


async def _opened(**options: object) -> MemoryEventStore:
    return await MemoryEventStore(**options).open()  # type: ignore[arg-type]


def test_methods_refuse_a_store_that_is_not_open() -> None:
    async def body() -> None:
        store = MemoryEventStore()
        with pytest.raises(es_errors.StoreClosedError, match="not open"):
            await store.append(delta())
        await store.open()
        await store.close()
        await store.close()  # idempotent
        with pytest.raises(es_errors.StoreClosedError, match="closed"):
            await store.list_after(RUN)
        with pytest.raises(es_errors.StoreClosedError):
            await store.open()

    run(body())


@pytest.mark.parametrize("limit", [0, -1, 10_001, True, 1.5, "10", None])
def test_limit_out_of_range_is_value_error(limit: object) -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            with pytest.raises(ValueError, match="limit"):
                await store.list_after(RUN, limit=limit)  # type: ignore[arg-type]
            with pytest.raises(ValueError, match="limit"):
                await store.list_runs(limit=limit)  # type: ignore[arg-type]

    run(body())


@pytest.mark.parametrize("after", [-1, 1.0, "3", False])
def test_bad_after_seq_is_value_error(after: object) -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            with pytest.raises(ValueError, match="after_seq"):
                await store.list_after(RUN, after)  # type: ignore[arg-type]

    run(body())


def test_bad_ids_and_events_are_invalid_argument_errors() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            with pytest.raises(es.InvalidArgumentError, match="run_id"):
                await store.last_seq("nope")  # type: ignore[arg-type]
            with pytest.raises(es.InvalidArgumentError, match="AgentEvent"):
                await store.append({"TextDelta": {}})  # type: ignore[arg-type]
            with pytest.raises(es.InvalidArgumentError, match="event_id"):
                await store.append(delta(), event_id="zzz")  # type: ignore[arg-type]
            with pytest.raises(es.InvalidArgumentError, match="expected_seq"):
                await store.append(delta(), expected_seq=-1)
            with pytest.raises(es.InvalidArgumentError, match="no string run_id"):
                await store.append(es.UnknownEvent(name="X", payload={}))

    run(body())


def test_run_ids_given_as_strings_are_accepted() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            await store.append(delta())
            assert await store.last_seq(str(RUN)) == 1  # type: ignore[arg-type]

    run(body())


def test_events_over_the_size_limit_are_rejected_with_sizes() -> None:
    async def body() -> None:
        async with await _opened(max_event_bytes=1024) as store:
            with pytest.raises(es_errors.EventTooLargeError) as info:
                await store.append(delta(text="y" * 2000))
            assert isinstance(info.value, ValueError)
            assert info.value.limit == 1024 and info.value.size > 2000
            assert "TextDelta" in str(info.value)
            assert await store.last_seq(RUN) == 0
            await store.append(delta(text="y" * 500))

    run(body())


def test_default_size_limit_is_one_mebibyte() -> None:
    assert MemoryEventStore().max_event_bytes == 1 << 20 == es_backend.DEFAULT_MAX_EVENT_BYTES


def test_batch_validation() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            assert await store.append_batch([]) == []
            with pytest.raises(es.InvalidArgumentError, match="one run"):
                await store.append_batch([delta(), delta(es.RunId.new())])
            with pytest.raises(es.InvalidArgumentError, match="sequence"):
                await store.append_batch("abc")  # type: ignore[arg-type]
            with pytest.raises(es.InvalidArgumentError, match="2 ids for 1 events"):
                await store.append_batch([delta()], event_ids=[es.EventId.new(), es.EventId.new()])
            same = es.EventId.new()
            with pytest.raises(es.InvalidArgumentError, match="twice"):
                await store.append_batch([delta(), delta()], event_ids=[same, same])
            assert await store.last_seq(RUN) == 0

    run(body())


def test_batch_retry_with_event_ids_returns_stored_and_partial_overlap_conflicts() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            ids = [es.EventId.new(), es.EventId.new()]
            events = [delta(), delta()]
            first = await store.append_batch(events, event_ids=ids)
            again = await store.append_batch(events, event_ids=ids)
            assert again == first
            with pytest.raises(es.IdempotencyConflictError):
                await store.append_batch(events, event_ids=[ids[0], es.EventId.new()])
            assert await store.last_seq(RUN) == 2

    run(body())


class _Exploding(MemoryEventStore):
    backend_name = "exploding"

    async def _append(
        self, run_id: es.RunId, events: Sequence[es_backend.PendingEvent], expected_seq: int | None
    ) -> list[es.EventEnvelope]:
        raise OSError("connection to redis://app:hunter2@cache:6379 reset")


def test_driver_errors_are_translated_chained_and_redacted() -> None:
    async def body() -> None:
        async with _Exploding() as store:
            with pytest.raises(es.BackendError) as info:
                await store.append(delta())
            assert isinstance(info.value.__cause__, OSError)
            assert info.value.backend == "exploding"
            assert str(info.value).startswith("exploding: append failed: OSError")
            assert "hunter2" not in str(info.value)

    run(body())


def test_cancellation_is_not_translated() -> None:
    class Slow(MemoryEventStore):
        async def _last_seq(self, run_id: es.RunId) -> int:
            await asyncio.sleep(10)
            return 0

    async def body() -> None:
        async with Slow() as store:
            task = asyncio.create_task(store.last_seq(RUN))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    run(body())


def test_subscribe_validates_eagerly_and_ends_after_terminal() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            with pytest.raises(ValueError, match="after_seq"):
                store.subscribe(RUN, -5)
            await store.append(delta())
            await store.append(es.RunFailed(run_id=RUN, error="boom"))
            await store.append(delta())
            seen = [e.seq async for e in store.subscribe(RUN, until_terminal=True)]
            assert seen == [1, 2]

    run(body())


def test_repr_and_describe_name_the_backend() -> None:
    assert "memory" in repr(MemoryEventStore())


def test_unsupported_operations_raise_unsupported() -> None:
    class Minimal(es.EventStore):
        async def _append(
            self,
            run_id: es.RunId,
            events: Sequence[es_backend.PendingEvent],
            expected_seq: int | None,
        ) -> list[es.EventEnvelope]:
            return []

        async def _list_after(
            self, run_id: es.RunId, after_seq: int, limit: int
        ) -> list[es.EventEnvelope]:
            return []

        async def _last_seq(self, run_id: es.RunId) -> int:
            return 0

    async def body() -> None:
        async with Minimal() as store:
            with pytest.raises(es_errors.UnsupportedOperationError):
                await store.delete_run(RUN)
            with pytest.raises(es_errors.UnsupportedOperationError):
                await store.list_runs()

    run(body())


def _copy_source_run() -> tuple[es.RunId, list[es.EventEnvelope]]:
    async def body() -> tuple[es.RunId, list[es.EventEnvelope]]:
        run_id = es.RunId.new()
        async with MemoryEventStore() as src:
            await src.append(delta(run_id, "before session"))
            await src.append(
                es.RunStarted(run_id=run_id, session_id=es.SessionId.new(), provider="p", model="m")
            )
            for i in range(5):
                await src.append(delta(run_id, str(i)))
            return run_id, await src.list_after(run_id, None, 100)

    return asyncio.run(body())  # type: ignore[return-value]


def test_import_envelopes_keeps_ids_seqs_sessions_and_times() -> None:
    run_id, envelopes = _copy_source_run()

    async def body() -> None:
        async with MemoryEventStore() as dst:
            assert await dst.import_envelopes(envelopes[:3]) == 3
            # Re-running an interrupted copy: the stored prefix is skipped.
            assert await dst.import_envelopes(envelopes) == 4
            assert await dst.import_envelopes(envelopes) == 0
            assert await dst.list_after(run_id, None, 100) == envelopes
            # The run's session carries on for new appends; retries of copied ids dedupe.
            new = await dst.append(delta(run_id, "after copy"))
            assert new.seq == 8 and new.session_id == envelopes[-1].session_id
            again = await dst.append(envelopes[0].event, event_id=envelopes[0].event_id)
            assert again == envelopes[0]

    run(body())


def test_import_envelopes_refuses_gaps_and_divergence() -> None:
    run_id, envelopes = _copy_source_run()

    async def body() -> None:
        async with MemoryEventStore() as dst:
            with pytest.raises(es.ConcurrencyError):
                await dst.import_envelopes(envelopes[2:])
            with pytest.raises(es.InvalidArgumentError, match="consecutive"):
                await dst.import_envelopes([envelopes[0], envelopes[2]])
            await dst.append(delta(run_id, "local"))
            with pytest.raises(es.ConcurrencyError):
                await dst.import_envelopes(envelopes)
            assert await dst.last_seq(run_id) == 1

    run(body())


def test_returned_envelopes_support_model_copy() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            envelope = await store.append(delta())
            assert envelope.model_copy(update={"seq": 2}).seq == 2
            assert envelope.seq == 1

    run(body())


def test_batch_with_the_same_id_twice_in_different_forms_is_refused() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            same = es.EventId.new()
            with pytest.raises(es.InvalidArgumentError, match="twice"):
                await store.append_batch([delta(), delta()], event_ids=[str(same), same])  # type: ignore[list-item]
            with pytest.raises(es.InvalidArgumentError, match="event_id"):
                await store.append_batch([delta()], event_ids=[{}])  # type: ignore[list-item]
            assert await store.last_seq(RUN) == 0

    run(body())


def test_an_extra_field_that_is_not_a_json_value_is_refused_when_built() -> None:
    # Extra fields are held to the declared fields' JSON rules: nothing that would be
    # written as something else (and read back changed) gets as far as a store.
    for value in (
        object(),
        {1, 2},
        (1, 2),
        b"x",
        float("inf"),
        float("nan"),
        {"a": [float("-inf")]},
    ):
        with pytest.raises(ValueError, match=r"JSON value|finite number"):
            es.TextDelta(run_id=RUN, delta="x", foo=value)


def test_subscribe_until_terminal_resumed_after_the_terminal_event_ends() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            await store.append(delta())
            end = await store.append(es.RunCancelled(run_id=RUN))
            seen = [e async for e in store.subscribe(RUN, end.seq, until_terminal=True)]
            assert seen == []
            # Past the end too (a stale resume point): it ends instead of waiting.
            past = [e async for e in store.subscribe(RUN, end.seq + 40, until_terminal=True)]
            assert past == []

    asyncio.run(asyncio.wait_for(body(), 5))


def test_subscribe_until_terminal_past_the_end_of_a_live_run_waits_for_it() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            await store.append(delta())
            stream = store.subscribe(RUN, 3, until_terminal=True)
            following = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(0.01)
            assert not following.done()  # the run has not ended: seq 4 may still come
            await store.append_batch([delta(), delta(), delta()])
            assert (await asyncio.wait_for(following, 5)).seq == 4
            await stream.aclose()  # type: ignore[attr-defined]

    asyncio.run(asyncio.wait_for(body(), 5))


def test_concurrent_opens_connect_once() -> None:
    class Counting(MemoryEventStore):
        opened = 0

        async def _do_open(self) -> None:
            type(self).opened += 1
            await asyncio.sleep(0.01)

    async def body() -> None:
        store = Counting()
        await asyncio.gather(store.open(), store.open(), store.open())
        assert Counting.opened == 1
        await store.close()

    run(body())


def test_close_during_open_waits_for_it_and_undoes_it() -> None:
    class Tracking(MemoryEventStore):
        def __init__(self) -> None:
            super().__init__()
            self.connecting = asyncio.Event()
            self.proceed = asyncio.Event()
            self.held = False

        async def _do_open(self) -> None:
            self.connecting.set()
            await self.proceed.wait()
            self.held = True

        async def _do_close(self) -> None:
            self.held = False

    async def body() -> None:
        store = Tracking()
        opening = asyncio.create_task(store.open())
        await store.connecting.wait()
        closing = asyncio.create_task(store.close())
        await asyncio.sleep(0.01)
        assert not closing.done()  # close() waits for the open in flight
        store.proceed.set()
        await closing
        with pytest.raises(es_errors.StoreClosedError, match="closed while it was opening"):
            await opening
        assert not store.is_open and not store.held
        with pytest.raises(es_errors.StoreClosedError):
            await store.open()

    run(body())


def test_close_after_a_cancelled_close_waits_for_the_release() -> None:
    class SlowRelease(MemoryEventStore):
        released = False

        async def _do_close(self) -> None:
            await self._release_surely(self._release())

        async def _release(self) -> None:
            await asyncio.sleep(0.2)
            self.released = True

    async def body() -> None:
        store = SlowRelease()
        await store.open()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(store.close(), 0.05)
        assert not store.released  # still releasing, in the background
        await store.close()
        assert store.released

    run(body())


def test_list_runs_accepts_session_ids_as_strings() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            session = es.SessionId.new()
            await store.append(
                es.RunStarted(run_id=RUN, session_id=session, provider="p", model="m")
            )
            assert [i.run_id for i in await store.list_runs(session_id=str(session))] == [RUN]  # type: ignore[arg-type]
            with pytest.raises(es.InvalidArgumentError, match="session_id"):
                await store.list_runs(session_id="nope")  # type: ignore[arg-type]

    run(body())


def test_seqs_beyond_64_bits_are_value_errors() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            with pytest.raises(es.InvalidArgumentError, match="after_seq"):
                await store.list_after(RUN, 1 << 63)
            with pytest.raises(es.InvalidArgumentError, match="expected_seq"):
                await store.append(delta(), expected_seq=1 << 64)
            assert await store.list_after(RUN, (1 << 63) - 1) == []

    run(body())


@pytest.mark.parametrize(
    ("written_again", "last_seq"),
    [
        (0, 0),  # gone
        (1, 1),  # written again, shorter: seq 1 is another log's
        (5, 5),  # written again, longer: seq 4 exists, but it is another log's
    ],
)
def test_a_subscription_to_a_run_deleted_meanwhile_raises_instead_of_going_on(
    written_again: int, last_seq: int
) -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            await store.append_batch([delta(), delta(), delta()])
            stream = store.subscribe(RUN)
            assert [(await anext(stream)).seq for _ in range(3)] == [1, 2, 3]
            waiting = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(0.01)
            await store.delete_run(RUN)
            if written_again:
                await store.append_batch([delta(text=f"new {i}") for i in range(written_again)])
            with pytest.raises(es.RunDeletedError, match="had seen seq 3") as caught:
                await asyncio.wait_for(waiting, 5)
            assert (caught.value.seen_seq, caught.value.last_seq) == (3, last_seq)

    asyncio.run(asyncio.wait_for(body(), 10))


def test_a_caught_up_resumed_subscription_notices_the_run_deleted() -> None:
    # Resumed exactly at the end: the run held that seq, so losing it is a deletion.
    async def body() -> None:
        async with MemoryEventStore() as store:
            await store.append_batch([delta(), delta()])
            stream = store.subscribe(RUN, 2)
            waiting = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(0.01)
            await store.delete_run(RUN)
            with pytest.raises(es.RunDeletedError):
                await asyncio.wait_for(waiting, 5)

    asyncio.run(asyncio.wait_for(body(), 10))


def test_subscribe_until_terminal_resumed_at_the_terminal_event_ends_even_if_more_followed() -> (
    None
):
    async def body() -> None:
        async with MemoryEventStore() as store:
            await store.append(delta())
            end = await store.append(es.RunCancelled(run_id=RUN))
            await store.append(delta(text="after the end"))  # a late writer
            seen = [e async for e in store.subscribe(RUN, end.seq, until_terminal=True)]
            assert seen == []

    asyncio.run(asyncio.wait_for(body(), 5))


class _Lossy(MemoryEventStore):
    """Loses stored entries in place, as retention that reports nothing (behest's
    own trimming of legacy runs) or a skipped corrupt entry does."""

    def __init__(self) -> None:
        super().__init__()
        self.lost: set[int] = set()
        self.gaps_possible = True  # declared, as such a backend must

    async def _list_after(
        self, run_id: es.RunId, after_seq: int, limit: int
    ) -> list[es.EventEnvelope]:
        page = await super()._list_after(run_id, after_seq, limit + len(self.lost))
        return [e for e in page if e.seq not in self.lost][:limit]


def test_an_entry_lost_in_place_is_not_taken_for_a_deleted_run() -> None:
    async def body() -> None:
        async with _Lossy() as store:
            await store.append_batch([delta() for _ in range(5)])
            stream = store.subscribe(RUN)
            assert [(await anext(stream)).seq for _ in range(5)] == [1, 2, 3, 4, 5]
            waiting = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(0.01)
            store.lost = {1, 2, 3, 4, 5}  # everything the subscriber saw, gone
            await store.append(delta(text="six"))
            assert (await asyncio.wait_for(waiting, 5)).seq == 6
            await stream.aclose()  # type: ignore[attr-defined]

    asyncio.run(asyncio.wait_for(body(), 10))


def test_until_terminal_resumed_where_retention_trimmed_reads_on() -> None:
    class Trimmed(MemoryEventStore):
        async def _list_after(
            self, run_id: es.RunId, after_seq: int, limit: int
        ) -> list[es.EventEnvelope]:
            if after_seq + 1 < 91:
                raise es_errors.HistoryUnavailableError(
                    run_id=run_id, requested_after=after_seq, first_available=91
                )
            return await super()._list_after(run_id, after_seq, limit)

    async def body() -> list[int]:
        async with Trimmed() as store:
            await store.append_batch([delta() for _ in range(99)])
            await store.append(es.RunCancelled(run_id=RUN))
            return [e.seq async for e in store.subscribe(RUN, 90, until_terminal=True)]

    assert asyncio.run(asyncio.wait_for(body(), 5)) == list(range(91, 101))


def test_subscribe_lets_the_event_loop_run_between_pages() -> None:
    # A store whose reads never suspend: without a yield per page, a consumer that
    # does not await would keep every other task (a timeout, a watchdog) waiting.
    async def body() -> None:
        async with MemoryEventStore() as store:
            await store.append_batch(
                [delta() for _ in range(3 * MemoryEventStore.subscribe_page_size)]
            )
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0)

            task = asyncio.ensure_future(ticker())
            await asyncio.sleep(0)
            seen = 0
            stream = store.subscribe(RUN)
            async for _ in stream:
                seen += 1
                if seen == 3 * MemoryEventStore.subscribe_page_size:
                    break
            await stream.aclose()  # type: ignore[attr-defined]
            task.cancel()
            assert ticks >= 3, f"the other task ran {ticks} times while 3 pages were read"

    run(body())
