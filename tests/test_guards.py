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

    async def _list_after(self, run_id: es.RunId, after_seq: int, limit: int) -> list[es.EventEnvelope]:
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
            with pytest.raises(es.CorruptEventError, match="expected seq 3, the store returned seq 4"):
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
        async def _list_after(self, run_id: es.RunId, after_seq: int, limit: int) -> list[es.EventEnvelope]:
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
            again = await store.append(es.TextDelta(run_id=RUN, delta="0", timestamp=event.timestamp), event_id=event_id)
            assert again == first
            with pytest.raises(es.IdempotencyConflictError, match=f"event id {event_id} is already stored at seq 1"):
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
    ],
    ids=["brackets-in-text", "digits-in-text", "braces-in-text", "u64-max", "wide"],
)
def test_values_that_only_look_odd_are_stored(value: Any) -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            event = es.ToolCallCompleted(run_id=RUN, call=es.ToolCall(id="c", name="t", arguments=value))
            appended = await store.append(event)
            assert await store.list_after(RUN) == [appended]

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
            ok = es.ToolCallCompleted(run_id=RUN, call=es.ToolCall(id="c", name="t", arguments=nested(MAX_JSON_DEPTH - 3)))
            await store.append(ok)
            too_deep = ok.model_copy(update={"call": es.ToolCall(id="c", name="t", arguments=nested(MAX_JSON_DEPTH - 2))})
            with pytest.raises(es.InvalidArgumentError, match=f"nests {MAX_JSON_DEPTH + 1} levels"):
                await store.append(too_deep)
            assert await store.last_seq(RUN) == 1

    run(body())
