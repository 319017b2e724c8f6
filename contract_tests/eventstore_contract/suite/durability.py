"""Rule 7 (durability): what an append returned survives closing and reopening."""

from __future__ import annotations

__all__ = ["DurabilityTests"]

from eventstore import Capability, EventId, RunId, SessionId

from .._harness import StoreFactory, contract_test, requires
from .._support import delta, read_all, started


@requires(Capability.DURABLE)
class DurabilityTests:
    """A reopened store (a new one from ``store_factory``) has every returned append."""

    @contract_test
    async def test_durability_events_survive_reopen(self, store_factory: StoreFactory) -> None:
        run_id = RunId.new()
        async with store_factory() as store:
            appended = [await store.append(started(run_id))]
            appended += await store.append_batch([delta(run_id, i) for i in range(5)])
        async with store_factory() as reopened:
            assert await read_all(reopened, run_id) == appended
            assert await reopened.last_seq(run_id) == 6

    @contract_test
    async def test_durability_seq_and_session_continue_after_reopen(
        self, store_factory: StoreFactory
    ) -> None:
        run_id, session_id = RunId.new(), SessionId.new()
        async with store_factory() as store:
            await store.append(started(run_id, session_id))
        async with store_factory() as reopened:
            envelope = await reopened.append(delta(run_id, 1))
        assert envelope.seq == 2
        assert envelope.session_id == session_id

    @contract_test
    async def test_durability_idempotency_keys_survive_reopen(
        self, store_factory: StoreFactory
    ) -> None:
        run_id, event_id = RunId.new(), EventId.new()
        async with store_factory() as store:
            first = await store.append(delta(run_id, 0), event_id=event_id)
        async with store_factory() as reopened:
            assert await reopened.append(delta(run_id, 0), event_id=event_id) == first
            assert await reopened.last_seq(run_id) == 1

    @contract_test
    async def test_durability_two_stores_on_one_storage_share_the_log(
        self, store_factory: StoreFactory
    ) -> None:
        run_id = RunId.new()
        async with store_factory() as first, store_factory() as second:
            a = await first.append(delta(run_id, 0))
            b = await second.append(delta(run_id, 1))
            c = await first.append(delta(run_id, 2))
            assert [a.seq, b.seq, c.seq] == [1, 2, 3]
            assert await read_all(second, run_id) == [a, b, c]
