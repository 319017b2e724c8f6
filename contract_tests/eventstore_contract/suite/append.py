"""Rule 1 (sequence) and ``append_batch``: consecutive seqs, atomic batches."""

from __future__ import annotations

__all__ = ["AppendTests"]

import asyncio

import pytest
from whenever import Instant

from eventstore import (
    ConcurrencyError,
    EventId,
    EventStore,
    IdempotencyConflictError,
    RunId,
    TextDelta,
)
from eventstore.errors import EventTooLargeError

from .._harness import contract_test
from .._support import delta, read_all


class AppendTests:
    """Appends get seqs 1, 2, 3, ... per run; batches are atomic and consecutive."""

    @contract_test
    async def test_sequence_starts_at_one_and_is_consecutive(self, store: EventStore) -> None:
        run_id = RunId.new()
        seqs = [(await store.append(delta(run_id, i))).seq for i in range(12)]
        assert seqs == list(range(1, 13))
        assert await store.last_seq(run_id) == 12

    @contract_test
    async def test_sequence_is_per_run(self, store: EventStore) -> None:
        first, second = RunId.new(), RunId.new()
        for i in range(5):
            assert (await store.append(delta(first, i))).seq == i + 1
            assert (await store.append(delta(second, i))).seq == i + 1
        assert await store.last_seq(first) == await store.last_seq(second) == 5

    @contract_test
    async def test_sequence_refused_and_retried_appends_use_no_seq(self, store: EventStore) -> None:
        # An append that is refused, or answered from storage, must not use up a seq:
        # the next stored event still gets last + 1.
        run_id = RunId.new()
        first_id = EventId.new()
        await store.append(delta(run_id, 0), event_id=first_id)
        with pytest.raises(ConcurrencyError):
            await store.append(delta(run_id, 1), expected_seq=5)
        assert (await store.append(delta(run_id, 0), event_id=first_id)).seq == 1  # a retry
        with pytest.raises(IdempotencyConflictError):
            await store.append_batch(
                [delta(run_id, 2), delta(run_id, 3)], event_ids=[EventId.new(), first_id]
            )
        too_big = TextDelta(run_id=run_id, delta="x" * (store.max_event_bytes + 1))
        with pytest.raises(EventTooLargeError):
            await store.append(too_big)
        nxt = await store.append(delta(run_id, 4))
        assert nxt.seq == 2, f"the next append got seq {nxt.seq}, expected 2: a seq was used up"
        assert [e.seq for e in await read_all(store, run_id)] == [1, 2]

    @contract_test
    async def test_sequence_concurrent_appenders_get_consecutive_seqs(
        self, store: EventStore
    ) -> None:
        run_id = RunId.new()
        count = 40
        envelopes = await asyncio.gather(*(store.append(delta(run_id, i)) for i in range(count)))
        assert sorted(e.seq for e in envelopes) == list(range(1, count + 1))
        stored = await read_all(store, run_id)
        assert [e.seq for e in stored] == list(range(1, count + 1))
        assert sorted(e.event_id for e in stored) == sorted(e.event_id for e in envelopes)
        assert sorted(e.event.delta for e in stored) == sorted(str(i) for i in range(count))  # type: ignore[union-attr]

    @contract_test
    async def test_sequence_concurrent_appenders_on_many_runs(self, store: EventStore) -> None:
        runs = [RunId.new() for _ in range(4)]
        await asyncio.gather(*(store.append(delta(r, i)) for i in range(10) for r in runs))
        for run_id in runs:
            assert [e.seq for e in await read_all(store, run_id)] == list(range(1, 11))

    @contract_test
    async def test_append_returns_envelope_of_the_event(self, store: EventStore) -> None:
        run_id, event_id = RunId.new(), EventId.new()
        event = delta(run_id, 7)
        before = Instant.now()
        envelope = await store.append(event, event_id=event_id)
        assert envelope.event == event
        assert envelope.event_id == event_id
        assert envelope.run_id == run_id
        assert isinstance(envelope.emitted_at, Instant)
        # The commit time, not the event's own time (generous bounds: another clock).
        assert before.subtract(minutes=5) <= envelope.emitted_at <= Instant.now().add(minutes=5)

    @contract_test
    async def test_append_batch_assigns_consecutive_seqs(self, store: EventStore) -> None:
        run_id = RunId.new()
        await store.append(delta(run_id, 0))
        batch = await store.append_batch([delta(run_id, i) for i in range(1, 6)])
        assert [e.seq for e in batch] == [2, 3, 4, 5, 6]
        assert [e.event.delta for e in batch] == ["1", "2", "3", "4", "5"]  # type: ignore[union-attr]
        assert (await read_all(store, run_id))[1:] == batch

    @contract_test
    async def test_append_batch_empty_stores_nothing(self, store: EventStore) -> None:
        run_id = RunId.new()
        assert await store.append_batch([]) == []
        assert await store.last_seq(run_id) == 0

    @contract_test
    async def test_append_batch_is_atomic(self, store: EventStore) -> None:
        run_id = RunId.new()
        stored = await store.append(delta(run_id, 0))
        # One id of the batch is already stored, so the whole batch must be refused.
        ids = [EventId.new(), stored.event_id, EventId.new()]
        with pytest.raises(IdempotencyConflictError):
            await store.append_batch([delta(run_id, i) for i in range(3)], event_ids=ids)
        assert await read_all(store, run_id) == [stored]

    @contract_test
    async def test_append_batch_takes_events_of_one_run(self, store: EventStore) -> None:
        first, second = RunId.new(), RunId.new()
        with pytest.raises(ValueError, match="one run"):
            await store.append_batch([delta(first, 0), delta(second, 1)])
        assert await store.last_seq(first) == await store.last_seq(second) == 0

    @contract_test
    async def test_append_batch_concurrent_batches_do_not_interleave(
        self, store: EventStore
    ) -> None:
        run_id = RunId.new()
        batches = await asyncio.gather(
            *(store.append_batch([delta(run_id, b * 10 + i) for i in range(5)]) for b in range(6))
        )
        for batch in batches:
            seqs = [e.seq for e in batch]
            assert seqs == list(range(seqs[0], seqs[0] + 5)), "a batch's seqs must be consecutive"
        stored = await read_all(store, run_id)
        assert [e.seq for e in stored] == list(range(1, 31))
        assert sorted(e.event_id for e in stored) == sorted(e.event_id for b in batches for e in b)
