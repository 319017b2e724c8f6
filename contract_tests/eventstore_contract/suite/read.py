"""Rules 3 (pagination) and 6 (round trip): ``list_after`` and ``last_seq``."""

from __future__ import annotations

__all__ = ["ReadTests"]

import json

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from eventstore import MAX_LIMIT, AgentEvent, EventStore, RunId, SessionId, UnknownEvent
from eventstore.events import encode_event

from .. import strategies
from .._harness import ContractEnv, contract_test
from .._support import delta, golden_events, read_all


class ReadTests:
    """Reads are exact, ascending, and return what the appends returned."""

    @contract_test
    async def test_round_trip_list_after_equals_append_result(self, store: EventStore) -> None:
        run_id = RunId.new()
        appended = [await store.append(delta(run_id, 0))]
        appended += await store.append_batch([delta(run_id, i) for i in range(1, 4)])
        assert await store.list_after(run_id) == appended

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
