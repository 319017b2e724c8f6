"""``delete_run`` (capability ``delete``): the run's log, session and ids are gone."""

from __future__ import annotations

__all__ = ["DeleteTests"]

from eventstore import Capability, EventId, EventStore, RunId, SessionId

from .._harness import contract_test, requires
from .._support import delta, read_all, started


@requires(Capability.DELETE)
class DeleteTests:
    """Deleting a run removes it entirely; the run id can then start again at 1."""

    @contract_test
    async def test_delete_run_returns_count_and_empties_the_log(self, store: EventStore) -> None:
        run_id = RunId.new()
        await store.append(started(run_id))
        await store.append_batch([delta(run_id, i) for i in range(4)])
        assert await store.delete_run(run_id) == 5
        assert await store.last_seq(run_id) == 0
        assert await store.list_after(run_id) == []

    @contract_test
    async def test_delete_run_restarts_at_seq_one(self, store: EventStore) -> None:
        run_id = RunId.new()
        await store.append_batch([delta(run_id, i) for i in range(3)])
        await store.delete_run(run_id)
        fresh = await store.append(delta(run_id, 0))
        assert fresh.seq == 1
        assert await read_all(store, run_id) == [fresh]

    @contract_test
    async def test_delete_run_forgets_idempotency_keys(self, store: EventStore) -> None:
        run_id, event_id = RunId.new(), EventId.new()
        old = await store.append(delta(run_id, 0), event_id=event_id)
        await store.append(delta(run_id, 1))
        await store.delete_run(run_id)
        replacement = delta(run_id, 2)
        new = await store.append(replacement, event_id=event_id)
        assert new.seq == 1
        assert new.event == replacement
        assert new != old

    @contract_test
    async def test_delete_run_forgets_the_session(self, store: EventStore) -> None:
        run_id = RunId.new()
        await store.append(started(run_id, SessionId.new()))
        await store.delete_run(run_id)
        assert (await store.append(delta(run_id, 0))).session_id is None

    @contract_test
    async def test_delete_unknown_run_returns_zero(self, store: EventStore) -> None:
        assert await store.delete_run(RunId.new()) == 0

    @contract_test
    async def test_delete_run_leaves_other_runs_alone(self, store: EventStore) -> None:
        run_id, other = RunId.new(), RunId.new()
        kept = await store.append_batch([delta(other, i) for i in range(3)])
        await store.append_batch([delta(run_id, i) for i in range(3)])
        await store.delete_run(run_id)
        assert await read_all(store, other) == kept

    @requires(Capability.LIST_RUNS)
    @contract_test
    async def test_delete_run_removes_it_from_list_runs(self, store: EventStore) -> None:
        session_id, run_id, other = SessionId.new(), RunId.new(), RunId.new()
        await store.append(started(run_id, session_id))
        await store.append(started(other, session_id))
        await store.delete_run(run_id)
        assert [i.run_id for i in await store.list_runs(session_id=session_id)] == [other]
