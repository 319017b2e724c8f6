"""Rules 3 (pagination) and 6 (round trip): ``list_after`` and ``last_seq``."""

from __future__ import annotations

__all__ = ["ReadTests"]

import json
import math
import uuid
from typing import Any

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from eventstore import (
    MAX_LIMIT,
    AgentEvent,
    Capability,
    EventId,
    EventStore,
    RunFailed,
    RunId,
    SessionId,
    TextDelta,
    ToolCall,
    ToolCallCompleted,
    ToolCallStarted,
    UnknownEvent,
)
from eventstore.backend import MAX_SEQ, new_envelope
from eventstore.events import decode_event, encode_event, format_time, parse_time

from .. import strategies
from .._harness import ContractEnv, contract_test, requires
from .._support import delta, golden_events, read_all, serde_event_lines


class ReadTests:
    """Reads are exact, ascending, and return what the appends returned."""

    @contract_test
    async def test_round_trip_list_after_equals_append_result(self, store: EventStore) -> None:
        run_id = RunId.new()
        appended = [await store.append(delta(run_id, 0))]
        appended += await store.append_batch([delta(run_id, i) for i in range(1, 4)])
        assert await store.list_after(run_id) == appended

    @contract_test
    async def test_pagination_default_limit_is_100(self, store: EventStore) -> None:
        run_id = RunId.new()
        appended = await store.append_batch([delta(run_id, i) for i in range(101)])
        assert await store.list_after(run_id) == appended[:100]
        assert await store.list_after(run_id, 1) == appended[1:101]

    @contract_test
    async def test_round_trip_every_variant(self, store: EventStore) -> None:
        run_id = RunId.new()
        events = golden_events(run_id, SessionId.new())
        appended = [await store.append(event) for event in events]
        stored = await read_all(store, run_id)
        assert stored == appended
        assert [e.event for e in stored] == events
        assert [encode_event(e.event) for e in stored] == [encode_event(e) for e in events]

    @contract_test
    async def test_round_trip_unknown_variant_stored_unchanged(self, store: EventStore) -> None:
        run_id = RunId.new()
        payload = {"run_id": str(run_id), "novel": [1, "two", {"3": None}], "text": '"\\\u2028'}
        event = UnknownEvent(name="SpeculativeFutureEvent", payload=payload)
        appended = await store.append(event)
        (stored,) = await store.list_after(run_id)
        assert stored == appended
        assert isinstance(stored.event, UnknownEvent)
        assert stored.event.name == "SpeculativeFutureEvent"
        assert json.loads(encode_event(stored.event)) == {"SpeculativeFutureEvent": payload}

    @contract_test
    async def test_round_trip_unknown_variants_with_unusual_names(self, store: EventStore) -> None:
        # A newer writer names its variants as it likes: every name must survive,
        # including ones no column or key of a backend would expect.
        run_id = RunId.new()
        names = [
            "V" * 300,
            "Nul\x00In\x00Name",
            'Événement "cité" \\ 🚀',
            "with space\nand newline",
        ]
        events = [
            UnknownEvent(name=name, payload={"run_id": str(run_id), "n": n})
            for n, name in enumerate(names)
        ]
        appended = [await store.append(event) for event in events]
        appended.append((await store.append_batch(events[:1]))[0])
        stored = await store.list_after(run_id)
        assert stored == appended
        assert [e.event.name for e in stored] == [*names, names[0]]  # type: ignore[union-attr]

    def test_round_trip_generated_events(
        self, store: EventStore, eventstore_env: ContractEnv
    ) -> None:
        @eventstore_env.hypothesis
        @given(data=st.data())
        def check(data: st.DataObject) -> None:
            run_id = RunId.new()
            events = data.draw(st.lists(strategies.events(run_id), min_size=1, max_size=6))
            batched = data.draw(st.booleans(), label="as one batch")
            eventstore_env.run(_check_round_trip(store, events, batched=batched))

        check()

    @contract_test
    async def test_read_returns_events_in_seq_order(self, store: EventStore) -> None:
        run_id = RunId.new()
        for i in range(20):
            await store.append(delta(run_id, i))
        page = await store.list_after(run_id, 3, 100)
        assert [e.seq for e in page] == list(range(4, 21))
        assert [e.event.delta for e in page] == [str(i) for i in range(3, 20)]  # type: ignore[union-attr]

    @contract_test
    async def test_read_unknown_run_is_empty(self, store: EventStore) -> None:
        run_id = RunId.new()
        assert await store.last_seq(run_id) == 0
        assert await store.list_after(run_id) == []
        assert await store.list_after(run_id, 5, 10) == []

    @contract_test
    async def test_pagination_returns_exactly_limit(self, store: EventStore) -> None:
        run_id = RunId.new()
        total = 10
        await store.append_batch([delta(run_id, i) for i in range(total)])
        for after in range(total + 2):
            for limit in range(1, total + 3):
                page = await store.list_after(run_id, after, limit)
                expected = list(range(after + 1, min(after + limit, total) + 1))
                assert [e.seq for e in page] == expected, f"after_seq={after} limit={limit}"

    @contract_test
    async def test_pagination_visits_every_event_once(self, store: EventStore) -> None:
        run_id = RunId.new()
        total = 13
        appended = await store.append_batch([delta(run_id, i) for i in range(total)])
        for size in range(1, total + 2):
            seen = []
            after = None
            for _ in range(total + 1):
                page = await store.list_after(run_id, after, size)
                if not page:
                    break
                seen.extend(page)
                after = page[-1].seq
            assert seen == appended, f"paging by {size} must visit every event once"

    @contract_test
    async def test_pagination_after_seq_none_starts_at_one(self, store: EventStore) -> None:
        run_id = RunId.new()
        await store.append_batch([delta(run_id, i) for i in range(3)])
        assert [e.seq for e in await store.list_after(run_id, None, 2)] == [1, 2]
        assert await store.list_after(run_id, None) == await store.list_after(run_id, 0)

    @contract_test
    async def test_pagination_accepts_limit_bounds(self, store: EventStore) -> None:
        run_id = RunId.new()
        await store.append_batch([delta(run_id, i) for i in range(3)])
        assert len(await store.list_after(run_id, 0, 1)) == 1
        assert len(await store.list_after(run_id, 0, MAX_LIMIT)) == 3

    @contract_test
    async def test_pagination_rejects_invalid_limit(self, store: EventStore) -> None:
        run_id = RunId.new()
        await store.append(delta(run_id, 0))
        for limit in (0, -1, MAX_LIMIT + 1, True, False, 1.0, "10", None):
            with pytest.raises(ValueError, match="limit"):
                await store.list_after(run_id, 0, limit)  # type: ignore[arg-type]

    @contract_test
    async def test_pagination_rejects_invalid_after_seq(self, store: EventStore) -> None:
        run_id = RunId.new()
        for after_seq in (-1, -100, 1.5, "3", True):
            with pytest.raises(ValueError, match="after_seq"):
                await store.list_after(run_id, after_seq)  # type: ignore[arg-type]

    @contract_test
    async def test_read_run_longer_than_max_limit_in_full_pages(self, store: EventStore) -> None:
        # A run longer than the largest page: a backend whose driver or query caps a
        # page below MAX_LIMIT (1,000 rows, say) returns short pages only here.
        run_id = RunId.new()
        total = MAX_LIMIT + 25
        appended = await store.append_batch([delta(run_id, i) for i in range(total)])
        assert [e.seq for e in appended] == list(range(1, total + 1))
        assert await store.last_seq(run_id) == total
        first = await store.list_after(run_id, None, MAX_LIMIT)
        assert len(first) == MAX_LIMIT, f"limit={MAX_LIMIT} returned {len(first)} envelopes"
        assert first == appended[:MAX_LIMIT]
        assert await store.list_after(run_id, MAX_LIMIT, MAX_LIMIT) == appended[MAX_LIMIT:]
        middle = await store.list_after(run_id, 17, 4_321)
        assert [e.seq for e in middle] == list(range(18, 18 + 4_321))
        for size in (1_000, 1_001, 4_096, MAX_LIMIT):
            assert await read_all(store, run_id, page=size) == appended, f"paging by {size}"

    @contract_test
    async def test_read_after_seq_at_and_past_the_end_is_empty(self, store: EventStore) -> None:
        run_id = RunId.new()
        appended = await store.append_batch([delta(run_id, i) for i in range(5)])
        assert await store.list_after(run_id, 0, 5) == appended
        assert await store.list_after(run_id, 4, 10) == appended[4:]
        for after in (5, 6, 1_000, MAX_SEQ):
            assert await store.list_after(run_id, after, 10) == [], f"after_seq={after}"
            assert await store.list_after(run_id, after, MAX_LIMIT) == [], f"after_seq={after}"
        assert await store.list_after(RunId.new(), 0, 1) == []
        assert await store.list_after(RunId.new(), MAX_SEQ, MAX_LIMIT) == []

    @contract_test
    async def test_round_trip_float_edges(self, store: EventStore) -> None:
        # Floats JSON layers get wrong: the classic 0.1 + 0.2, subnormals, -0.0 (equal
        # to 0.0 in Python, so the JSON is compared too), and the largest double.
        run_id = RunId.new()
        edges = list(_FLOAT_EDGES)
        events: list[AgentEvent] = [
            _call(run_id, {"floats": edges, "nested": [{"x": v} for v in edges]}),
            TextDelta(run_id=run_id, delta="f", value=-0.0, tiny=5e-324, sum=0.1 + 0.2),
        ]
        appended = await store.append_batch(events)
        stored = await read_all(store, run_id)
        assert stored == appended
        assert [encode_event(e.event) for e in stored] == [encode_event(e) for e in events]
        arguments: Any = stored[0].event.call.arguments  # type: ignore[union-attr]
        for got, want in zip(arguments["floats"], edges, strict=True):
            assert got == want, (got, want)
            assert math.copysign(1, got) == math.copysign(1, want), (got, want)

    @contract_test
    async def test_round_trip_nul_characters(self, store: EventStore) -> None:
        await _check_texts(store, ["\x00", "a\x00b", "\x00\x00end"])

    @contract_test
    async def test_round_trip_non_bmp_characters(self, store: EventStore) -> None:
        await _check_texts(store, ["\U0001d11e", "😀🚀", "a\U0010ffffz"])

    @contract_test
    async def test_round_trip_empty_strings(self, store: EventStore) -> None:
        run_id = RunId.new()
        events: list[AgentEvent] = [
            TextDelta(run_id=run_id, delta=""),
            ToolCallStarted(run_id=run_id, call_id="", tool_name=""),
            _call(run_id, {"": "", "list": [""], "obj": {"": {}}, "arr": []}),
            RunFailed(run_id=run_id, error=""),
        ]
        appended = await store.append_batch(events)
        stored = await read_all(store, run_id)
        assert stored == appended
        assert [e.event for e in stored] == events

    @contract_test
    async def test_round_trip_extra_fields_kept(self, store: EventStore) -> None:
        # A newer runtime adds fields to a known variant; they must survive a copy.
        run_id = RunId.new()
        event = TextDelta(
            run_id=run_id,
            delta="x",
            added_later=1,
            nested={"a": [1, "two", None, {"b": False}]},
            nothing=None,
        )
        appended = await store.append(event)
        (stored,) = await store.list_after(run_id)
        assert stored == appended
        assert stored.event.model_extra == event.model_extra
        assert encode_event(stored.event) == encode_event(event)

    @contract_test
    async def test_round_trip_timestamps_keep_nanoseconds(self, store: EventStore) -> None:
        # What the Rust runtime writes (chrono: 0, 3, 6 or 9 fraction digits), and both
        # ends of the range; each must come back with every digit.
        run_id = RunId.new()
        texts = [
            "2026-11-26T10:15:30.123456789Z",
            "2026-11-26T10:15:30.000000001Z",
            "2026-11-26T10:15:30.999999999Z",
            "2026-11-26T10:15:30.123456Z",
            "2026-11-26T10:15:30.200Z",
            "1970-01-01T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
        ]
        times = [parse_time(text) for text in texts]
        events = [TextDelta(run_id=run_id, delta=str(i), timestamp=t) for i, t in enumerate(times)]
        appended = await store.append_batch(events)
        stored = await read_all(store, run_id)
        assert stored == appended
        assert [e.event.timestamp for e in stored] == times
        stamps = [e.event.timestamp for e in stored]
        assert [format_time(s) for s in stamps if s is not None] == texts

    @contract_test
    async def test_round_trip_serde_bytes(self, store: EventStore) -> None:
        # Events as the Rust runtime's serde wrote them, every variant, times with 0
        # to 9 fraction digits: read back, each encodes to the very bytes serde wrote.
        run_id = RunId.new()
        lines = serde_event_lines(run_id, SessionId.new())
        appended = await store.append_batch([decode_event(line) for line in lines])
        stored = await read_all(store, run_id)
        assert stored == appended
        assert [encode_event(e.event) for e in stored] == lines

    @requires(Capability.IMPORT)
    @contract_test
    async def test_round_trip_imported_emitted_at_keeps_nanoseconds(
        self, store: EventStore
    ) -> None:
        # Envelopes copied from a store the Rust runtime wrote: emitted_at has nine
        # digits, and any year from 1 to 9999.
        run_id = RunId.new()
        texts = [
            "0001-01-01T00:00:00Z",
            "2026-11-26T10:15:30.123456789Z",
            "2026-11-26T10:15:30.123456780Z",
            "9999-12-31T23:59:59.999999999Z",
        ]
        envelopes = [
            new_envelope(
                event_id=EventId.new(),
                seq=seq,
                run_id=run_id,
                session_id=None,
                event=delta(run_id, seq),
                emitted_at=parse_time(text),
            )
            for seq, text in enumerate(texts, 1)
        ]
        await store.import_envelopes(envelopes)
        stored = await read_all(store, run_id)
        assert stored == envelopes
        assert [format_time(e.emitted_at) for e in stored] == texts

    @contract_test
    async def test_read_event_ids_need_not_be_time_ordered(self, store: EventStore) -> None:
        # Ids made out of order (newest first, or random UUIDs): the log is in seq
        # order, whatever order the ids sort in, and retries still find them.
        run_id = RunId.new()
        ids = sorted((EventId.new() for _ in range(4)), reverse=True)
        ids += [EventId.parse(uuid.uuid4()), EventId.parse(uuid.UUID(int=1))]
        appended = [
            await store.append(delta(run_id, i), event_id=event_id)
            for i, event_id in enumerate(ids)
        ]
        assert [e.seq for e in appended] == list(range(1, 7))
        assert await read_all(store, run_id) == appended
        assert await store.list_after(run_id, 2, 3) == appended[2:5]
        assert await store.append(delta(run_id, 4), event_id=ids[4]) == appended[4]
        assert await store.last_seq(run_id) == 6


_FLOAT_EDGES: tuple[float, ...] = (
    0.1 + 0.2,
    0.1,
    1e-320,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    -0.0,
    0.0,
    1e16,
    9007199254740993.0,
    123456789.12345679,
    -1.5,
)


def _call(run_id: RunId, arguments: Any) -> ToolCallCompleted:
    return ToolCallCompleted(run_id=run_id, call=ToolCall(id="c", name="t", arguments=arguments))


async def _check_texts(store: EventStore, texts: list[str]) -> None:
    """Each text as an event field, a JSON key and value, and an error, read back equal."""
    run_id = RunId.new()
    events: list[AgentEvent] = []
    for text in texts:
        events += [
            TextDelta(run_id=run_id, delta=text),
            _call(run_id, {text: text, "list": [text]}),
            RunFailed(run_id=run_id, error=text),
        ]
    appended = await store.append_batch(events)
    stored = await read_all(store, run_id)
    assert stored == appended
    assert [e.event for e in stored] == events
    assert [e.event.delta for e in stored[::3]] == texts  # type: ignore[union-attr]


async def _check_round_trip(store: EventStore, events: list[AgentEvent], *, batched: bool) -> None:
    run_id = RunId.parse(events[0].run_id)
    if batched:
        appended = await store.append_batch(events)
    else:
        appended = [await store.append(event) for event in events]
    note(f"appended {[e.event.event_type for e in appended]}")
    stored = await read_all(store, run_id)
    assert stored == appended
    assert [e.event for e in stored] == events
