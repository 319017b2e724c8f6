"""``list_runs`` (capability ``list_runs``): ordered by run id, pageable, by session.

The store may hold other tests' runs (``--eventstore-url`` shares one database), so
every check filters by a fresh session id or looks only at runs it created.
"""

from __future__ import annotations

__all__ = ["RunsTests"]

import uuid

import pytest
from whenever import Instant

from eventstore import (
    MAX_LIMIT,
    AgentEvent,
    Capability,
    EventId,
    EventStore,
    RunId,
    RunInfo,
    SessionId,
)
from eventstore.backend import new_envelope

from .._harness import contract_test, requires
from .._support import delta, started


async def _session_runs(store: EventStore, session_id: SessionId, count: int) -> list[RunId]:
    runs = [RunId.new() for _ in range(count)]
    for index, run_id in enumerate(runs):
        await store.append(started(run_id, session_id))
        await store.append_batch([delta(run_id, i) for i in range(index)])
    return sorted(runs)


@requires(Capability.LIST_RUNS)
class RunsTests:
    """Runs are listed by id with their session, last seq and times."""

    @contract_test
    async def test_list_runs_filters_by_session(self, store: EventStore) -> None:
        mine, other = SessionId.new(), SessionId.new()
        runs = await _session_runs(store, mine, 3)
        await _session_runs(store, other, 2)
        assert [info.run_id for info in await store.list_runs(session_id=mine)] == runs
        assert await store.list_runs(session_id=SessionId.new()) == []

    @contract_test
    async def test_list_runs_reports_last_seq_session_and_times(self, store: EventStore) -> None:
        session_id, run_id = SessionId.new(), RunId.new()
        first = await store.append(started(run_id, session_id))
        last = (await store.append_batch([delta(run_id, i) for i in range(4)]))[-1]
        (info,) = await store.list_runs(session_id=session_id)
        assert info == RunInfo(
            run_id=run_id,
            session_id=session_id,
            last_seq=5,
            first_emitted_at=first.emitted_at,
            last_emitted_at=last.emitted_at,
        )

    @contract_test
    async def test_list_runs_pages_with_after(self, store: EventStore) -> None:
        session_id = SessionId.new()
        runs = await _session_runs(store, session_id, 5)
        for size in (1, 2, 3, 5, 6):
            seen: list[RunId] = []
            after: RunId | None = None
            while page := await store.list_runs(session_id=session_id, limit=size, after=after):
                assert len(page) <= size
                seen.extend(info.run_id for info in page)
                after = page[-1].run_id
                if len(seen) > len(runs):
                    break
            assert seen == runs, f"paging by {size}"

    @contract_test
    async def test_list_runs_is_ordered_by_run_id(self, store: EventStore) -> None:
        await _session_runs(store, SessionId.new(), 3)
        listed = [info.run_id for info in await store.list_runs(limit=MAX_LIMIT)]
        assert listed == sorted(listed)
        assert len(set(listed)) == len(listed)

    @contract_test
    async def test_list_runs_includes_runs_without_session(self, store: EventStore) -> None:
        run_id = RunId.new()
        await store.append(delta(run_id, 0))
        before = RunId.parse(uuid.UUID(int=run_id.int - 1))
        page = await store.list_runs(after=before, limit=1)
        assert [(i.run_id, i.session_id, i.last_seq) for i in page] == [(run_id, None, 1)]

    @contract_test
    async def test_list_runs_follows_the_latest_run_started(self, store: EventStore) -> None:
        run_id, first, second = RunId.new(), SessionId.new(), SessionId.new()
        await store.append(started(run_id, first))
        await store.append(started(run_id, second))
        await store.append(delta(run_id, 0))
        listed = await store.list_runs(session_id=second)
        assert [(i.run_id, i.session_id, i.last_seq) for i in listed] == [(run_id, second, 3)]
        assert await store.list_runs(session_id=first) == []

    @requires(Capability.IMPORT)
    @contract_test
    async def test_list_runs_reports_the_times_of_the_first_and_last_envelope(
        self, store: EventStore
    ) -> None:
        # Imported envelopes keep their times, so these are known exactly (appends
        # made in quick succession could share a time).
        run_id, session_id = RunId.new(), SessionId.new()
        # Nine fraction digits: a backend keeping these times in a column keeps them all.
        start = Instant.from_utc(2021, 3, 4, 5, 6, 7, nanosecond=123_456_789)
        events: list[AgentEvent] = [started(run_id, session_id)]
        events += [delta(run_id, i) for i in range(4)]
        envelopes = [
            new_envelope(
                event_id=EventId.new(),
                seq=seq,
                run_id=run_id,
                session_id=session_id,
                event=event,
                emitted_at=start.add(hours=seq, nanoseconds=seq),
            )
            for seq, event in enumerate(events, 1)
        ]
        await store.import_envelopes(envelopes)
        (info,) = await store.list_runs(session_id=session_id)
        assert info == RunInfo(
            run_id=run_id,
            session_id=session_id,
            last_seq=5,
            first_emitted_at=envelopes[0].emitted_at,
            last_emitted_at=envelopes[-1].emitted_at,
        )

    @contract_test
    async def test_list_runs_rejects_invalid_limit(self, store: EventStore) -> None:
        for limit in (0, MAX_LIMIT + 1, True):
            with pytest.raises(ValueError, match="limit"):
                await store.list_runs(limit=limit)
