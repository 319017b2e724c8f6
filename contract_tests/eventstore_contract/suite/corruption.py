"""Rule 8 (corruption): damaged entries raise ``CorruptEventError``, never vanish.

These tests damage storage through the backend's :class:`eventstore.backend.Backdoor`
(capability ``backdoor``), which bypasses the store's own write path.
"""

from __future__ import annotations

__all__ = ["CorruptionTests"]

import pytest

from eventstore import Capability, CorruptEventError, EventStore, RunId
from eventstore.backend import Backdoor

from .._harness import contract_test, requires
from .._support import delta, read_all, take


def _backdoor(store: EventStore) -> Backdoor:
    backdoor = store.backdoor()
    assert backdoor is not None, (
        f"{store.backend_name} declares capability 'backdoor' but backdoor() returned None"
    )
    return backdoor


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
