"""Tests the mutation run asked for (docs/mutation.md, tests T1..T47).

Each test is named after the T it implements and checks what one or more surviving
mutants of ``eventstore/memory.py``, ``eventstore/_guards.py`` or the rule code of
``eventstore/_store.py`` get wrong: mostly the texts and attributes of errors (the
suite checks error types), and a few behaviours only a planted bug or a test double
reaches (pages a correct backend never returns, the retention branch of imports, the
texts an import hands a backend). T12, T30, T38 and T41 are in ``tests/test_guards.py``.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import eventstore as es
from eventstore.backend import MAX_LIMIT, ImportBatch, encode_envelope, new_envelope
from eventstore.errors import (
    EventTooLargeError,
    HistoryUnavailableError,
    RunDivergedError,
)
from eventstore.events import MAX_JSON_DEPTH, encode_event
from eventstore.memory import MemoryEventStore

RUN = es.RunId.new()
OTHER = es.RunId.new()

Envelopes = list[es.EventEnvelope]


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))


def delta(index: int, run_id: es.RunId = RUN) -> es.TextDelta:
    return es.TextDelta(run_id=run_id, delta=str(index))


def tool_call(arguments: Any) -> es.ToolCallCompleted:
    return es.ToolCallCompleted(run_id=RUN, call=es.ToolCall(id="c", name="t", arguments=arguments))


def _with(envelope: es.EventEnvelope, **changes: Any) -> es.EventEnvelope:
    fields = {name: getattr(envelope, name) for name in es.EventEnvelope.model_fields}
    return new_envelope(**{**fields, **changes})


async def _source(count: int, run_id: es.RunId = RUN) -> Envelopes:
    """Envelopes of seqs 1..count as another store made them."""
    async with MemoryEventStore() as source:
        return await source.append_batch([delta(i, run_id) for i in range(count)])


def _message(error: BaseException) -> str:
    """The error's text without the ``memory: `` the store's boundary puts first."""
    text = str(error)
    assert text.startswith("memory: "), text
    return text.removeprefix("memory: ")


# -- pages a broken backend returns (check_page) ---------------------------------------


class _Planted(MemoryEventStore):
    """Returns ``plant(stored envelopes, after_seq)`` as every page."""

    def __init__(self, plant: Callable[[Envelopes, int], Envelopes], *, gaps: bool) -> None:
        super().__init__()
        self.plant = plant
        self.gaps_possible = gaps

    async def _list_after(self, run_id: es.RunId, after_seq: int, limit: int) -> Envelopes:
        stored = await super()._list_after(run_id, 0, MAX_LIMIT)
        return self.plant(stored, after_seq)[:limit]


def _seqs(*seqs: int) -> Callable[[Envelopes, int], Envelopes]:
    """A page of the stored envelopes of these seqs, in this order."""
    return lambda stored, _after: [stored[seq - 1] for seq in seqs]


async def _planted_error(
    plant: Callable[[Envelopes, int], Envelopes], after_seq: int, *, gaps: bool
) -> es.CorruptEventError:
    async with _Planted(plant, gaps=gaps) as store:
        await store.append_batch([delta(i) for i in range(6)])
        with pytest.raises(es.CorruptEventError) as caught:
            await store.list_after(RUN, after_seq, 5)
        assert caught.value.run_id == RUN
        return caught.value


def test_t4_a_gaps_page_of_one_envelope_at_or_before_after_seq_is_corruption() -> None:
    async def body() -> None:
        error = await _planted_error(_seqs(3), 5, gaps=True)
        assert error.position == "seq 3"
        assert error.reason == "seq 3 follows seq 5: the page is out of order"

    run(body())


def test_t5_a_gaps_page_must_start_after_after_seq() -> None:
    async def body() -> None:
        error = await _planted_error(_seqs(2, 4), 2, gaps=True)
        assert error.position == "seq 2"
        # A one-envelope page past after_seq is fine (a gap before it included).
        async with _Planted(_seqs(4), gaps=True) as store:
            await store.append_batch([delta(i) for i in range(6)])
            assert [e.seq for e in await store.list_after(RUN, 2, 5)] == [4]

    run(body())


def test_t6_a_page_that_starts_one_seq_early_is_corruption() -> None:
    async def body() -> None:
        error = await _planted_error(_seqs(2, 3, 4), 3, gaps=False)
        assert error.position == "seq 4"
        assert error.reason == "expected seq 4, the store returned seq 2 (a duplicate or disorder)"

    run(body())


def test_t7_a_gaps_page_with_a_duplicate_seq_is_corruption() -> None:
    async def body() -> None:
        error = await _planted_error(_seqs(1, 1, 2), 0, gaps=True)
        assert error.position == "seq 1"
        assert error.reason == "seq 1 follows seq 1: the page is out of order"

    run(body())


def test_t8_the_gaps_path_error_names_run_and_seq() -> None:
    async def body() -> None:
        error = await _planted_error(_seqs(2, 1, 3), 0, gaps=True)
        assert error.position == "seq 1"
        assert error.reason == "seq 1 follows seq 2: the page is out of order"
        assert _message(error) == (
            f"run {RUN}: stored entry at seq 1 is corrupt: seq 1 follows seq 2: "
            "the page is out of order"
        )

    run(body())


@pytest.mark.parametrize(
    ("seqs", "position", "reason"),
    [
        ((1, 2, 4, 5), "seq 3", "expected seq 3, the store returned seq 4 (a hole)"),
        ((1, 2, 5), "seq 3", "expected seq 3, the store returned seq 5 (a hole)"),
        ((1, 1, 2), "seq 2", "expected seq 2, the store returned seq 1 (a duplicate or disorder)"),
        ((2, 1, 3), "seq 1", "expected seq 1, the store returned seq 2 (a hole)"),
        ((1, 3, 2), "seq 2", "expected seq 2, the store returned seq 3 (a hole)"),
        ((1, 2, 2), "seq 3", "expected seq 3, the store returned seq 2 (a duplicate or disorder)"),
    ],
    ids=["hole-of-one", "hole-of-two", "duplicate", "disorder-first", "disorder", "repeat-last"],
)
def test_t9_t10_the_reason_names_the_kind_and_the_position_the_missing_seq(
    seqs: tuple[int, ...], position: str, reason: str
) -> None:
    async def body() -> None:
        error = await _planted_error(_seqs(*seqs), 0, gaps=False)
        assert error.position == position
        assert error.reason == reason

    run(body())


@pytest.mark.parametrize("gaps", [False, True], ids=["no-gaps", "gaps"])
def test_t11_an_envelope_of_another_run_is_named_in_the_reason(gaps: bool) -> None:
    def plant(stored: Envelopes, _after: int) -> Envelopes:
        return [stored[0], _with(stored[1], run_id=OTHER), *stored[2:]]

    async def body() -> None:
        error = await _planted_error(plant, 0, gaps=gaps)
        assert error.position == "seq 2"
        assert error.reason == f"the envelope names run {OTHER}"

    run(body())


# -- retries (check_retry, the memory backend's _append) --------------------------------


def test_t13_a_retry_answered_with_another_event_id_names_run_and_seq() -> None:
    class WrongRetry(MemoryEventStore):
        async def _append(
            self, run_id: es.RunId, events: Any, expected_seq: int | None
        ) -> Envelopes:
            out = await super()._append(run_id, events, expected_seq)
            return [_with(e, event_id=es.EventId.new(), event=delta(0)) for e in out]

    async def body() -> None:
        async with WrongRetry() as store:
            await store.import_envelopes(await _source(1))  # no _append: no planted bug
            with pytest.raises(es.CorruptEventError) as caught:
                await store.append(delta(1), event_id=es.EventId.new())
            assert caught.value.run_id == RUN
            assert caught.value.position == "seq 2"

    run(body())


def test_t14_the_conflict_message_names_the_run_and_the_types_when_they_differ() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            event_id = es.EventId.new()
            await store.append(delta(0), event_id=event_id)
            with pytest.raises(es.IdempotencyConflictError) as same_type:
                await store.append(delta(1), event_id=event_id)
            assert _message(same_type.value) == (
                f"run {RUN}: event id {event_id} is already stored at seq 1 with a different "
                "event; a retry must send the same event, a new event needs a new id"
            )
            with pytest.raises(es.IdempotencyConflictError) as other_type:
                await store.append(tool_call({}), event_id=event_id)
            assert _message(other_type.value).startswith(
                f"run {RUN}: event id {event_id} is already stored at seq 1 with a different "
                "event (stored TextDelta, given ToolCallCompleted); "
            )

    run(body())


def test_t16_a_half_stored_batch_names_run_and_counts() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            first, ids = delta(0), [es.EventId.new(), es.EventId.new(), es.EventId.new()]
            await store.append(first, event_id=ids[0])
            with pytest.raises(es.IdempotencyConflictError) as caught:
                await store.append_batch([first, delta(1), delta(2)], event_ids=ids)
            assert _message(caught.value).startswith(
                f"run {RUN}: 1 of the batch's 3 event ids are already stored; "
            )
            assert await store.last_seq(RUN) == 1

    run(body())


# -- the memory backend's own pieces -----------------------------------------------------


def test_t15_an_unknown_memory_option_is_named_by_the_backend() -> None:
    with pytest.raises(es.ConfigurationError) as caught:
        es.open_store("memory://?bogus=1")
    assert str(caught.value).startswith("memory store 'memory://?bogus=1': unknown option 'bogus'")


def test_t17_the_memory_import_rechecks_the_last_seq() -> None:
    # import_envelopes checks the same condition just before calling _import, so only
    # a direct call reaches the backend's own check (a concurrent append in between).
    async def body() -> None:
        envelopes = await _source(3)
        async with MemoryEventStore() as store:
            await store.import_envelopes(envelopes[:2])
            batch = ImportBatch(
                RUN, envelopes[2:], [encode_envelope(e) for e in envelopes[2:]], expected_seq=1
            )
            with pytest.raises(es.ConcurrencyError) as caught:
                await store._import(batch)
            assert (caught.value.run_id, caught.value.expected_seq) == (RUN, 1)
            assert caught.value.actual_seq == 2
            assert await store.last_seq(RUN) == 2

    run(body())


def test_t18_an_imported_event_id_stored_at_another_seq_names_the_run() -> None:
    async def body() -> None:
        envelopes = await _source(3)
        async with MemoryEventStore() as store:
            await store.import_envelopes(envelopes[:2])
            reused = _with(envelopes[2], event_id=envelopes[0].event_id)
            with pytest.raises(es.IdempotencyConflictError) as caught:
                await store.import_envelopes([reused])
            assert _message(caught.value) == (
                f"run {RUN}: a copied event id is already stored at another seq"
            )

    run(body())


def test_t19_t20_the_backdoor_corrupts_the_first_and_the_last_seq() -> None:
    async def body() -> None:
        for seq in (1, 4):
            async with MemoryEventStore() as store:
                backdoor = store.backdoor()
                assert backdoor is not None
                await store.append_batch([delta(i) for i in range(4)])
                await backdoor.corrupt(RUN, seq)
                with pytest.raises(es.CorruptEventError) as caught:
                    await store.list_after(RUN)
                assert caught.value.position == f"seq {seq}"
                assert caught.value.reason == "damaged by backdoor"

    run(body())


def test_t21_the_backdoor_names_run_and_seq_of_a_missing_entry() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            backdoor = store.backdoor()
            assert backdoor is not None
            (envelope,) = await store.append_batch([delta(0)])
            with pytest.raises(KeyError) as caught:
                await backdoor.corrupt(RUN, 0)
            assert caught.value.args == (f"run {RUN} has no seq 0",)
            with pytest.raises(KeyError) as caught:
                await backdoor.corrupt(RUN, 2)
            assert caught.value.args == (f"run {RUN} has no seq 2",)
            with pytest.raises(KeyError) as caught:
                await backdoor.remove(RUN, 2)
            assert caught.value.args == (f"run {RUN} has no seq 2",)
            with pytest.raises(KeyError) as caught:
                await backdoor.replace(RUN, 2, encode_envelope(envelope))
            assert caught.value.args == (f"run {RUN} has no seq 2",)
            assert await store.list_after(RUN) == [envelope]

    run(body())


# -- argument checks of the base class ------------------------------------------------


def test_t22_ids_given_as_text_or_uuid_are_accepted() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            event_id = uuid.uuid4()
            appended = await store.append(delta(0), event_id=str(event_id))  # type: ignore[arg-type]
            assert appended.event_id == event_id
            again = await store.append_batch([delta(1)], event_ids=[uuid.UUID(int=7)])  # type: ignore[list-item]
            assert again[0].event_id == uuid.UUID(int=7)
            both = await store.list_after(RUN)
            assert both == [appended, *again]
            assert await store.list_after(str(RUN)) == both  # type: ignore[arg-type]
            assert await store.list_after(uuid.UUID(str(RUN))) == both  # type: ignore[arg-type]
            assert await store.last_seq(str(RUN)) == 2  # type: ignore[arg-type]

    run(body())


def test_t23_id_errors_name_the_argument_and_the_type() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            with pytest.raises(es.InvalidArgumentError) as wrong_type:
                await store.list_after(123)  # type: ignore[arg-type]
            assert _message(wrong_type.value) == "run_id must be a RunId, got int"
            with pytest.raises(es.InvalidArgumentError) as wrong_text:
                await store.list_after("nope")  # type: ignore[arg-type]
            assert _message(wrong_text.value).startswith("run_id: ")
            with pytest.raises(es.InvalidArgumentError) as wrong_event_id:
                await store.append(delta(0), event_id=42)  # type: ignore[arg-type]
            assert _message(wrong_event_id.value) == "event_id must be a EventId, got int"

    run(body())


def test_t24_a_non_event_is_named_by_its_type() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            with pytest.raises(es.InvalidArgumentError) as caught:
                await store.append({"a": 1})  # type: ignore[arg-type]
            assert _message(caught.value) == "expected an AgentEvent instance, got dict"

    run(body())


def test_t25_an_unserializable_event_is_named_by_its_type() -> None:
    unserializable: Any = {"x": object()}
    call = es.ToolCall.model_construct(id="c", name="t", arguments=unserializable)
    event = es.ToolCallCompleted(run_id=RUN, call=call)

    async def body() -> None:
        async with MemoryEventStore() as store:
            with pytest.raises(es.InvalidArgumentError) as caught:
                await store.append(event)
            assert _message(caught.value).startswith(
                "ToolCallCompleted event cannot be serialized to JSON: "
            )

    run(body())


def test_t26_event_too_large_carries_size_limit_and_type() -> None:
    event = delta(10**120)

    async def body() -> None:
        async with MemoryEventStore(max_event_bytes=100) as store:
            with pytest.raises(EventTooLargeError) as caught:
                await store.append(event)
            size = len(encode_event(event).encode())
            assert size > 100
            assert (caught.value.size, caught.value.limit) == (size, 100)
            assert caught.value.event_type == "TextDelta"

    run(body())


def test_t27_a_malformed_event_id_is_named() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            with pytest.raises(es.InvalidArgumentError) as caught:
                await store.append(delta(0), event_id="nope")  # type: ignore[arg-type]
            assert _message(caught.value).startswith("event_id: ")

    run(body())


def test_t28_an_event_without_a_run_id_is_refused_with_its_own_words() -> None:
    event = es.UnknownEvent(name="Heartbeat", payload={"n": 1})
    with pytest.raises(ValueError, match="run_id") as own:
        _ = event.run_id

    async def body() -> None:
        async with MemoryEventStore() as store:
            with pytest.raises(es.InvalidArgumentError) as caught:
                await store.append(event)
            assert _message(caught.value) == str(own.value)

    run(body())


def test_t29_expected_seq_errors_name_the_argument() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            with pytest.raises(es.InvalidArgumentError) as single:
                await store.append(delta(0), expected_seq=-1)
            with pytest.raises(es.InvalidArgumentError) as batch:
                await store.append_batch([delta(0)], expected_seq=-1)
            for caught in (single, batch):
                assert _message(caught.value).startswith("expected_seq must be None or an int")

    run(body())


@pytest.mark.parametrize("events", [None, 42, "abc", b"abc"], ids=["none", "int", "str", "bytes"])
def test_t31_t32_append_batch_refuses_what_is_not_a_sequence(events: Any) -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            with pytest.raises(es.InvalidArgumentError) as caught:
                await store.append_batch(events)
            assert _message(caught.value) == "events must be a sequence of AgentEvent"

    run(body())


def test_t33_t34_event_ids_errors_say_what_is_wrong() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            event_id = es.EventId.new()
            with pytest.raises(es.InvalidArgumentError) as short:
                await store.append_batch([delta(0), delta(1)], event_ids=[event_id])
            assert _message(short.value) == "event_ids has 1 ids for 2 events"
            with pytest.raises(es.InvalidArgumentError) as twice:
                await store.append_batch([delta(0), delta(1)], event_ids=[event_id, event_id])
            assert _message(twice.value) == "event_ids contains the same id twice"
            assert await store.last_seq(RUN) == 0

    run(body())


def test_t35_the_default_limit_is_100() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            await store.append_batch([delta(i) for i in range(101)])
            assert [e.seq for e in await store.list_after(RUN)] == list(range(1, 101))
            assert [e.seq for e in await store.list_after(RUN, 1)] == list(range(2, 102))

    run(body())


def test_t36_after_seq_errors_name_the_argument() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            with pytest.raises(es.InvalidArgumentError) as caught:
                await store.list_after(RUN, after_seq=-1)
            assert _message(caught.value).startswith("after_seq must be None or an int")

    run(body())


# -- imports -----------------------------------------------------------------------------


def test_t37_importing_nothing_imports_nothing() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            assert await store.import_envelopes([]) == 0
            assert await store.import_envelopes(()) == 0

    run(body())


def test_t39_run_diverged_names_run_seq_and_the_destinations_last_seq() -> None:
    async def body() -> None:
        ours, theirs = await _source(3), await _source(5)
        async with MemoryEventStore() as store:
            await store.import_envelopes(ours)
            with pytest.raises(RunDivergedError) as caught:
                await store.import_envelopes(theirs[1:])
            error = caught.value
            assert (error.run_id, error.seq, error.expected_seq, error.actual_seq) == (RUN, 2, 1, 3)
            assert await store.list_after(RUN) == ours

    run(body())


def test_t40_an_import_past_the_next_seq_names_the_expected_and_the_actual_seq() -> None:
    async def body() -> None:
        envelopes = await _source(7)
        async with MemoryEventStore() as store:
            await store.import_envelopes(envelopes[:3])
            with pytest.raises(es.ConcurrencyError) as caught:
                await store.import_envelopes(envelopes[5:])
            error = caught.value
            assert type(error) is es.ConcurrencyError
            assert (error.run_id, error.expected_seq, error.actual_seq) == (RUN, 5, 3)

    run(body())


def test_t42_import_refuses_what_is_not_an_envelope() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            with pytest.raises(es.InvalidArgumentError) as caught:
                await store.import_envelopes([object()])  # type: ignore[list-item]
            assert _message(caught.value) == "import_envelopes takes EventEnvelope values"

    run(body())


def test_t43_t44_an_import_of_max_limit_envelopes_is_accepted_one_more_refused() -> None:
    async def body() -> None:
        # Built directly (one template event): cheaper than MAX_LIMIT appends.
        (template,) = await _source(1)
        envelopes = [
            _with(template, seq=seq, event_id=es.EventId(int=seq))
            for seq in range(1, MAX_LIMIT + 2)
        ]
        async with MemoryEventStore() as store:
            with pytest.raises(es.InvalidArgumentError) as caught:
                await store.import_envelopes(envelopes)
            assert _message(caught.value) == f"import_envelopes takes at most {MAX_LIMIT} envelopes"
            assert await store.import_envelopes(envelopes[:MAX_LIMIT]) == MAX_LIMIT
            assert await store.last_seq(RUN) == MAX_LIMIT

    run(body())


def test_t44_the_import_refusals_say_what_is_wrong() -> None:
    async def body() -> None:
        envelopes = await _source(3)
        other = await _source(2, OTHER)
        async with MemoryEventStore() as store:
            twice = _with(envelopes[1], event_id=envelopes[0].event_id)
            with pytest.raises(es.IdempotencyConflictError) as same_id:
                await store.import_envelopes([envelopes[0], twice])
            assert _message(same_id.value) == (
                f"run {RUN}: import_envelopes got one event id for two envelopes"
            )
            with pytest.raises(es.InvalidArgumentError) as caught:
                await store.import_envelopes([envelopes[0], other[1]])
            assert _message(caught.value) == (
                f"import_envelopes takes envelopes of one run: {RUN} and {OTHER}"
            )
            with pytest.raises(es.InvalidArgumentError) as caught:
                await store.import_envelopes([envelopes[0], envelopes[2]])
            assert _message(caught.value) == (
                f"run {RUN}: envelopes must have consecutive seqs, got 1 then 3"
            )
            assert await store.last_seq(RUN) == 0

    run(body())


# -- imports into a store whose retention trimmed the run (T45) --------------------------


class _Trimmed(MemoryEventStore):
    """A store whose retention removed every seq before ``first_available``."""

    def __init__(self, first_available: int) -> None:
        super().__init__()
        self.first_available = first_available

    async def _list_after(self, run_id: es.RunId, after_seq: int, limit: int) -> Envelopes:
        # What the base class must never ask of a primitive.
        assert 1 <= limit <= MAX_LIMIT, f"_list_after called with limit={limit}"
        if after_seq < self.first_available - 1:
            raise HistoryUnavailableError(
                run_id=run_id, requested_after=after_seq, first_available=self.first_available
            )
        return await super()._list_after(run_id, after_seq, limit)


def _changed(envelope: es.EventEnvelope) -> es.EventEnvelope:
    return _with(envelope, event_id=es.EventId.new(), event=delta(-1))


@pytest.mark.parametrize(
    ("first_available", "imported", "changed", "added"),
    [
        (6, (2, 4), None, 0),  # the whole overlap trimmed: nothing to compare
        (5, (2, 4), None, 0),  # trimmed up to one past the overlap
        (4, (2, 12), 3, 2),  # a trimmed seq is not compared
        (4, (2, 12), 5, None),  # a kept one is
        (4, (2, 4), 4, None),  # the only kept seq of the overlap is the last one
        (4, (2, 4), None, 0),  # ... and it is compared, not taken for trimmed
        (4, (2, 12), 10, None),  # the destination's last seq is compared too
        (4, (3, 12), 4, None),  # the first kept seq is compared
        (1, (2, 12), 2, None),  # nothing trimmed: every seq compared
    ],
    ids=["all-trimmed", "trimmed-to-the-end", "trimmed-differs", "kept-differs", "last-kept",
         "last-kept-equal", "destination-last", "first-kept", "none-trimmed"],
)  # fmt: skip
def test_t45_an_import_compares_what_the_destinations_retention_kept(
    first_available: int, imported: tuple[int, int], changed: int | None, added: int | None
) -> None:
    async def body() -> None:
        envelopes = await _source(12)
        copy = envelopes[imported[0] - 1 : imported[1]]
        if changed is not None:
            copy = [_changed(e) if e.seq == changed else e for e in copy]
        async with _Trimmed(first_available) as store:
            await store.import_envelopes(envelopes[:10])
            if added is None:
                with pytest.raises(RunDivergedError) as caught:
                    await store.import_envelopes(copy)
                assert (caught.value.seq, caught.value.actual_seq) == (changed, 10)
                assert await store.last_seq(RUN) == 10
            else:
                assert await store.import_envelopes(copy) == added
                assert await store.last_seq(RUN) == 10 + added

    run(body())


def test_t45_the_kept_part_of_a_long_overlap_is_read_within_max_limit() -> None:
    async def body() -> None:
        (template,) = await _source(1)
        envelopes = [
            _with(template, seq=seq, event_id=es.EventId(int=seq))
            for seq in range(1, MAX_LIMIT + 1)
        ]
        async with _Trimmed(4) as store:
            await store.import_envelopes(envelopes)
            # Seqs 4..MAX_LIMIT are compared: one read of MAX_LIMIT - 3 envelopes.
            assert await store.import_envelopes(envelopes[1:]) == 0

    run(body())


def test_t47_an_import_hands_the_backend_each_envelopes_json() -> None:
    # What text-storing backends (sqlalchemy, jsonl) store; memory keeps the objects.
    class TextsChecked(MemoryEventStore):
        async def _import(self, batch: ImportBatch) -> None:
            assert list(batch.texts) == [encode_envelope(e) for e in batch.envelopes]
            await super()._import(batch)

    async def body() -> None:
        envelopes = await _source(4)
        async with TextsChecked() as store:
            assert await store.import_envelopes(envelopes[:2]) == 2
            assert await store.import_envelopes(envelopes) == 2
            assert await store.list_after(RUN) == envelopes

    run(body())


# -- the guards of check_decodable ------------------------------------------------------


def test_t1_the_integer_error_names_the_event_type() -> None:
    async def body() -> None:
        async with MemoryEventStore() as store:
            with pytest.raises(es.InvalidArgumentError) as caught:
                await store.append(tool_call({"x": 2**64}))
            assert _message(caught.value).startswith(
                f"ToolCallCompleted event holds the integer {2**64}, outside the range"
            )

    run(body())


def _nested(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


def test_t2_an_event_at_the_depth_limit_with_many_brackets_is_accepted() -> None:
    # More than MAX_JSON_DEPTH brackets in all, so the precise count decides.
    at_limit = tool_call([_nested(MAX_JSON_DEPTH - 4), [], [], []])
    over = tool_call([_nested(MAX_JSON_DEPTH - 3), [], [], []])
    text = encode_event(at_limit)
    assert text.count("[") + text.count("{") > MAX_JSON_DEPTH

    async def body() -> None:
        async with MemoryEventStore() as store:
            appended = await store.append(at_limit)
            assert await store.list_after(RUN) == [appended]
            with pytest.raises(es.InvalidArgumentError) as caught:
                await store.append(over)
            assert _message(caught.value).startswith(
                f"ToolCallCompleted event nests {MAX_JSON_DEPTH + 1} levels"
            )

    run(body())


@pytest.mark.parametrize(
    ("digits", "shown"),
    [
        ("1234567890" * 4, "1234567890" * 4),
        ("1234567890" * 4 + "1", "12345678901234567890...(41 digits)"),
        ("-" + "123456789" * 4 + "1", "-1234567891234567891234567891234567891"),
    ],
    ids=["40-digits", "41-digits", "negative-38-chars"],
)
def test_t3_the_refused_integer_is_shown_in_full_up_to_40_characters(
    digits: str, shown: str
) -> None:
    event = es.ToolCallCompleted(
        run_id=RUN, call=es.ToolCall(id="c", name="t", arguments=int(digits))
    )

    async def body() -> None:
        async with MemoryEventStore() as store:
            with pytest.raises(es.InvalidArgumentError) as caught:
                await store.append(event)
            assert re.search(f"holds the integer {re.escape(shown)}, outside", str(caught.value))

    run(body())


def test_t46_the_non_finite_float_error_names_the_type_and_the_way_out() -> None:
    call = es.ToolCall.model_construct(id="c", name="t", arguments={"x": [float("nan")]})
    event = es.ToolCallCompleted(run_id=RUN, call=call)

    async def body() -> None:
        async with MemoryEventStore() as store:
            with pytest.raises(es.InvalidArgumentError) as caught:
                await store.append(event)
            assert _message(caught.value) == (
                "ToolCallCompleted event holds a NaN or an infinite float, which JSON cannot "
                "carry (serde refuses it); build events with validation, not model_construct"
            )

    run(body())
