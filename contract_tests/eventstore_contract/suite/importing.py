"""``import_envelopes`` (capability ``import``): verbatim, resumable copies into a store."""

from __future__ import annotations

__all__ = ["ImportTests"]

import pytest

from eventstore import (
    MAX_LIMIT,
    Capability,
    ConcurrencyError,
    EventEnvelope,
    EventId,
    EventStore,
    IdempotencyConflictError,
    RunId,
    SessionId,
)
from eventstore.errors import RunDivergedError
from eventstore.memory import MemoryEventStore

from .._harness import contract_test, requires
from .._support import delta, read_all, started


async def _source_run(run_id: RunId, events: int) -> list[EventEnvelope]:
    # Envelopes as another store made them: their own ids, seqs, session and times.
    async with MemoryEventStore() as source:
        await source.append(delta(run_id, -1))
        await source.append(started(run_id, SessionId.new()))
        await source.append_batch([delta(run_id, i) for i in range(events - 2)])
        return await source.list_after(run_id, None, events)


@requires(Capability.IMPORT)
class ImportTests:
    """Copied envelopes keep ids, seqs, sessions and times; copies can be resumed."""

    @contract_test
    async def test_import_keeps_ids_seqs_sessions_and_times(self, store: EventStore) -> None:
        run_id = RunId.new()
        envelopes = await _source_run(run_id, 12)
        assert await store.import_envelopes(envelopes) == 12
        assert await read_all(store, run_id) == envelopes
        assert await store.last_seq(run_id) == 12

    @contract_test
    async def test_import_of_nothing_imports_nothing(self, store: EventStore) -> None:
        assert await store.import_envelopes([]) == 0

    @contract_test
    async def test_import_errors_name_the_run_and_the_seqs(self, store: EventStore) -> None:
        run_id = RunId.new()
        envelopes = await _source_run(run_id, 7)
        await store.import_envelopes(envelopes[:3])
        with pytest.raises(ConcurrencyError) as gap:  # seqs 6, 7 after 3: a hole
            await store.import_envelopes(envelopes[5:])
        assert type(gap.value) is ConcurrencyError
        assert (gap.value.run_id, gap.value.expected_seq, gap.value.actual_seq) == (run_id, 5, 3)
        other = await _source_run(run_id, 5)  # another log under the same run id
        with pytest.raises(RunDivergedError) as diverged:
            await store.import_envelopes(other[1:])
        error = diverged.value
        assert (error.run_id, error.seq, error.actual_seq) == (run_id, 2, 3)
        assert await read_all(store, run_id) == envelopes[:3]

    @contract_test
    async def test_import_takes_max_limit_envelopes_at_once(self, store: EventStore) -> None:
        run_id = RunId.new()
        async with MemoryEventStore() as source:
            await source.append_batch([delta(run_id, i) for i in range(MAX_LIMIT + 1)])
            envelopes = await read_all(source, run_id)
        with pytest.raises(ValueError, match="at most"):
            await store.import_envelopes(envelopes)
        assert await store.import_envelopes(envelopes[:MAX_LIMIT]) == MAX_LIMIT
        assert await read_all(store, run_id) == envelopes[:MAX_LIMIT]

    @contract_test
    async def test_import_resumes_without_duplicates(self, store: EventStore) -> None:
        run_id = RunId.new()
        envelopes = await _source_run(run_id, 10)
        assert await store.import_envelopes(envelopes[:4]) == 4
        assert await store.import_envelopes(envelopes) == 6
        assert await store.import_envelopes(envelopes) == 0
        assert await read_all(store, run_id) == envelopes

    @contract_test
    async def test_import_continues_the_run_for_new_appends(self, store: EventStore) -> None:
        run_id = RunId.new()
        envelopes = await _source_run(run_id, 5)
        await store.import_envelopes(envelopes)
        appended = await store.append(delta(run_id, 99))
        assert appended.seq == 6
        assert appended.session_id == envelopes[-1].session_id
        # Copied event ids still make retries idempotent.
        retried = await store.append(envelopes[2].event, event_id=envelopes[2].event_id)
        assert retried == envelopes[2]

    @contract_test
    async def test_import_refuses_an_event_id_already_stored(self, store: EventStore) -> None:
        # One id at two seqs would make a retry with it ambiguous (rule 4).
        run_id = RunId.new()
        envelopes = await _source_run(run_id, 3)
        await store.import_envelopes(envelopes)
        reused = envelopes[0].model_copy(update={"seq": 4})
        with pytest.raises(IdempotencyConflictError):
            await store.import_envelopes([reused])
        assert await store.last_seq(run_id) == 3
        assert await read_all(store, run_id) == envelopes

    @contract_test
    async def test_import_refuses_gaps_and_divergence(self, store: EventStore) -> None:
        run_id = RunId.new()
        envelopes = await _source_run(run_id, 6)
        with pytest.raises(ConcurrencyError):
            await store.import_envelopes(envelopes[2:])
        await store.append(delta(run_id, 0), event_id=EventId.new())
        with pytest.raises(ConcurrencyError):
            await store.import_envelopes(envelopes)
        assert await store.last_seq(run_id) == 1
