"""The base class's guards catch a broken backend at run time, whatever the suite draws.

Each broken backend here is a memory store with one planted bug in a primitive; the
public method must refuse what the primitive returned, naming run and seq.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any

import pytest

import eventstore as es
from eventstore.backend import PendingEvent, new_envelope
from eventstore.errors import BackendError
from eventstore.events import JSON_INT_MAX, MAX_JSON_DEPTH
from eventstore.memory import MemoryEventStore

RUN = es.RunId.new()
OTHER = es.RunId.new()


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 10))


def delta(index: int, run_id: es.RunId = RUN) -> es.TextDelta:
    return es.TextDelta(run_id=run_id, delta=str(index))


def _with(envelope: es.EventEnvelope, **changes: Any) -> es.EventEnvelope:
    fields = {name: getattr(envelope, name) for name in es.EventEnvelope.model_fields}
    return new_envelope(**{**fields, **changes})


class _PageBug(MemoryEventStore):
    """Rewrites every page it returns with ``bug``."""

    def __init__(self, bug: Any) -> None:
        super().__init__()
        self.bug = bug

    async def _list_after(
        self, run_id: es.RunId, after_seq: int, limit: int
    ) -> list[es.EventEnvelope]:
        page = await super()._list_after(run_id, after_seq, limit + 1)
        return list(self.bug(page))[:limit] if len(page) > 1 else page


PAGE_BUGS = {
    "hole": lambda page: [e for e in page if e.seq != 3],
    "duplicate": lambda page: [page[0], *page[:-1]],
    "disorder": lambda page: [page[1], page[0], *page[2:]],
    "envelope_of_another_run": lambda page: [page[0], _with(page[1], run_id=OTHER), *page[2:]],
    "event_of_another_run": lambda page: [
        page[0],
        _with(page[1], event=page[1].event.model_copy(update={"run_id": OTHER})),
        *page[2:],
    ],
}


@pytest.mark.parametrize("bug", sorted(PAGE_BUGS))
def test_a_page_that_is_not_the_next_seqs_of_the_run_is_corruption(bug: str) -> None:
    async def body() -> None:
        async with _PageBug(PAGE_BUGS[bug]) as store:
            await store.append_batch([delta(i) for i in range(6)])
            with pytest.raises(es.CorruptEventError) as caught:
                await store.list_after(RUN, 0, 5)
            assert caught.value.run_id == RUN
            assert caught.value.backend == "memory"
            assert str(caught.value).startswith(f"memory: run {RUN}: stored entry at seq ")
            # Subscribers and copies read through the same guard.
            with pytest.raises(es.CorruptEventError):
                async for _ in store.subscribe(RUN):
                    pass

    run(body())


def test_a_hole_is_named_by_the_missing_seq() -> None:
    async def body() -> None:
        async with _PageBug(PAGE_BUGS["hole"]) as store:
            await store.append_batch([delta(i) for i in range(6)])
            with pytest.raises(
                es.CorruptEventError, match="expected seq 3, the store returned seq 4"
            ):
                await store.list_after(RUN, 0, 5)

    run(body())


def test_a_backend_that_declares_gaps_may_skip_but_not_reorder() -> None:
    async def body() -> None:
        async with _PageBug(PAGE_BUGS["hole"]) as store:
            store.gaps_possible = True
            await store.append_batch([delta(i) for i in range(6)])
            assert [e.seq for e in await store.list_after(RUN, 0, 5)] == [1, 2, 4, 5, 6]
            store.bug = PAGE_BUGS["disorder"]
            with pytest.raises(es.CorruptEventError, match="out of order"):
                await store.list_after(RUN, 0, 5)
            store.bug = PAGE_BUGS["event_of_another_run"]
            with pytest.raises(es.CorruptEventError, match="names run"):
                await store.list_after(RUN, 0, 5)

    run(body())


def test_a_page_longer_than_limit_is_a_backend_error() -> None:
    class TooLong(MemoryEventStore):
        async def _list_after(
            self, run_id: es.RunId, after_seq: int, limit: int
        ) -> list[es.EventEnvelope]:
            return await super()._list_after(run_id, after_seq, limit + 1)

    async def body() -> None:
        async with TooLong() as store:
            await store.append_batch([delta(i) for i in range(3)])
            with pytest.raises(BackendError, match="returned 2 envelopes for limit 1"):
                await store.list_after(RUN, 0, 1)

    run(body())


def test_an_idempotent_retry_must_return_the_appended_ids() -> None:
    class WrongRetry(MemoryEventStore):
        async def _append(
            self, run_id: es.RunId, events: Sequence[PendingEvent], expected_seq: int | None
        ) -> list[es.EventEnvelope]:
            out = await super()._append(run_id, events, expected_seq)
            return [_with(e, event_id=es.EventId.new(), event=delta(0)) for e in out]

    async def body() -> None:
        async with WrongRetry() as store:
            with pytest.raises(es.CorruptEventError, match="returned event id"):
                await store.append(delta(0), event_id=es.EventId.new())

    run(body())


def test_a_backend_returning_the_wrong_number_of_envelopes_is_a_backend_error() -> None:
    class Short(MemoryEventStore):
        async def _append(
            self, run_id: es.RunId, events: Sequence[PendingEvent], expected_seq: int | None
        ) -> list[es.EventEnvelope]:
            return (await super()._append(run_id, events, expected_seq))[:-1]

    async def body() -> None:
        async with Short() as store:
            with pytest.raises(BackendError, match="returned 1 envelopes for an append of 2"):
                await store.append_batch([delta(0), delta(1)])

    run(body())


def test_a_retry_with_the_same_event_returns_the_stored_envelope_without_comparing_twice() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            event, event_id = delta(0), es.EventId.new()
            first = await store.append(event, event_id=event_id)
            # An equal event built again (same fields, same time) is the same append.
            again = await store.append(
                es.TextDelta(run_id=RUN, delta="0", timestamp=event.timestamp), event_id=event_id
            )
            assert again == first
            with pytest.raises(
                es.IdempotencyConflictError, match=f"event id {event_id} is already stored at seq 1"
            ):
                await store.append(delta(1), event_id=event_id)

    run(body())


@pytest.mark.parametrize(
    "value",
    [
        "[" * 300 + "]" * 300,  # brackets inside a string nest nothing
        "1" * 5000,  # digits inside a string are not an integer
        {"a": "{" * 200},
        JSON_INT_MAX,
        [[[[1]]]] * 50,  # many brackets, shallow
        {"NaN": "Infinity", "x": "-Infinity"},  # the tokens inside text
    ],
    ids=["brackets-in-text", "digits-in-text", "braces-in-text", "u64-max", "wide", "nan-text"],
)
def test_values_that_only_look_odd_are_stored(value: Any) -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            event = es.ToolCallCompleted(
                run_id=RUN, call=es.ToolCall(id="c", name="t", arguments=value)
            )
            appended = await store.append(event)
            assert await store.list_after(RUN) == [appended]

    run(body())


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_float_that_skipped_validation_is_refused_at_append(value: float) -> None:
    # model_construct skips validation; pydantic would write the float as null and
    # the store would acknowledge an event that reads back changed.
    call = es.ToolCall.model_construct(id="c", name="t", arguments={"x": [value]})
    event = es.ToolCallCompleted(run_id=RUN, call=call)

    async def body() -> None:
        async with MemoryEventStore() as store:
            with pytest.raises(es.InvalidArgumentError, match="NaN or an infinite float"):
                await store.append(event)
            assert await store.last_seq(RUN) == 0

    run(body())


def test_the_depth_limit_counts_the_event_json_from_its_tag() -> None:
    def nested(levels: int) -> Any:
        value: Any = 0
        for _ in range(levels):
            value = [value]
        return value

    async def body() -> None:
        async with MemoryEventStore() as store:
            # Tag object, variant fields, call object: three levels above the arguments.
            ok = es.ToolCallCompleted(
                run_id=RUN, call=es.ToolCall(id="c", name="t", arguments=nested(MAX_JSON_DEPTH - 3))
            )
            await store.append(ok)
            too_deep = ok.model_copy(
                update={"call": es.ToolCall(id="c", name="t", arguments=nested(MAX_JSON_DEPTH - 2))}
            )
            with pytest.raises(es.InvalidArgumentError, match=f"nests {MAX_JSON_DEPTH + 1} levels"):
                await store.append(too_deep)
            assert await store.last_seq(RUN) == 1

    run(body())


def test_an_import_whose_event_names_another_run_is_refused_and_stores_nothing() -> None:
    async def body() -> None:
        async with MemoryEventStore() as source, MemoryEventStore() as store:
            envelopes = await source.append_batch([delta(i) for i in range(2)])
            stray = _with(envelopes[1], event=delta(1, OTHER))
            with pytest.raises(es.InvalidArgumentError, match=f"names run {OTHER}"):
                await store.import_envelopes([envelopes[0], stray])
            assert await store.last_seq(RUN) == 0

    run(body())


def test_an_unknown_event_without_a_run_id_is_kept_not_corruption() -> None:
    # A future variant may name no run: copied in, it reads back (never an error).
    async def body() -> None:
        async with MemoryEventStore() as source, MemoryEventStore() as store:
            (first,) = await source.append_batch([delta(0)])
            heartbeat = _with(
                first,
                seq=2,
                event_id=es.EventId.new(),
                event=es.UnknownEvent(name="Heartbeat", payload={"n": 1}),
            )
            assert await store.import_envelopes([first, heartbeat]) == 2
            assert await store.list_after(RUN) == [first, heartbeat]

    run(body())


@pytest.mark.parametrize("retried", [1.0, True, "1", [1]], ids=["float", "bool", "text", "list"])
def test_a_retry_with_a_value_python_calls_equal_but_json_does_not_conflicts(retried: Any) -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            event_id = es.EventId.new()
            stored = es.ToolCallCompleted(
                run_id=RUN, call=es.ToolCall(id="c", name="t", arguments={"x": 1})
            )
            await store.append(stored, event_id=event_id)
            again = stored.model_copy(
                update={"call": es.ToolCall(id="c", name="t", arguments={"x": retried})}
            )
            with pytest.raises(es.IdempotencyConflictError):
                await store.append(again, event_id=event_id)
            assert await store.last_seq(RUN) == 1

    run(body())


def test_errors_raised_by_argument_checks_name_the_backend_too() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            with pytest.raises(es.InvalidArgumentError) as caught:
                await store.list_after(RUN, limit=0)
            assert caught.value.backend == "memory"
            assert str(caught.value).startswith("memory: limit must be")
            with pytest.raises(es.InvalidArgumentError) as caught:
                await store.append(
                    es.ToolCallCompleted(
                        run_id=RUN, call=es.ToolCall(id="c", name="t", arguments=2**64)
                    )
                )
            assert caught.value.backend == "memory"
        from eventstore.errors import StoreClosedError

        with pytest.raises(StoreClosedError) as closed:
            await store.last_seq(RUN)
        assert closed.value.backend == "memory"

    run(body())


def test_a_subscriber_finds_appends_made_through_another_store_object_by_polling() -> None:
    # Two store objects on one storage: the notifier of one never hears of the other's
    # appends, so the base class's default looks again (its shared poller, 5 ms backing off to 100 ms).
    shared: dict[es.RunId, Any] = {}

    class Shared(MemoryEventStore):
        def __init__(self) -> None:
            super().__init__()
            self._runs = shared

        _poll_interval = es.EventStore._poll_interval  # the default, not memory's

        async def _do_close(self) -> None:
            pass

    async def body() -> None:
        async with Shared() as reader, Shared() as writer:
            stream = reader.subscribe(RUN)
            waiting = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(0.02)
            await writer.append(delta(0))
            assert (await asyncio.wait_for(waiting, 5)).seq == 1
            await stream.aclose()  # type: ignore[attr-defined]

    run(body())


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        (-(2**63), False),
        (-(2**63) - 1, True),
        (1.2345678901234567e300, False),  # a float's digits are not an integer's
        ({"12345678901234567890123": 1}, False),  # digits in a key are text
        ([0] * 200, False),  # many values, shallow
    ],
    ids=["i64-min", "below-i64-min", "big-float", "digits-in-key", "wide-list"],
)
def test_the_integer_check_reads_tokens_not_text(value: Any, refused: bool) -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            event = es.ToolCallCompleted(
                run_id=RUN, call=es.ToolCall(id="c", name="t", arguments=value)
            )
            if refused:
                with pytest.raises(es.InvalidArgumentError, match="integer"):
                    await store.append(event)
            else:
                appended = await store.append(event)
                assert await store.list_after(RUN) == [appended]

    run(body())


# -- tests the mutation run asked for (docs/mutation.md: T12, T30, T38, T41) ------------


def test_a_batch_retry_is_checked_event_by_event_past_an_identical_first_event() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            first, ids = delta(0), [es.EventId.new(), es.EventId.new()]
            await store.append_batch([first, delta(1)], event_ids=ids)
            with pytest.raises(es.IdempotencyConflictError):
                await store.append_batch([first, delta(2)], event_ids=ids)

    run(body())


@pytest.mark.parametrize("expected", [-1, "0", True])
def test_append_batch_checks_expected_seq_like_append(expected: Any) -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            with pytest.raises(es.InvalidArgumentError, match="expected_seq"):
                await store.append_batch([delta(0)], expected_seq=expected)
            assert await store.last_seq(RUN) == 0

    run(body())


def test_an_import_that_starts_at_the_destinations_last_seq_resumes_there() -> None:
    async def body() -> None:
        async with MemoryEventStore() as source, MemoryEventStore() as store:
            envelopes = await source.append_batch([delta(i) for i in range(5)])
            assert await store.import_envelopes(envelopes[:3]) == 3
            assert await store.import_envelopes(envelopes[2:]) == 2
            assert await store.list_after(RUN) == envelopes

    run(body())


def test_a_live_subscriber_receives_what_an_import_adds() -> None:
    async def body() -> None:
        async with MemoryEventStore() as source, MemoryEventStore() as store:
            envelopes = await source.append_batch([delta(i) for i in range(2)])
            stream = store.subscribe(RUN)
            waiting = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(0.01)
            await store.import_envelopes(envelopes)
            assert await asyncio.wait_for(waiting, 5) == envelopes[0]
            await stream.aclose()  # type: ignore[attr-defined]

    run(body())
