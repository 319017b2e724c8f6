"""Rule 4 (idempotency): a retried ``event_id`` returns the stored envelope.

A retry must send the same event: an id reused for a different event is a conflict
(``IdempotencyConflictError``), never a silent success, whatever ``expected_seq`` says.
"""

from __future__ import annotations

__all__ = ["IdempotencyTests"]

import asyncio

import pytest

from eventstore import EventId, EventStore, IdempotencyConflictError, RunId, TextDelta

from .._harness import contract_test
from .._support import delta, read_all


class IdempotencyTests:
    """Retries are safe: same id, same envelope, nothing stored twice."""

    @contract_test
    async def test_idempotency_retry_returns_stored_envelope(self, store: EventStore) -> None:
        run_id, event_id = RunId.new(), EventId.new()
        first = await store.append(delta(run_id, 0), event_id=event_id)
        await store.append(delta(run_id, 1))
        retried = await store.append(delta(run_id, 0), event_id=event_id)
        assert retried == first
        assert await store.last_seq(run_id) == 2
        assert [e.event_id for e in await read_all(store, run_id)].count(event_id) == 1

    @contract_test
    async def test_idempotency_is_checked_before_expected_seq(self, store: EventStore) -> None:
        run_id, event_id = RunId.new(), EventId.new()
        first = await store.append(delta(run_id, 0), event_id=event_id, expected_seq=0)
        # The caller timed out and retries with the same expected_seq: the append did
        # commit, so the retry must return it rather than report a conflict.
        retried = await store.append(delta(run_id, 0), event_id=event_id, expected_seq=0)
        assert retried == first
        assert await store.last_seq(run_id) == 1

    @contract_test
    async def test_idempotency_event_ids_are_scoped_to_their_run(self, store: EventStore) -> None:
        first_run, second_run, event_id = RunId.new(), RunId.new(), EventId.new()
        first = await store.append(delta(first_run, 0), event_id=event_id)
        second = await store.append(delta(second_run, 0), event_id=event_id)
        assert second.run_id == second_run
        assert second.seq == 1
        assert await store.list_after(first_run) == [first]
        assert await store.list_after(second_run) == [second]

    @contract_test
    async def test_idempotency_batch_retry_returns_stored_envelopes(
        self, store: EventStore
    ) -> None:
        run_id = RunId.new()
        ids = [EventId.new() for _ in range(4)]
        events = [delta(run_id, i) for i in range(4)]
        first = await store.append_batch(events, event_ids=ids)
        retried = await store.append_batch(events, event_ids=ids, expected_seq=0)
        assert retried == first
        assert await read_all(store, run_id) == first

    @contract_test
    async def test_idempotency_batch_repeating_an_event_id_is_refused(
        self, store: EventStore
    ) -> None:
        # Two events under one id would make every later retry with it ambiguous.
        run_id, event_id = RunId.new(), EventId.new()
        with pytest.raises(ValueError, match="twice"):
            await store.append_batch(
                [delta(run_id, 0), delta(run_id, 1)], event_ids=[event_id, event_id]
            )
        assert await store.last_seq(run_id) == 0

    @contract_test
    async def test_idempotency_partial_batch_retry_conflicts(self, store: EventStore) -> None:
        run_id = RunId.new()
        ids = [EventId.new() for _ in range(3)]
        first = await store.append_batch([delta(run_id, i) for i in range(3)], event_ids=ids)
        mixed = [ids[0], EventId.new()]
        with pytest.raises(IdempotencyConflictError):
            await store.append_batch([delta(run_id, 0), delta(run_id, 9)], event_ids=mixed)
        assert await read_all(store, run_id) == first

    @contract_test
    async def test_idempotency_concurrent_retries_store_once(self, store: EventStore) -> None:
        run_id, event_id = RunId.new(), EventId.new()
        event = delta(run_id, 0)
        results = await asyncio.gather(*(store.append(event, event_id=event_id) for _ in range(8)))
        stored = await read_all(store, run_id)
        assert len(stored) == 1, f"8 concurrent retries of one event id stored {len(stored)} events"
        assert results == stored * len(results)

    @contract_test
    async def test_idempotency_id_reused_for_another_event_conflicts(
        self, store: EventStore
    ) -> None:
        run_id, event_id = RunId.new(), EventId.new()
        first = await store.append(delta(run_id, 0), event_id=event_id)
        with pytest.raises(IdempotencyConflictError, match=str(event_id)):
            await store.append(delta(run_id, 1), event_id=event_id)
        # A stale expected_seq does not turn the conflict into a success or a
        # ConcurrencyError: the id is checked first, and its event differs.
        with pytest.raises(IdempotencyConflictError):
            await store.append(delta(run_id, 1), event_id=event_id, expected_seq=0)
        assert await read_all(store, run_id) == [first]

    @contract_test
    async def test_idempotency_id_reused_with_another_timestamp_conflicts(
        self, store: EventStore
    ) -> None:
        # Events compare field by field, the time included: a rebuilt event is another.
        run_id, event_id = RunId.new(), EventId.new()
        event = delta(run_id, 0)
        first = await store.append(event, event_id=event_id)
        later = TextDelta(run_id=run_id, delta=event.delta)
        assert later.timestamp != event.timestamp
        with pytest.raises(IdempotencyConflictError):
            await store.append(later, event_id=event_id)
        assert await read_all(store, run_id) == [first]

    @contract_test
    async def test_idempotency_batch_retry_with_a_changed_event_conflicts(
        self, store: EventStore
    ) -> None:
        run_id = RunId.new()
        ids = [EventId.new() for _ in range(3)]
        first = await store.append_batch([delta(run_id, i) for i in range(3)], event_ids=ids)
        changed = [delta(run_id, 0), delta(run_id, 7), delta(run_id, 2)]
        with pytest.raises(IdempotencyConflictError):
            await store.append_batch(changed, event_ids=ids)
        with pytest.raises(IdempotencyConflictError):
            await store.append_batch(changed, event_ids=ids, expected_seq=0)
        assert await read_all(store, run_id) == first
