"""Rule 8 (corruption): damaged entries raise ``CorruptEventError``, never vanish.

These tests damage storage through the backend's :class:`eventstore.backend.Backdoor`
(capability ``backdoor``), which bypasses the store's own write path.
"""

from __future__ import annotations

__all__ = ["CorruptionTests"]

import pytest

from eventstore import Capability, CorruptEventError, EventEnvelope, EventId, EventStore, RunId
from eventstore.backend import Backdoor, envelope_json
from eventstore.events import encode_event

from .._harness import contract_test, requires
from .._support import delta, read_all, take


def _backdoor(store: EventStore) -> Backdoor:
    backdoor = store.backdoor()
    assert backdoor is not None, (
        f"{store.backend_name} declares capability 'backdoor' but backdoor() returned None"
    )
    return backdoor


def _damaged(
    envelope: EventEnvelope,
    *,
    seq: int | None = None,
    run_id: RunId | None = None,
    event_run_id: RunId | None = None,
) -> str:
    """The envelope's JSON with its seq, its run, or its event's run changed."""
    event = envelope.event
    if event_run_id is not None:
        event = event.model_copy(update={"run_id": event_run_id})
    return envelope_json(
        event_id=envelope.event_id,
        seq=envelope.seq if seq is None else seq,
        run_id=envelope.run_id if run_id is None else run_id,
        session_id=envelope.session_id,
        event_json=encode_event(event),
        emitted_at=envelope.emitted_at,
    )


@requires(Capability.BACKDOOR)
class CorruptionTests:
    """A corrupt entry is reported with its run and position."""

    @contract_test
    async def test_corruption_raises_corrupt_event_error_naming_run_and_position(
        self, store: EventStore
    ) -> None:
        run_id = RunId.new()
        await store.append_batch([delta(run_id, i) for i in range(5)])
        await _backdoor(store).corrupt(run_id, 3)
        with pytest.raises(CorruptEventError) as caught:
            await store.list_after(run_id, 0, 10)
        assert caught.value.run_id == run_id
        assert "3" in str(caught.value.position)
        assert str(run_id) in str(caught.value)

    @contract_test
    async def test_corruption_of_the_first_and_the_last_seq_is_reported(
        self, store: EventStore
    ) -> None:
        for seq in (1, 4):
            run_id = RunId.new()
            await store.append_batch([delta(run_id, i) for i in range(4)])
            await _backdoor(store).corrupt(run_id, seq)
            with pytest.raises(CorruptEventError) as caught:
                await store.list_after(run_id, 0, 10)
            assert caught.value.run_id == run_id
            assert str(seq) in str(caught.value.position)

    @contract_test
    async def test_corruption_is_never_skipped_when_paging(self, store: EventStore) -> None:
        run_id = RunId.new()
        await store.append_batch([delta(run_id, i) for i in range(5)])
        await _backdoor(store).corrupt(run_id, 2)
        assert [e.seq for e in await store.list_after(run_id, 0, 1)] == [1]
        with pytest.raises(CorruptEventError):
            await store.list_after(run_id, 1, 1)
        with pytest.raises(CorruptEventError):
            await read_all(store, run_id, page=2)

    @contract_test
    async def test_corruption_reaches_subscribers(self, store: EventStore) -> None:
        run_id = RunId.new()
        await store.append_batch([delta(run_id, i) for i in range(3)])
        await _backdoor(store).corrupt(run_id, 2)
        with pytest.raises(CorruptEventError):
            await take(store.subscribe(run_id), 3)

    @contract_test
    async def test_sequence_raw_storage_matches_the_api(self, store: EventStore) -> None:
        run_id = RunId.new()
        await store.append_batch([delta(run_id, i) for i in range(4)])
        await store.append(delta(run_id, 4))
        assert await _backdoor(store).raw_seqs(run_id) == [1, 2, 3, 4, 5]
        assert await _backdoor(store).raw_seqs(RunId.new()) == []

    @contract_test
    async def test_sequence_raw_storage_has_no_duplicates_after_retries(
        self, store: EventStore
    ) -> None:
        # A retry stores nothing (rule 4): not even a copy that reads would hide.
        run_id = RunId.new()
        ids = [EventId.new() for _ in range(3)]
        events = [delta(run_id, i) for i in range(3)]
        await store.append_batch(events, event_ids=ids)
        await store.append_batch([delta(run_id, i) for i in range(3)], event_ids=ids)
        await store.append(delta(run_id, 1), event_id=ids[1])
        await store.append(delta(run_id, 1), event_id=ids[1], expected_seq=0)
        await store.append(delta(run_id, 3))
        assert await _backdoor(store).raw_seqs(run_id) == [1, 2, 3, 4]

    @contract_test
    async def test_corruption_a_removed_entry_is_a_hole_not_a_shorter_page(
        self, store: EventStore
    ) -> None:
        # Rule 6: a page is exactly after_seq+1, after_seq+2, ...; a missing entry is
        # corruption, never a page that silently jumps from seq 2 to seq 4.
        run_id = RunId.new()
        stored = await store.append_batch([delta(run_id, i) for i in range(5)])
        await _backdoor(store).remove(run_id, 3)
        assert await store.list_after(run_id, 0, 2) == stored[:2]
        for after in (0, 2):
            with pytest.raises(CorruptEventError) as caught:
                await store.list_after(run_id, after, 10)
            assert caught.value.run_id == run_id
            assert "seq 3" in str(caught.value)

    @contract_test
    async def test_corruption_an_entry_holding_another_seq(self, store: EventStore) -> None:
        run_id = RunId.new()
        stored = await store.append_batch([delta(run_id, i) for i in range(5)])
        # The entry at seq 3 now holds a copy of seq 2: a duplicate in the page.
        await _backdoor(store).replace(run_id, 3, _damaged(stored[1]))
        with pytest.raises(CorruptEventError) as caught:
            await store.list_after(run_id, 0, 10)
        assert caught.value.run_id == run_id

    @contract_test
    async def test_corruption_an_envelope_naming_another_run(self, store: EventStore) -> None:
        run_id, other = RunId.new(), RunId.new()
        stored = await store.append_batch([delta(run_id, i) for i in range(3)])
        await _backdoor(store).replace(run_id, 2, _damaged(stored[1], run_id=other))
        with pytest.raises(CorruptEventError) as caught:
            await store.list_after(run_id, 0, 10)
        assert caught.value.run_id == run_id
        assert "2" in str(caught.value.position)

    @contract_test
    async def test_corruption_an_event_naming_another_run(self, store: EventStore) -> None:
        run_id, other = RunId.new(), RunId.new()
        stored = await store.append_batch([delta(run_id, i) for i in range(3)])
        await _backdoor(store).replace(run_id, 2, _damaged(stored[1], event_run_id=other))
        with pytest.raises(CorruptEventError) as caught:
            await store.list_after(run_id, 1, 10)
        assert caught.value.run_id == run_id
        assert "2" in str(caught.value.position)
