"""Rule 2 (session): ``RunStarted`` stamps its session on every later envelope."""

from __future__ import annotations

__all__ = ["SessionTests"]

from eventstore import EventStore, RunId, SessionId

from .._harness import contract_test
from .._support import delta, read_all, started


class SessionTests:
    """Envelopes carry the session of the run's latest ``RunStarted``, or ``None``."""

    @contract_test
    async def test_session_is_none_before_run_started(self, store: EventStore) -> None:
        run_id = RunId.new()
        envelopes = [await store.append(delta(run_id, i)) for i in range(3)]
        assert [e.session_id for e in envelopes] == [None, None, None]
        assert [e.session_id for e in await read_all(store, run_id)] == [None, None, None]

    @contract_test
    async def test_session_run_started_stamps_later_envelopes(self, store: EventStore) -> None:
        run_id, session_id = RunId.new(), SessionId.new()
        before = await store.append(delta(run_id, 0))
        start = await store.append(started(run_id, session_id))
        after = [await store.append(delta(run_id, i)) for i in range(1, 4)]
        assert before.session_id is None
        assert start.session_id == session_id
        assert [e.session_id for e in after] == [session_id] * 3
        stored = await read_all(store, run_id)
        assert [e.session_id for e in stored] == [None, session_id, *[session_id] * 3]

    @contract_test
    async def test_session_is_stamped_inside_a_batch(self, store: EventStore) -> None:
        run_id, session_id = RunId.new(), SessionId.new()
        batch = await store.append_batch(
            [delta(run_id, 0), started(run_id, session_id), delta(run_id, 1), delta(run_id, 2)]
        )
        assert [e.session_id for e in batch] == [None, session_id, session_id, session_id]
        later = await store.append(delta(run_id, 3))
        assert later.session_id == session_id
        assert await read_all(store, run_id) == [*batch, later]

    @contract_test
    async def test_session_latest_run_started_wins(self, store: EventStore) -> None:
        run_id, first, second = RunId.new(), SessionId.new(), SessionId.new()
        await store.append(started(run_id, first))
        await store.append(started(run_id, second))
        assert (await store.append(delta(run_id, 0))).session_id == second

    @contract_test
    async def test_session_is_per_run(self, store: EventStore) -> None:
        run_id, other = RunId.new(), RunId.new()
        await store.append(started(run_id))
        assert (await store.append(delta(other, 0))).session_id is None

    @contract_test
    async def test_session_changes_within_a_run_are_read_back(self, store: EventStore) -> None:
        # Two RunStarted in one run (a resumed agent): each envelope carries the
        # session of the latest RunStarted before it, on append and on read.
        run_id, first, second = RunId.new(), SessionId.new(), SessionId.new()
        appended = [await store.append(delta(run_id, 0))]
        appended += await store.append_batch(
            [started(run_id, first), delta(run_id, 1), started(run_id, second)]
        )
        appended.append(await store.append(delta(run_id, 2)))
        expected = [None, first, first, second, second]
        assert [e.session_id for e in appended] == expected
        stored = await read_all(store, run_id)
        assert stored == appended
        assert [e.session_id for e in stored] == expected
