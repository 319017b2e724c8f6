"""A ``RuleBasedStateMachine`` that drives a store and a plain model side by side.

:class:`ReferenceModel` is a few dicts and lists that say what the contract
requires (it shares no code with any backend); :class:`StoreStateMachine` applies
each generated step to both and compares. Hypothesis rules are synchronous, so each
machine instance owns an :class:`asyncio.Runner` and runs every store call on it.

Run it from a test with :func:`run_store_machine`::

    run_store_machine(lambda: open_store(url), settings=PROFILES["ci"])
"""

from __future__ import annotations

__all__ = ["ModelRun", "ReferenceModel", "StoreStateMachine", "run_store_machine"]

import asyncio
import uuid
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from hypothesis import note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from eventstore import (
    MAX_LIMIT,
    AgentEvent,
    Capability,
    ConcurrencyError,
    EventEnvelope,
    EventId,
    EventStore,
    RunId,
    RunInfo,
    RunStarted,
    SessionId,
    TextDelta,
)

from . import strategies
from ._harness import DEFAULT_TIMEOUT, StoreFactory, _Watchdog, hang_message
from ._support import hang_notes, take

_T = TypeVar("_T")
#: Most runs one machine keeps; a few runs already exercise isolation between runs.
MAX_RUNS = 3


@dataclass
class ModelRun:
    """What the contract says one run's log holds."""

    envelopes: list[EventEnvelope] = field(default_factory=list)
    session_id: SessionId | None = None

    @property
    def last_seq(self) -> int:
        """The run's last seq (its length: seqs are 1..n without gaps)."""
        return len(self.envelopes)

    def find(self, event_id: EventId) -> EventEnvelope | None:
        """The stored envelope with ``event_id``, if any."""
        return next((e for e in self.envelopes if e.event_id == event_id), None)


class ReferenceModel:
    """The contract as plain data: per run, the envelopes in seq order."""

    def __init__(self) -> None:
        self.runs: dict[RunId, ModelRun] = {}

    def expected_sessions(
        self, run_id: RunId, events: Iterable[AgentEvent]
    ) -> list[SessionId | None]:
        """The session ids rule 2 gives ``events`` appended now to ``run_id``."""
        current = self.runs[run_id].session_id
        out: list[SessionId | None] = []
        for event in events:
            if isinstance(event, RunStarted):
                current = event.session_id
            out.append(current)
        return out

    def check_and_record(
        self,
        run_id: RunId,
        events: Sequence[AgentEvent],
        event_ids: Sequence[EventId],
        returned: Sequence[EventEnvelope],
    ) -> None:
        """Check a fresh append's envelopes against the rules, then record them."""
        run = self.runs[run_id]
        sessions = self.expected_sessions(run_id, events)
        assert len(returned) == len(events)
        for offset, envelope in enumerate(returned):
            assert envelope.seq == run.last_seq + offset + 1, "seqs continue without a gap"
            assert envelope.run_id == run_id
            assert envelope.event_id == event_ids[offset]
            assert envelope.event == events[offset]
            assert envelope.session_id == sessions[offset], "session stamped by RunStarted"
        run.envelopes.extend(returned)
        if sessions:
            run.session_id = sessions[-1]

    def run_info(self, run_id: RunId) -> RunInfo | None:
        """What ``list_runs`` reports for the run (``None``: not listed, it has no events)."""
        run = self.runs[run_id]
        if not run.envelopes:
            return None
        return RunInfo(
            run_id=run_id,
            session_id=run.session_id,
            last_seq=run.last_seq,
            first_emitted_at=run.envelopes[0].emitted_at,
            last_emitted_at=run.envelopes[-1].emitted_at,
        )

    def session_runs(self, session_id: SessionId) -> list[RunInfo]:
        """What ``list_runs(session_id=...)`` reports of the model's runs, by run id."""
        infos = (self.run_info(run_id) for run_id in sorted(self.runs))
        return [i for i in infos if i is not None and i.session_id == session_id]

    def delete(self, run_id: RunId) -> int:
        """Forget a run's log, session and ids; return how many events it had."""
        count = self.runs[run_id].last_seq
        self.runs[run_id] = ModelRun()
        return count


class StoreStateMachine(RuleBasedStateMachine):
    """Drives a store through appends, retries, conflicts, reads, reopen and delete."""

    def __init__(
        self,
        store_factory: StoreFactory,
        *,
        capabilities: Iterable[Capability] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__()
        self.factory = store_factory
        self.timeout = timeout
        self.runner = asyncio.Runner()
        self.store: EventStore = self.run(store_factory().open())
        self.capabilities = frozenset(
            self.store.capabilities if capabilities is None else capabilities
        )
        self.model = ReferenceModel()
        self._strategies: dict[RunId, st.SearchStrategy[AgentEvent]] = {}

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on this machine's loop, under the time guard and its watchdog.

        The watchdog ends the run, naming the machine, if a step keeps the loop from
        turning (so that the asyncio-level guard cannot fire), as for every other test.
        """

        async def guarded() -> _T:
            with hang_notes() as notes:
                try:
                    async with asyncio.timeout(self.timeout):
                        return await coro
                except TimeoutError as exc:
                    raise TimeoutError(hang_message(self.timeout, notes)) from exc

        with _Watchdog(self.timeout, self.runner.get_loop()):
            return self.runner.run(guarded())

    def teardown(self) -> None:
        """Close the store and the machine's event loop."""
        try:
            self.run(self.store.close())
        finally:
            self.runner.close()

    # -- helpers -----------------------------------------------------------------

    def _events(self, run_id: RunId) -> st.SearchStrategy[AgentEvent]:
        # Building the one_of of every variant costs more than drawing from it.
        found = self._strategies.get(run_id)
        if found is None:
            found = self._strategies[run_id] = strategies.events(run_id)
        return found

    def _pick_run(self, data: st.DataObject) -> RunId:
        return data.draw(st.sampled_from(sorted(self.model.runs)), label="run")

    def _has_events(self) -> bool:
        return any(run.envelopes for run in self.model.runs.values())

    def _new_run(self) -> None:
        run_id = RunId.new()
        self.model.runs[run_id] = ModelRun()
        note(f"new run {run_id}")

    # -- rules -------------------------------------------------------------------

    @initialize()
    def first_run(self) -> None:
        """Every machine starts with one (fresh, unique) run."""
        self._new_run()

    @precondition(lambda self: len(self.model.runs) < MAX_RUNS)
    @rule()
    def add_run(self) -> None:
        """Start using another run id."""
        self._new_run()

    @rule(data=st.data(), with_expected_seq=st.booleans())
    def append(self, data: st.DataObject, with_expected_seq: bool) -> None:
        """Append one event of any variant (optionally with the right expected_seq)."""
        run_id = self._pick_run(data)
        event = data.draw(self._events(run_id), label="event")
        event_id = EventId.new()
        expected = self.model.runs[run_id].last_seq if with_expected_seq else None
        note(f"append {event.event_type} to {run_id} expected_seq={expected}")
        envelope = self.run(self.store.append(event, event_id=event_id, expected_seq=expected))
        self.model.check_and_record(run_id, [event], [event_id], [envelope])

    @rule(data=st.data())
    def append_batch(self, data: st.DataObject) -> None:
        """Append a batch of one to five events."""
        run_id = self._pick_run(data)
        events = data.draw(st.lists(self._events(run_id), min_size=1, max_size=5))
        ids = [EventId.new() for _ in events]
        note(f"append_batch of {len(events)} to {run_id}")
        envelopes = self.run(self.store.append_batch(events, event_ids=ids))
        self.model.check_and_record(run_id, events, ids, envelopes)

    @precondition(_has_events)
    @rule(data=st.data())
    def retry_append(self, data: st.DataObject) -> None:
        """Re-append a stored event with its event id, maybe with a stale expected_seq."""
        run_id = data.draw(
            st.sampled_from(sorted(r for r, run in self.model.runs.items() if run.envelopes))
        )
        run = self.model.runs[run_id]
        stored = data.draw(st.sampled_from(run.envelopes), label="retried envelope")
        expected = data.draw(st.none() | st.integers(0, run.last_seq), label="expected_seq")
        note(f"retry seq {stored.seq} of {run_id} expected_seq={expected}")
        again = self.run(
            self.store.append(stored.event, event_id=stored.event_id, expected_seq=expected)
        )
        assert again == stored, "a retry returns the stored envelope"

    @rule(data=st.data())
    def conflicting_append(self, data: st.DataObject) -> None:
        """Append with a wrong expected_seq: ConcurrencyError, nothing written."""
        run_id = self._pick_run(data)
        last = self.model.runs[run_id].last_seq
        stale = data.draw(st.integers(0, last + 3).filter(lambda n: n != last), label="stale")
        note(f"append to {run_id} with stale expected_seq={stale} (last is {last})")
        with pytest.raises(ConcurrencyError) as caught:
            self.run(self.store.append(_filler_event(run_id), expected_seq=stale))
        assert caught.value.actual_seq == last
        assert caught.value.expected_seq == stale

    @rule(data=st.data(), appenders=st.integers(2, 8))
    def concurrent_appends(self, data: st.DataObject, appenders: int) -> None:
        """Append from several tasks at once (asyncio.gather)."""
        run_id = self._pick_run(data)
        events = data.draw(
            st.lists(strategies.non_terminal_events(run_id), min_size=appenders, max_size=appenders)
        )
        ids = [EventId.new() for _ in events]
        note(f"{appenders} concurrent appends to {run_id}")

        async def together() -> list[EventEnvelope]:
            return list(
                await asyncio.gather(
                    *(self.store.append(e, event_id=i) for e, i in zip(events, ids, strict=True))
                )
            )

        returned = self.run(together())
        last = self.model.runs[run_id].last_seq
        assert sorted(e.seq for e in returned) == list(range(last + 1, last + appenders + 1))
        in_commit_order = sorted(zip(returned, events, ids, strict=True), key=lambda t: t[0].seq)
        self.model.check_and_record(
            run_id,
            [event for _, event, _ in in_commit_order],
            [event_id for _, _, event_id in in_commit_order],
            [envelope for envelope, _, _ in in_commit_order],
        )

    @rule(data=st.data(), size=st.integers(1, 12) | st.sampled_from([100, MAX_LIMIT]))
    def read_in_pages(self, data: st.DataObject, size: int) -> None:
        """Page through a run with the last seq seen: every envelope once, in order."""
        run_id = self._pick_run(data)
        expected = self.model.runs[run_id].envelopes
        note(f"read {run_id} in pages of {size}")

        async def pages() -> list[EventEnvelope]:
            seen: list[EventEnvelope] = []
            after = None
            for _ in range(len(expected) // size + 2):
                page = await self.store.list_after(run_id, after, size)
                assert len(page) == min(size, len(expected) - len(seen)), "pages are exact"
                if not page:
                    break
                seen.extend(page)
                after = page[-1].seq
            return seen

        assert self.run(pages()) == expected

    @rule(data=st.data())
    def read_one_page(self, data: st.DataObject) -> None:
        """Read one page from any position."""
        run_id = self._pick_run(data)
        expected = self.model.runs[run_id].envelopes
        after = data.draw(st.integers(0, len(expected) + 2), label="after_seq")
        limit = data.draw(st.integers(1, len(expected) + 3), label="limit")
        page = self.run(self.store.list_after(run_id, after, limit))
        assert page == expected[after : after + limit]

    @rule(data=st.data())
    def subscribe_catch_up(self, data: st.DataObject) -> None:
        """Subscribe from any seq and read up to the end of the run."""
        run_id = self._pick_run(data)
        expected = self.model.runs[run_id].envelopes
        after = data.draw(st.integers(0, len(expected)), label="subscribe after_seq")
        note(f"subscribe to {run_id} after {after}")

        async def catch_up() -> list[EventEnvelope]:
            stream = self.store.subscribe(run_id, after)
            try:
                received = await take(stream, len(expected) - after)
            finally:
                await stream.aclose()  # type: ignore[attr-defined]
            return received

        assert self.run(catch_up()) == expected[after:]

    @precondition(lambda self: Capability.DURABLE in self.capabilities)
    @rule()
    def reopen(self) -> None:
        """Close the store and open a new one on the same storage."""
        note("reopen")
        self.run(self.store.close())
        self.store = self.run(self.factory().open())

    @precondition(lambda self: Capability.DELETE in self.capabilities)
    @rule(data=st.data())
    def delete_run(self, data: st.DataObject) -> None:
        """Delete a run: its count is returned and it starts again at seq 1."""
        run_id = self._pick_run(data)
        note(f"delete {run_id}")
        assert self.run(self.store.delete_run(run_id)) == self.model.delete(run_id)

    @invariant()
    def last_seqs_match(self) -> None:
        """Every run's last seq is the model's."""
        for run_id, run in self.model.runs.items():
            assert self.run(self.store.last_seq(run_id)) == run.last_seq, f"last_seq of {run_id}"

    @invariant()
    def whole_logs_match(self) -> None:
        """Every run's whole log, its ``list_runs`` entry and its raw seqs are the model's.

        One read per run (the machine's runs are far shorter than ``MAX_LIMIT``), one
        ``list_runs`` call per run and per session (capability ``list_runs``), one
        raw read per run (capability ``backdoor``): cheap enough for every step.
        """
        self.run(self._check_whole_logs())

    async def _check_whole_logs(self) -> None:
        store, model = self.store, self.model
        for run_id, run in model.runs.items():
            stored = await store.list_after(run_id, None, MAX_LIMIT)
            assert stored == run.envelopes, f"the log of {run_id} differs from the model's"
        if Capability.LIST_RUNS in self.capabilities:
            for run_id in model.runs:
                before = RunId.parse(uuid.UUID(int=run_id.int - 1))
                listed = await store.list_runs(after=before, limit=1)
                expected = model.run_info(run_id)
                if expected is None:
                    assert not listed or listed[0].run_id != run_id, f"{run_id} is listed"
                else:
                    assert listed == [expected], f"list_runs entry of {run_id}"
            for session_id in {r.session_id for r in model.runs.values() if r.envelopes}:
                if session_id is None:
                    continue
                listed = await store.list_runs(session_id=session_id, limit=MAX_LIMIT)
                # Drawn session ids may repeat across examples (and stored runs of
                # earlier ones stay): only this machine's runs are compared.
                mine = [info for info in listed if info.run_id in model.runs]
                assert mine == model.session_runs(session_id), f"runs of session {session_id}"
        backdoor = store.backdoor() if Capability.BACKDOOR in self.capabilities else None
        if backdoor is not None:
            for run_id, run in model.runs.items():
                raw = await backdoor.raw_seqs(run_id)
                assert raw == list(range(1, run.last_seq + 1)), f"raw seqs of {run_id}"


def _filler_event(run_id: RunId) -> AgentEvent:
    """A fixed event for steps whose event content does not matter."""
    return TextDelta(run_id=run_id, delta="conflict")


def run_store_machine(
    store_factory: StoreFactory,
    *,
    settings: settings,
    capabilities: Iterable[Capability] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Run :class:`StoreStateMachine` on stores from ``store_factory``."""

    class BoundMachine(StoreStateMachine):
        def __init__(self) -> None:
            super().__init__(store_factory, capabilities=capabilities, timeout=timeout)

    run_state_machine_as_test(BoundMachine, settings=settings)
