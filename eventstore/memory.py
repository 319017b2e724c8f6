"""The in-memory backend (``memory://``): the embedded default for tests and demos.

Everything lives in this process and is gone when the store closes. It obeys every
rule of the contract except durability and multi-process access, which it does not
declare. Appends run without awaiting between reading the last seq and storing, so
they are atomic with respect to every other task on the event loop.
"""

from __future__ import annotations

__all__ = ["MemoryEventStore", "MemoryOptions"]

from collections.abc import Sequence
from typing import Any, ClassVar

from ._capabilities import Capability
from ._envelope import EventEnvelope, ImportBatch, PendingEvent, RunInfo, decode_envelope, stamp
from ._errors import ConcurrencyError, CorruptEventError, IdempotencyConflictError
from ._ids import EventId, RunId, SessionId
from ._store import Backdoor, EventStore
from ._url import StoreOptions, StoreURL, parse_options


class MemoryOptions(StoreOptions):
    """Options of ``memory://`` stores (only the common ones)."""


class _Run:
    __slots__ = ("by_event_id", "corrupt", "envelopes", "session_id")

    def __init__(self) -> None:
        # envelopes[i].seq == i + 1, unless the backdoor removed or replaced one.
        self.envelopes: list[EventEnvelope] = []
        self.by_event_id: dict[EventId, int] = {}
        self.session_id: SessionId | None = None
        self.corrupt: set[int] = set()  # seqs damaged through the backdoor


class MemoryEventStore(EventStore):
    """An event store held in a dict of per-run lists."""

    backend_name: ClassVar[str] = "memory"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.LIVE_SUBSCRIBE,
            Capability.DELETE,
            Capability.LIST_RUNS,
            Capability.BACKDOOR,
            Capability.IMPORT,
        }
    )

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._runs: dict[RunId, _Run] = {}

    @classmethod
    def from_url(cls, url: str | StoreURL, **options: Any) -> MemoryEventStore:
        """Build a store from ``memory://`` (options in the query or as keywords)."""
        parsed = StoreURL.parse(url)
        opts = parse_options(MemoryOptions, parsed, options, backend=cls.backend_name)
        return cls(**opts.model_dump())

    async def _do_close(self) -> None:
        self._runs.clear()

    def backdoor(self) -> Backdoor:
        """Raw access for the conformance suite's corruption tests."""
        return _MemoryBackdoor(self)

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        run = self._runs.get(run_id)
        if run is None:
            run = self._runs[run_id] = _Run()
        by_event_id = run.by_event_id
        if by_event_id:
            stored = [by_event_id.get(p.event_id) for p in events]
            missing = stored.count(None)
            if missing == 0:
                return [run.envelopes[i] for i in stored]  # type: ignore[index]
            if missing != len(stored):
                raise IdempotencyConflictError.partial_batch(
                    run_id=run_id, stored=len(stored) - missing, total=len(stored)
                )
        envelopes = run.envelopes
        last = len(envelopes)
        if expected_seq is not None and expected_seq != last:
            raise ConcurrencyError(run_id=run_id, expected_seq=expected_seq, actual_seq=last)
        stamped = stamp(run_id, events, last_seq=last, session_id=run.session_id)
        run.session_id = stamped.session_after
        for index, pending in enumerate(events, last):
            by_event_id[pending.event_id] = index
        out = stamped.envelopes()
        envelopes.extend(out)
        return out

    async def _import(self, batch: ImportBatch) -> None:
        run_id, envelopes = batch.run_id, batch.envelopes
        run = self._runs.get(run_id)
        if run is None:
            run = self._runs[run_id] = _Run()
        last = len(run.envelopes)
        if last != batch.expected_seq:
            raise ConcurrencyError(run_id=run_id, expected_seq=batch.expected_seq, actual_seq=last)
        if not run.by_event_id.keys().isdisjoint(envelope.event_id for envelope in envelopes):
            raise IdempotencyConflictError.copied_id_taken(run_id=run_id)
        for envelope in envelopes:
            run.by_event_id[envelope.event_id] = envelope.seq - 1
        run.envelopes.extend(envelopes)
        run.session_id = batch.session_after

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        run = self._runs.get(run_id)
        if run is None:
            return []
        page = run.envelopes[after_seq : after_seq + limit]
        if run.corrupt:
            for envelope in page:
                if envelope.seq in run.corrupt:
                    raise CorruptEventError(
                        run_id=run_id, position=f"seq {envelope.seq}", reason="damaged by backdoor"
                    )
        return page

    async def _last_seq(self, run_id: RunId) -> int:
        run = self._runs.get(run_id)
        return 0 if run is None else len(run.envelopes)

    async def _list_runs(
        self, session_id: SessionId | None, limit: int, after: RunId | None
    ) -> list[RunInfo]:
        ids = sorted(
            run_id
            for run_id, run in self._runs.items()
            if run.envelopes
            and (after is None or run_id > after)
            and (session_id is None or run.session_id == session_id)
        )[:limit]
        infos = []
        for run_id in ids:
            run = self._runs[run_id]
            infos.append(
                RunInfo(
                    run_id=run_id,
                    session_id=run.session_id,
                    last_seq=len(run.envelopes),
                    first_emitted_at=run.envelopes[0].emitted_at,
                    last_emitted_at=run.envelopes[-1].emitted_at,
                )
            )
        return infos

    def _poll_interval(self, idle_rounds: int) -> float | None:
        # Nothing but this object reaches its dict: every append wakes subscribers.
        return None

    async def _delete_run(self, run_id: RunId) -> int:
        run = self._runs.pop(run_id, None)
        return 0 if run is None else len(run.envelopes)


class _MemoryBackdoor:
    def __init__(self, store: MemoryEventStore) -> None:
        self._store = store

    async def corrupt(self, run_id: RunId, seq: int) -> None:
        run = self._store._runs[run_id]
        if not 1 <= seq <= len(run.envelopes):
            raise KeyError(f"run {run_id} has no seq {seq}")
        run.corrupt.add(seq)

    async def raw_seqs(self, run_id: RunId) -> list[int]:
        run = self._store._runs.get(run_id)
        return [] if run is None else [e.seq for e in run.envelopes]

    async def remove(self, run_id: RunId, seq: int) -> None:
        run = self._store._runs[run_id]
        index = self._index(run, run_id, seq)
        del run.envelopes[index]

    async def replace(self, run_id: RunId, seq: int, envelope_json: str) -> None:
        run = self._store._runs[run_id]
        index = self._index(run, run_id, seq)
        run.envelopes[index] = decode_envelope(envelope_json)

    @staticmethod
    def _index(run: _Run, run_id: RunId, seq: int) -> int:
        for index, envelope in enumerate(run.envelopes):
            if envelope.seq == seq:
                return index
        raise KeyError(f"run {run_id} has no seq {seq}")
