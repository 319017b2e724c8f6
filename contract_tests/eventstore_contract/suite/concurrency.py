"""Rule 5 (optimistic concurrency): ``expected_seq`` commits only on a match."""

from __future__ import annotations

__all__ = ["ConcurrencyTests"]

import asyncio

import pytest

from eventstore import ConcurrencyError, EventStore, RunId

from .._harness import contract_test
from .._support import delta, read_all


class ConcurrencyTests:
    """A stale ``expected_seq`` raises ``ConcurrencyError`` and writes nothing."""

    @contract_test
    async def test_concurrency_expected_seq_match_commits(self, store: EventStore) -> None:
        run_id = RunId.new()
        assert (await store.append(delta(run_id, 0), expected_seq=0)).seq == 1
        assert (await store.append(delta(run_id, 1), expected_seq=1)).seq == 2
        batch = await store.append_batch([delta(run_id, 2), delta(run_id, 3)], expected_seq=2)
        assert [e.seq for e in batch] == [3, 4]

    @contract_test
    async def test_concurrency_expected_seq_mismatch_raises(self, store: EventStore) -> None:
        run_id = RunId.new()
        before = await store.append_batch([delta(run_id, i) for i in range(3)])
        for stale in (0, 2, 4, 100):
            with pytest.raises(ConcurrencyError) as caught:
                await store.append(delta(run_id, 99), expected_seq=stale)
            assert caught.value.run_id == run_id
            assert caught.value.expected_seq == stale
            assert caught.value.actual_seq == 3
        assert await read_all(store, run_id) == before

    @contract_test
    async def test_concurrency_expected_seq_on_new_run(self, store: EventStore) -> None:
        run_id = RunId.new()
        with pytest.raises(ConcurrencyError) as caught:
            await store.append(delta(run_id, 0), expected_seq=1)
        assert caught.value.actual_seq == 0
        assert await store.last_seq(run_id) == 0

    @contract_test
    async def test_concurrency_batch_mismatch_writes_nothing(self, store: EventStore) -> None:
        run_id = RunId.new()
        before = [await store.append(delta(run_id, 0))]
        with pytest.raises(ConcurrencyError) as caught:
            await store.append_batch([delta(run_id, i) for i in range(1, 5)], expected_seq=0)
        assert caught.value.actual_seq == 1
        assert await read_all(store, run_id) == before

    @contract_test
    async def test_concurrency_only_one_racing_writer_wins(self, store: EventStore) -> None:
        run_id = RunId.new()
        await store.append(delta(run_id, 0))
        results = await asyncio.gather(
            *(store.append(delta(run_id, i), expected_seq=1) for i in range(1, 9)),
            return_exceptions=True,
        )
        winners = [r for r in results if not isinstance(r, BaseException)]
        losers = [r for r in results if isinstance(r, BaseException)]
        assert len(winners) == 1, f"exactly one writer may commit at seq 2, got {len(winners)}"
        assert all(isinstance(e, ConcurrencyError) and e.actual_seq >= 2 for e in losers), losers
        assert [e.seq for e in await read_all(store, run_id)] == [1, 2]
