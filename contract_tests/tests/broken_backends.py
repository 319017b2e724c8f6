"""Deliberately broken backends, one bug each, to prove the suite bites.

Most are small subclasses of the in-memory backend; a few share their storage
between store objects (:class:`SharedMemoryStore`, declaring ``durable``), a few are
SQLite stores (``eventstore_sqlalchemy``), and a few are reached through a URL (a
scheme registered here) because the rule they break is about URLs. ``BROKEN`` maps
a name to the class and to the suite test that catches it: each breaks exactly one
sentence of the contract, listed in ``docs/contract-rules.md``.

The store base class guards what every backend returns (a page must be
``after_seq+1..`` of the run, a retried id must hold the same event, a page is at
most ``limit`` long), so a bug it already turns into an error is caught where a test
expecting data gets that error instead.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

from eventstore import (
    AgentEvent,
    Capability,
    ConcurrencyError,
    CorruptEventError,
    EventEnvelope,
    EventId,
    EventStore,
    InvalidArgumentError,
    RunId,
    RunInfo,
    SessionId,
    TextDelta,
    UnknownEvent,
    open_store,
)
from eventstore.backend import (
    BackendSpec,
    ImportBatch,
    PendingEvent,
    RunNotifier,
    StoreURL,
    decode_envelope,
    default_registry,
    encode_envelope,
    hookimpl,
    new_envelope,
    parse_options,
    poll_delay,
    utc_now,
)
from eventstore.errors import BackendError, EventStoreError, EventTooLargeError
from eventstore.events import format_time, parse_time
from eventstore.memory import MemoryEventStore, MemoryOptions

StoreFactory = Callable[[], EventStore]


def _replace(envelope: EventEnvelope, **changes: Any) -> EventEnvelope:
    # Not model_copy: envelopes built by new_envelope have a frozen fields-set that
    # pydantic's model_copy cannot update.
    fields = {name: getattr(envelope, name) for name in EventEnvelope.model_fields}
    return new_envelope(**{**fields, **changes})


def _envelope_dict(envelope: EventEnvelope) -> dict[str, Any]:
    return dict(json.loads(encode_envelope(envelope)))


def _walk(value: Any, leaf: Callable[[Any], Any]) -> Any:
    if isinstance(value, dict):
        return {leaf(k) if isinstance(k, str) else k: _walk(v, leaf) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, leaf) for v in value]
    return leaf(value)


# -- rule 1: sequence ---------------------------------------------------------------


class RacySeqStore(MemoryEventStore):
    """Numbers a batch from a last seq read before yielding: duplicates under concurrency."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        run = self._runs.get(run_id)
        stale = 0 if run is None else len(run.envelopes)
        retry = run is not None and events[0].event_id in run.by_event_id
        await asyncio.sleep(0)  # another appender runs here
        out = await super()._append(run_id, events, expected_seq)
        if retry or out[0].seq == stale + 1:
            return out
        run = self._runs[run_id]
        numbered = [_replace(e, seq=stale + i + 1) for i, e in enumerate(out)]
        run.envelopes[-len(out) :] = numbered
        return numbered


class SeqsSharedBetweenRunsStore(MemoryEventStore):
    """Takes seqs from one counter for the whole store, not one per run."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._counter = 0

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        out = await super()._append(run_id, events, expected_seq)
        if out and out[0].event is not events[0].event:
            return out  # a retry
        run = self._runs[run_id]
        numbered = [_replace(e, seq=self._counter + i + 1) for i, e in enumerate(out)]
        self._counter += len(out)
        run.envelopes[-len(out) :] = numbered
        return numbered


class RefusedAppendUsesSeqStore(MemoryEventStore):
    """An append refused with ``ConcurrencyError`` still uses up a seq (a gap follows)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._burnt: dict[RunId, int] = {}

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        try:
            out = await super()._append(run_id, events, expected_seq)
        except ConcurrencyError:
            self._burnt[run_id] = self._burnt.get(run_id, 0) + 1
            raise
        burnt = self._burnt.get(run_id, 0)
        if not burnt or out[0].event is not events[0].event:
            return out
        run = self._runs[run_id]
        numbered = [_replace(e, seq=e.seq + burnt) for e in out]
        run.envelopes[-len(out) :] = numbered
        return numbered


class BatchInterleavedStore(MemoryEventStore):
    """Stores a batch one event at a time, letting other appends in between."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        if len(events) == 1 or expected_seq is not None:
            return await super()._append(run_id, events, expected_seq)
        out: list[EventEnvelope] = []
        for pending in events:
            out += await super()._append(run_id, [pending], None)
            await asyncio.sleep(0)
        return out


class BatchReturnedOutOfOrderStore(MemoryEventStore):
    """Stores a batch right but returns its envelopes newest first."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        return list(reversed(await super()._append(run_id, events, expected_seq)))


class IgnoresGivenEventIdStore(MemoryEventStore):
    """Stores every event under an id of its own, and returns that one."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        fresh = [PendingEvent(p.event, EventId.new(), p.event_json) for p in events]
        return await super()._append(run_id, fresh, expected_seq)


class RawDuplicateOnRetryStore(MemoryEventStore):
    """Writes a retried event to storage again; reads hide the copies (raw seqs show them)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._copies: dict[RunId, list[int]] = {}

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        out = await super()._append(run_id, events, expected_seq)
        if out and out[0].event is not events[0].event:  # a retry
            self._copies.setdefault(run_id, []).extend(e.seq for e in out)
        return out

    def backdoor(self) -> Any:
        inner = super().backdoor()
        copies = self._copies

        class _Backdoor:
            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

            async def raw_seqs(self, run_id: RunId) -> list[int]:
                return sorted([*await inner.raw_seqs(run_id), *copies.get(run_id, [])])

        return _Backdoor()


class PartialBatchStoresNewEventsStore(MemoryEventStore):
    """A batch whose ids are partly stored stores the new ones instead of refusing."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        run = self._runs.get(run_id)
        known = {} if run is None else run.by_event_id
        stored = [p for p in events if p.event_id in known]
        if not stored or len(stored) == len(events):
            return await super()._append(run_id, events, expected_seq)
        assert run is not None
        new = await super()._append(run_id, [p for p in events if p.event_id not in known], None)
        fresh = iter(new)
        return [run.envelopes[known[p.event_id]] if p in stored else next(fresh) for p in events]


# -- rule 2: session ----------------------------------------------------------------


class NoSessionStore(MemoryEventStore):
    """Never stamps the session id on envelopes after ``RunStarted``."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        out = await super()._append(run_id, events, expected_seq)
        run = self._runs[run_id]
        run.envelopes = [
            e if e.event.event_type == "RunStarted" else _replace(e, session_id=None)
            for e in run.envelopes
        ]
        return [run.envelopes[e.seq - 1] for e in out]


class SessionLeaksBetweenRunsStore(MemoryEventStore):
    """A new run starts with the session of the last ``RunStarted`` in the store."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._last_session: SessionId | None = None

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        if run_id not in self._runs and self._last_session is not None:
            await super()._append(run_id, [], None)  # creates the run
            self._runs[run_id].session_id = self._last_session
        out = await super()._append(run_id, events, expected_seq)
        self._last_session = self._runs[run_id].session_id or self._last_session
        return out


class FirstSessionWinsStore(MemoryEventStore):
    """A second ``RunStarted`` does not change the run's session."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        run = self._runs.get(run_id)
        first = None if run is None else run.session_id
        out = await super()._append(run_id, events, expected_seq)
        run = self._runs[run_id]
        if first is None or out[0].event is not events[0].event:
            return out
        fixed = [_replace(e, session_id=first) for e in out]
        run.envelopes[-len(out) :] = fixed
        run.session_id = first
        return fixed


class SessionNotStampedInsideBatchStore(MemoryEventStore):
    """Events after a ``RunStarted`` in the same batch keep the session from before it."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        run = self._runs.get(run_id)
        before = None if run is None else run.session_id
        out = await super()._append(run_id, events, expected_seq)
        if len(out) < 2 or out[0].event is not events[0].event:
            return out
        fixed = [
            e if e.event.event_type == "RunStarted" else _replace(e, session_id=before) for e in out
        ]
        self._runs[run_id].envelopes[-len(out) :] = fixed
        return fixed


class SessionBackfilledOnReadStore(MemoryEventStore):
    """Reads give envelopes from before ``RunStarted`` the run's session too."""

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        page = await super()._list_after(run_id, after_seq, limit)
        session = self._runs[run_id].session_id if page else None
        return [e if e.session_id else _replace(e, session_id=session) for e in page]


# -- rule 3: pagination -------------------------------------------------------------


class FirstPageAgainStore(MemoryEventStore):
    """Ignores ``after_seq`` once past the first page."""

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        return await super()._list_after(run_id, 0, limit)


class LimitOffByOneStore(MemoryEventStore):
    """Returns one envelope fewer than ``limit``... except when that would be none."""

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        return await super()._list_after(run_id, after_seq, max(1, limit - 1))


class LimitIgnoredStore(MemoryEventStore):
    """Returns every envelope past ``after_seq``, however many ``limit`` allows."""

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        return await super()._list_after(run_id, after_seq, 1 << 30)


class LimitCappedAt1000Store(MemoryEventStore):
    """Never returns more than 1,000 envelopes per page (a driver's page size)."""

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        return await super()._list_after(run_id, after_seq, min(limit, 1000))


class LimitCappedBelowMaxStore(MemoryEventStore):
    """Returns at most 9,999 envelopes: ``limit=10_000`` is one short."""

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        return await super()._list_after(run_id, after_seq, min(limit, 9_999))


class PastEndReturnsLastPageStore(MemoryEventStore):
    """``after_seq`` at or past the end returns the run's last page instead of nothing."""

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        last = await self._last_seq(run_id)
        if last and after_seq >= last:
            after_seq = max(0, last - limit)
        return await super()._list_after(run_id, after_seq, limit)


class AfterSeqInclusiveStore(MemoryEventStore):
    """Returns ``seq >= after_seq`` (the last seen envelope again)."""

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        return await super()._list_after(run_id, max(0, after_seq - 1), limit)


class AfterSeqZeroSkipsFirstStore(MemoryEventStore):
    """Treats ``after_seq=0`` (``None``) as "after seq 1"."""

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        return await super()._list_after(run_id, max(1, after_seq), limit)


class OutOfOrderStore(MemoryEventStore):
    """Returns each page newest first."""

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        return list(reversed(await super()._list_after(run_id, after_seq, limit)))


class OrderedByEventIdStore(MemoryEventStore):
    """Orders a page by event id (UUIDv7 is time-ordered... when ids are made in order)."""

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        run = self._runs.get(run_id)
        if run is None:
            return []
        ordered = sorted(run.envelopes, key=lambda e: e.event_id)
        numbered = [_replace(e, seq=i) for i, e in enumerate(ordered, 1)]
        return numbered[after_seq : after_seq + limit]


class LimitNotValidatedStore(MemoryEventStore):
    """Clamps a bad ``limit`` into range instead of raising ``ValueError``."""

    async def list_after(
        self, run_id: RunId, after_seq: int | None = None, limit: int = 100
    ) -> list[EventEnvelope]:
        if not isinstance(limit, int) or not 1 <= limit <= 10_000:
            limit = 100
        return await super().list_after(run_id, after_seq, limit)


class AfterSeqNotValidatedStore(MemoryEventStore):
    """Reads a negative (or non-int) ``after_seq`` from the start instead of raising."""

    async def list_after(
        self, run_id: RunId, after_seq: int | None = None, limit: int = 100
    ) -> list[EventEnvelope]:
        if type(after_seq) is not int or after_seq < 0:
            after_seq = None
        return await super().list_after(run_id, after_seq, limit)


class LastSeqOffByOneStore(MemoryEventStore):
    """``last_seq`` counts one past the last envelope of a run that has any."""

    async def _last_seq(self, run_id: RunId) -> int:
        last = await super()._last_seq(run_id)
        return last + 1 if last else 0


class LastSeqUnknownRunStore(MemoryEventStore):
    """``last_seq`` of a run with no events is ``-1`` (a SQL ``coalesce`` gone wrong)."""

    async def _last_seq(self, run_id: RunId) -> int:
        return await super()._last_seq(run_id) if run_id in self._runs else -1


class LastSeqNotValidatedStore(MemoryEventStore):
    """``last_seq`` answers 0 for anything, a run id or not."""

    async def last_seq(self, run_id: RunId) -> int:
        if not isinstance(run_id, RunId):
            return 0
        return await super().last_seq(run_id)


# -- rule 4: idempotency ------------------------------------------------------------


class DuplicateOnRetryStore(MemoryEventStore):
    """Ignores ``event_id``: a retried append is stored a second time."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        fresh = [PendingEvent(p.event, EventId.new(), p.event_json) for p in events]
        out = await super()._append(run_id, fresh, expected_seq)
        # Report the caller's ids, as a store that just forgot to check them would.
        return [_replace(e, event_id=p.event_id) for e, p in zip(out, events, strict=True)]


class IdempotencyCheckRacesStore(MemoryEventStore):
    """Looks the ids up, awaits, then stores: concurrent retries all store the event."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        run = self._runs.get(run_id)
        known = run is not None and any(p.event_id in run.by_event_id for p in events)
        await asyncio.sleep(0)  # another retry runs here
        if known:
            return await super()._append(run_id, events, expected_seq)
        fresh = [PendingEvent(p.event, EventId.new(), p.event_json) for p in events]
        out = await super()._append(run_id, fresh, expected_seq)
        run = self._runs[run_id]
        mine = [_replace(e, event_id=p.event_id) for e, p in zip(out, events, strict=True)]
        for envelope in mine:
            run.envelopes[envelope.seq - 1] = envelope
            run.by_event_id[envelope.event_id] = envelope.seq - 1
        return mine


class RetryAnsweredWithGivenEventStore(MemoryEventStore):
    """Answers a stored id with the stored envelope holding the *given* event."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        out = await super()._append(run_id, events, expected_seq)
        return [_replace(e, event=p.event) for e, p in zip(out, events, strict=True)]


class ConflictingRetryStoresTheEventStore(MemoryEventStore):
    """An id reused for another event: refused (by the base) but stored under a new id."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        out = await super()._append(run_id, events, expected_seq)
        changed = [
            p
            for e, p in zip(out, events, strict=True)
            if e.event is not p.event and e.event != p.event
        ]
        if changed:
            fresh = [PendingEvent(p.event, EventId.new(), p.event_json) for p in changed]
            await super()._append(run_id, fresh, None)
        return out


class ExpectedSeqCheckedBeforeIdsStore(MemoryEventStore):
    """Checks ``expected_seq`` before looking the event ids up."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        last = await self._last_seq(run_id)
        if expected_seq is not None and expected_seq != last:
            raise ConcurrencyError(run_id=run_id, expected_seq=expected_seq, actual_seq=last)
        return await super()._append(run_id, events, expected_seq)


class IdsNotScopedToRunStore(MemoryEventStore):
    """Keeps one event-id index for the whole store: an id seen in any run is a retry."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._ids: dict[EventId, EventEnvelope] = {}

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        if all(p.event_id in self._ids for p in events):
            return [self._ids[p.event_id] for p in events]
        out = await super()._append(run_id, events, expected_seq)
        self._ids.update((e.event_id, e) for e in out)
        return out


# -- rule 5: optimistic concurrency -------------------------------------------------


class IgnoresExpectedSeqStore(MemoryEventStore):
    """Commits whatever ``expected_seq`` says."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        return await super()._append(run_id, events, None)


class ExpectedSeqOffByOneStore(MemoryEventStore):
    """Compares ``expected_seq`` with the seq the append would get (last + 1)."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        shifted = None if expected_seq is None else expected_seq - 1
        return await super()._append(run_id, events, shifted)


class WrongActualSeqStore(MemoryEventStore):
    """``ConcurrencyError.actual_seq`` repeats the expected seq instead of the real one."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        try:
            return await super()._append(run_id, events, expected_seq)
        except ConcurrencyError as exc:
            raise ConcurrencyError(
                run_id=run_id, expected_seq=exc.expected_seq, actual_seq=exc.expected_seq
            ) from None


class ConcurrencyErrorAfterPartialWriteStore(MemoryEventStore):
    """A batch with a stale ``expected_seq`` writes its first event, then raises."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        try:
            return await super()._append(run_id, events, expected_seq)
        except ConcurrencyError:
            if len(events) > 1:
                await super()._append(run_id, events[:1], None)
            raise


class ExpectedSeqCheckRacesStore(MemoryEventStore):
    """Checks ``expected_seq``, awaits, then appends: racing writers all win."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        if expected_seq is not None:
            last = await self._last_seq(run_id)
            if last != expected_seq:
                raise ConcurrencyError(run_id=run_id, expected_seq=expected_seq, actual_seq=last)
            await asyncio.sleep(0)  # another writer runs here
        return await super()._append(run_id, events, None)


# -- rule 6: round trip -------------------------------------------------------------


class _MangledReads(MemoryEventStore):
    """Reads envelopes back through JSON that ``_mangle`` alters (a lossy storage layer)."""

    def _mangle(self, envelope: dict[str, Any]) -> dict[str, Any]:
        return envelope

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        page = await super()._list_after(run_id, after_seq, limit)
        return [
            decode_envelope(json.dumps(self._mangle(_envelope_dict(e)), ensure_ascii=False))
            for e in page
        ]


def _mangle_event(envelope: dict[str, Any], leaf: Callable[[Any], Any]) -> dict[str, Any]:
    """Apply ``leaf`` to every value (and key) inside the envelope's event payload."""
    ((name, payload),) = envelope["event"].items()
    return {**envelope, "event": {name: _walk(payload, leaf)}}


class BigIntegersReadAsFloatsStore(_MangledReads):
    """Integers beyond 2**53 come back as floats (a JSON layer with doubles only)."""

    def _mangle(self, envelope: dict[str, Any]) -> dict[str, Any]:
        def leaf(v: Any) -> Any:
            return float(v) if type(v) is int and abs(v) > 2**53 else v

        return _mangle_event(envelope, leaf)


class FloatsLosePrecisionStore(_MangledReads):
    """Floats come back rounded to 15 significant digits (0.1 + 0.2 reads as 0.3)."""

    def _mangle(self, envelope: dict[str, Any]) -> dict[str, Any]:
        def leaf(v: Any) -> Any:
            return float(f"{v:.15g}") if type(v) is float else v

        return _mangle_event(envelope, leaf)


class NegativeZeroLostStore(_MangledReads):
    """``-0.0`` comes back as ``0.0`` (equal in Python, another value in JSON)."""

    def _mangle(self, envelope: dict[str, Any]) -> dict[str, Any]:
        def leaf(v: Any) -> Any:
            return 0.0 if type(v) is float and v == 0 else v

        return _mangle_event(envelope, leaf)


class SubnormalsFlushedStore(_MangledReads):
    """Subnormal floats (5e-324, 1e-320) come back as 0.0."""

    def _mangle(self, envelope: dict[str, Any]) -> dict[str, Any]:
        def leaf(v: Any) -> Any:
            return 0.0 if type(v) is float and 0 < abs(v) < 2.2250738585072014e-308 else v

        return _mangle_event(envelope, leaf)


class NulStrippedStore(_MangledReads):
    """NUL characters are removed from text (a C-string layer)."""

    def _mangle(self, envelope: dict[str, Any]) -> dict[str, Any]:
        def leaf(v: Any) -> Any:
            return v.replace("\x00", "") if isinstance(v, str) else v

        return _mangle_event(envelope, leaf)


class NonBmpReplacedStore(_MangledReads):
    """Characters beyond the BMP come back as U+FFFD (a 3-byte "utf8" column)."""

    def _mangle(self, envelope: dict[str, Any]) -> dict[str, Any]:
        def leaf(v: Any) -> Any:
            if not isinstance(v, str):
                return v
            return "".join("\ufffd" if ord(c) > 0xFFFF else c for c in v)

        return _mangle_event(envelope, leaf)


class EmptyStringsReadAsNullStore(_MangledReads):
    """Empty strings inside JSON values come back as ``null`` (an Oracle habit)."""

    def _mangle(self, envelope: dict[str, Any]) -> dict[str, Any]:
        def leaf(v: Any) -> Any:
            return None if v == "" else v

        ((name, payload),) = envelope["event"].items()
        kept = {k: v for k, v in payload.items() if k in ("run_id", "timestamp")}
        rest = {k: _walk(v, leaf) for k, v in payload.items() if k not in kept}
        return {**envelope, "event": {name: {**kept, **rest}}}


class ExtraFieldsDroppedStore(MemoryEventStore):
    """Fields an event carries beyond its variant's own are dropped on the way to storage."""

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        page = await super()._list_after(run_id, after_seq, limit)
        return [_replace(e, event=_without_extras(e.event)) for e in page]


def _without_extras(event: AgentEvent) -> AgentEvent:
    if isinstance(event, UnknownEvent) or not event.model_extra:
        return event
    cls = type(event)
    return cls.model_validate({name: getattr(event, name) for name in cls.model_fields})


_FRACTION = re.compile(r"\.(\d{3})\d*Z$")


def _millis(text: str) -> str:
    return _FRACTION.sub(r".\1Z", text)


_NANO_FRACTION = re.compile(r"\.(\d{6})\d*Z$")


def _micros(text: str) -> str:
    return _NANO_FRACTION.sub(r".\1Z", text)


class TimestampsTruncatedToMillisecondsStore(_MangledReads):
    """Event timestamps come back with milliseconds only."""

    def _mangle(self, envelope: dict[str, Any]) -> dict[str, Any]:
        ((name, payload),) = envelope["event"].items()
        if isinstance(payload.get("timestamp"), str):
            payload = {**payload, "timestamp": _millis(payload["timestamp"])}
        return {**envelope, "event": {name: payload}}


class TimestampsTruncatedToMicrosecondsStore(_MangledReads):
    """Event timestamps come back with microseconds only (a ``datetime``-based backend)."""

    def _mangle(self, envelope: dict[str, Any]) -> dict[str, Any]:
        ((name, payload),) = envelope["event"].items()
        if isinstance(payload.get("timestamp"), str):
            payload = {**payload, "timestamp": _micros(payload["timestamp"])}
        return {**envelope, "event": {name: payload}}


class ImportedEmittedAtTruncatedToMicrosecondsStore(MemoryEventStore):
    """Keeps imported envelopes' ``emitted_at`` to the microsecond (a µs column)."""

    async def _import(self, batch: ImportBatch) -> None:
        envelopes = [
            _replace(e, emitted_at=parse_time(_micros(format_time(e.emitted_at))))
            for e in batch.envelopes
        ]
        await super()._import(ImportBatch(batch.run_id, envelopes, batch.texts, batch.expected_seq))


class EmittedAtTruncatedOnReadStore(_MangledReads):
    """``emitted_at`` comes back with milliseconds only (what ``append`` returned had µs)."""

    def _mangle(self, envelope: dict[str, Any]) -> dict[str, Any]:
        return {**envelope, "emitted_at": _millis(envelope["emitted_at"])}


class SessionDroppedOnReadStore(_MangledReads):
    """Stamps the session on append, but reads envelopes back without it."""

    def _mangle(self, envelope: dict[str, Any]) -> dict[str, Any]:
        return {**envelope, "session_id": None}


class UnknownVariantNameTruncatedStore(_MangledReads):
    """Variant names longer than 255 characters are cut (a VARCHAR(255) column)."""

    def _mangle(self, envelope: dict[str, Any]) -> dict[str, Any]:
        ((name, payload),) = envelope["event"].items()
        return {**envelope, "event": {name[:255]: payload}}


class UnknownPayloadKeysSortedStore(_MangledReads):
    """An unknown variant's payload comes back with keys sorted and ``null`` members dropped."""

    def _mangle(self, envelope: dict[str, Any]) -> dict[str, Any]:
        def tidy(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: tidy(value[k]) for k in sorted(value) if value[k] is not None}
            if isinstance(value, list):
                return [tidy(v) for v in value]
            return value

        return {**envelope, "event": tidy(envelope["event"])}


class UnencodableTextSanitisedStore(MemoryEventStore):
    """Replaces lone surrogates with U+FFFD and stores the event instead of refusing it."""

    def _pending(self, event: AgentEvent, event_id: object) -> PendingEvent:
        if isinstance(event, TextDelta) and isinstance(event.delta, str):
            cleaned = event.delta.encode("utf-8", "replace").decode("utf-8")
            if cleaned != event.delta:
                event = TextDelta(run_id=event.run_id, delta=cleaned, timestamp=event.timestamp)
        return super()._pending(event, event_id)


class HolesReturnedAsShortPagesStore(MemoryEventStore):
    """Claims it may skip seqs (``gaps_possible``) and so returns a hole as a short page."""

    gaps_possible = True


class MaxEventBytesOffByOneStore(MemoryEventStore):
    """Refuses an event of exactly ``max_event_bytes`` (a ``<`` that should be ``<=``)."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        for p in events:
            size = len(p.event_json.encode())
            if size >= self.max_event_bytes:
                raise EventTooLargeError(
                    size=size, limit=self.max_event_bytes, event_type=p.event.event_type
                )
        return await super()._append(run_id, events, expected_seq)


class EventSizeNotCheckedStore(MemoryEventStore):
    """Accepts events of any size, whatever ``max_event_bytes`` says."""

    def _pending(self, event: AgentEvent, event_id: object) -> PendingEvent:
        limit = self.max_event_bytes
        self.max_event_bytes = 1 << 62
        try:
            return super()._pending(event, event_id)
        finally:
            self.max_event_bytes = limit


class NestingLimitTooStrictStore(MemoryEventStore):
    """Refuses events nested more than 50 levels deep (the documented limit is 100)."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        for p in events:
            depth = deepest = 0
            for char in re.sub(r'"(?:[^"\\]|\\.)*"', "", p.event_json):
                depth += char in "[{"
                depth -= char in "]}"
                deepest = max(deepest, depth)
            if deepest > 50:
                raise InvalidArgumentError(f"event nests {deepest} levels")
        return await super()._append(run_id, events, expected_seq)


# -- rule 8: corruption -------------------------------------------------------------


class SkipsCorruptStore(MemoryEventStore):
    """Silently leaves corrupt entries out of reads (and says holes are possible)."""

    gaps_possible = True

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        run = self._runs.get(run_id)
        if run is None:
            return []
        page = run.envelopes[after_seq : after_seq + limit]
        return [e for e in page if e.seq not in run.corrupt]


class CorruptionWithoutPositionStore(MemoryEventStore):
    """Reports corruption without saying which entry (position "unknown")."""

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        try:
            return await super()._list_after(run_id, after_seq, limit)
        except CorruptEventError as exc:
            raise CorruptEventError(run_id=run_id, position="unknown", reason=exc.reason) from exc


class CorruptionAsBackendErrorStore(MemoryEventStore):
    """A damaged entry surfaces as a decoding error (BackendError), not CorruptEventError."""

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        try:
            return await super()._list_after(run_id, after_seq, limit)
        except CorruptEventError:
            raise ValueError("Expecting value: line 1 column 1 (char 0)") from None


# -- subscribe ----------------------------------------------------------------------


class DropsDuringCatchUpStore(MemoryEventStore):
    """Catches up from a snapshot, then tails live from the end of the run *now*.

    Events appended while the subscriber was working through the snapshot fall
    between the two and are never delivered.
    """

    async def _subscribe(
        self, run_id: RunId, after_seq: int, until_terminal: bool
    ) -> AsyncIterator[EventEnvelope]:
        snapshot = await self.list_after(run_id, after_seq, 10_000)
        for envelope in snapshot:
            yield envelope
            if until_terminal and envelope.event.is_terminal:
                return
        last = await self.last_seq(run_id)
        while True:
            page = await self.list_after(run_id, last, 500)
            for envelope in page:
                yield envelope
                last = envelope.seq
                if until_terminal and envelope.event.is_terminal:
                    return
            await asyncio.sleep(0)  # its bug is the lost events, not a spinning loop
            if not page:
                await self._wait_for_append(run_id, last, 0)


class LosesWakeUpsStore(MemoryEventStore):
    """Never wakes a live subscriber: it catches up, then waits forever."""

    async def _wait_for_append(self, run_id: RunId, after_seq: int, idle_rounds: int) -> None:
        await asyncio.Event().wait()


class SubscribeRepeatsResumeSeqStore(MemoryEventStore):
    """Resuming after seq N yields seq N again (``>=`` instead of ``>``)."""

    def _subscribe(
        self, run_id: RunId, after_seq: int, until_terminal: bool
    ) -> AsyncIterator[EventEnvelope]:
        return super()._subscribe(run_id, max(0, after_seq - 1), until_terminal)


class UntilTerminalIgnoredStore(MemoryEventStore):
    """``until_terminal=True`` does not end the subscription at the terminal event."""

    def _subscribe(
        self, run_id: RunId, after_seq: int, until_terminal: bool
    ) -> AsyncIterator[EventEnvelope]:
        return super()._subscribe(run_id, after_seq, False)


class UntilTerminalResumedWaitsStore(MemoryEventStore):
    """Ends at a terminal event it yields, but one resumed after it waits forever."""

    async def _subscribe(
        self, run_id: RunId, after_seq: int, until_terminal: bool
    ) -> AsyncIterator[EventEnvelope]:
        async for envelope in super()._subscribe(run_id, after_seq, False):
            yield envelope
            if until_terminal and envelope.event.is_terminal:
                return


class SlowConsumerSkippedAheadStore(MemoryEventStore):
    """A subscriber more than 50 events behind the run is moved to its end."""

    async def _subscribe(
        self, run_id: RunId, after_seq: int, until_terminal: bool
    ) -> AsyncIterator[EventEnvelope]:
        last = after_seq
        while True:
            head = await self.last_seq(run_id)
            if head - last > 50 and last > after_seq:
                last = head - 1  # "catch up" by dropping the backlog
            page = await self.list_after(run_id, last, 10)
            for envelope in page:
                yield envelope
                last = envelope.seq
                if until_terminal and envelope.event.is_terminal:
                    return
            await asyncio.sleep(0)  # its bug is the skipped backlog, not a spinning loop
            if not page:
                await self._wait_for_append(run_id, last, 0)


# -- list_runs ----------------------------------------------------------------------


class ListRunsWrongOrderStore(MemoryEventStore):
    """Lists runs newest id first."""

    async def _list_runs(
        self, session_id: SessionId | None, limit: int, after: RunId | None
    ) -> list[RunInfo]:
        return list(reversed(await super()._list_runs(session_id, limit, after)))


class ListRunsIgnoresSessionStore(MemoryEventStore):
    """Lists every run whatever ``session_id`` asks for."""

    async def _list_runs(
        self, session_id: SessionId | None, limit: int, after: RunId | None
    ) -> list[RunInfo]:
        return await super()._list_runs(None, limit, after)


class ListRunsIgnoresAfterStore(MemoryEventStore):
    """Always lists from the first run: ``after`` is ignored."""

    async def _list_runs(
        self, session_id: SessionId | None, limit: int, after: RunId | None
    ) -> list[RunInfo]:
        return await super()._list_runs(session_id, limit, None)


class ListRunsIgnoresLimitStore(MemoryEventStore):
    """Lists every matching run whatever ``limit`` says."""

    async def _list_runs(
        self, session_id: SessionId | None, limit: int, after: RunId | None
    ) -> list[RunInfo]:
        return await super()._list_runs(session_id, 1 << 30, after)


def _info(info: RunInfo, **changes: Any) -> RunInfo:
    return RunInfo(**{**{name: getattr(info, name) for name in RunInfo.model_fields}, **changes})


class ListRunsWrongLastSeqStore(MemoryEventStore):
    """Reports a run's last seq as the number of appends, not of events."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._appends: dict[RunId, int] = {}

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        out = await super()._append(run_id, events, expected_seq)
        self._appends[run_id] = self._appends.get(run_id, 0) + 1
        return out

    async def _list_runs(
        self, session_id: SessionId | None, limit: int, after: RunId | None
    ) -> list[RunInfo]:
        infos = await super()._list_runs(session_id, limit, after)
        return [_info(i, last_seq=self._appends.get(i.run_id, i.last_seq)) for i in infos]


class ListRunsFirstSessionStore(MemoryEventStore):
    """Lists (and filters) a run under the session of its first ``RunStarted``."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._first: dict[RunId, SessionId] = {}

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        out = await super()._append(run_id, events, expected_seq)
        session = self._runs[run_id].session_id
        if session is not None:
            self._first.setdefault(run_id, session)
        return out

    async def _list_runs(
        self, session_id: SessionId | None, limit: int, after: RunId | None
    ) -> list[RunInfo]:
        infos = await super()._list_runs(None, MAX_RUNS_SCAN, after)
        fixed = [_info(i, session_id=self._first.get(i.run_id, i.session_id)) for i in infos]
        return [i for i in fixed if session_id is None or i.session_id == session_id][:limit]


MAX_RUNS_SCAN = 10_000


class ListRunsFirstEmittedAtWrongStore(MemoryEventStore):
    """Reports the last envelope's time as the first's."""

    async def _list_runs(
        self, session_id: SessionId | None, limit: int, after: RunId | None
    ) -> list[RunInfo]:
        infos = await super()._list_runs(session_id, limit, after)
        return [_info(i, first_emitted_at=i.last_emitted_at) for i in infos]


class ListRunsLastEmittedAtWrongStore(MemoryEventStore):
    """Reports the first envelope's time as the last's."""

    async def _list_runs(
        self, session_id: SessionId | None, limit: int, after: RunId | None
    ) -> list[RunInfo]:
        infos = await super()._list_runs(session_id, limit, after)
        return [_info(i, last_emitted_at=i.first_emitted_at) for i in infos]


class ListRunsOmitsRunsWithoutSessionStore(MemoryEventStore):
    """Lists only runs that have a session (an inner join on a sessions table)."""

    async def _list_runs(
        self, session_id: SessionId | None, limit: int, after: RunId | None
    ) -> list[RunInfo]:
        infos = await super()._list_runs(session_id, MAX_RUNS_SCAN, after)
        return [i for i in infos if i.session_id is not None][:limit]


# -- delete_run ---------------------------------------------------------------------


class DeleteWrongCountStore(MemoryEventStore):
    """``delete_run`` returns 1 (rows deleted from a runs table), not the event count."""

    async def _delete_run(self, run_id: RunId) -> int:
        return min(1, await super()._delete_run(run_id))


class DeleteUnknownRunNotZeroStore(MemoryEventStore):
    """``delete_run`` of an unknown run returns -1."""

    async def _delete_run(self, run_id: RunId) -> int:
        return await super()._delete_run(run_id) if run_id in self._runs else -1


class DeleteLeavesSessionStore(MemoryEventStore):
    """Deletes a run's events but keeps its session for the next append."""

    async def _delete_run(self, run_id: RunId) -> int:
        run = self._runs.get(run_id)
        session = None if run is None else run.session_id
        removed = await super()._delete_run(run_id)
        if session is not None:
            await super()._append(run_id, [], None)  # recreates the run, empty
            self._runs[run_id].session_id = session
        return removed


class DeleteLeavesIdempotencyKeysStore(MemoryEventStore):
    """Deletes a run's events but answers its old event ids with the old envelopes."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._ghosts: dict[RunId, dict[EventId, EventEnvelope]] = {}

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        ghosts = self._ghosts.get(run_id, {})
        if events and all(p.event_id in ghosts for p in events):
            return [ghosts[p.event_id] for p in events]
        return await super()._append(run_id, events, expected_seq)

    async def _delete_run(self, run_id: RunId) -> int:
        run = self._runs.get(run_id)
        if run is not None:
            self._ghosts[run_id] = {e.event_id: e for e in run.envelopes}
        return await super()._delete_run(run_id)


class DeleteKeepsSeqCounterStore(MemoryEventStore):
    """After ``delete_run`` the run goes on from its old last seq instead of 1."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._offsets: dict[RunId, int] = {}

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        out = await super()._append(run_id, events, expected_seq)
        offset = self._offsets.get(run_id, 0)
        if not offset or out[0].event is not events[0].event:
            return out
        numbered = [_replace(e, seq=e.seq + offset) for e in out]
        self._runs[run_id].envelopes[-len(out) :] = numbered
        return numbered

    async def _delete_run(self, run_id: RunId) -> int:
        removed = await super()._delete_run(run_id)
        self._offsets[run_id] = self._offsets.get(run_id, 0) + removed
        return removed


class DeleteRemovesOtherRunsStore(MemoryEventStore):
    """``delete_run`` empties the whole store (a DELETE missing its WHERE)."""

    async def _delete_run(self, run_id: RunId) -> int:
        removed = await super()._delete_run(run_id)
        self._runs.clear()
        return removed


class DeleteLeavesRunInListRunsStore(MemoryEventStore):
    """A deleted run stays in ``list_runs`` (its summary row is not removed)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._stale: dict[RunId, RunInfo] = {}

    async def _delete_run(self, run_id: RunId) -> int:
        (info,) = await super()._list_runs(None, 1, RunId(int=run_id.int - 1)) or [None]
        if info is not None and info.run_id == run_id:
            self._stale[run_id] = info
        return await super()._delete_run(run_id)

    async def _list_runs(
        self, session_id: SessionId | None, limit: int, after: RunId | None
    ) -> list[RunInfo]:
        infos = await super()._list_runs(session_id, MAX_RUNS_SCAN, after)
        extra = [
            i
            for i in self._stale.values()
            if (after is None or i.run_id > after)
            and (session_id is None or i.session_id == session_id)
            and i.run_id not in self._runs
        ]
        return sorted([*infos, *extra], key=lambda i: i.run_id)[:limit]


# -- import -------------------------------------------------------------------------


class ImportDropsSessionsStore(MemoryEventStore):
    """Imports envelopes without their session ids."""

    async def _import(self, batch: ImportBatch) -> None:
        envelopes = [_replace(e, session_id=None) for e in batch.envelopes]
        await super()._import(ImportBatch(batch.run_id, envelopes, batch.texts, batch.expected_seq))


class ImportRestampsTimesStore(MemoryEventStore):
    """Gives imported envelopes the import's time as ``emitted_at``."""

    async def _import(self, batch: ImportBatch) -> None:
        now = utc_now()
        envelopes = [_replace(e, emitted_at=now) for e in batch.envelopes]
        await super()._import(ImportBatch(batch.run_id, envelopes, batch.texts, batch.expected_seq))


class ImportRefusesResumedCopyStore(MemoryEventStore):
    """Imports only into an empty run: resuming an interrupted copy is refused."""

    async def _import(self, batch: ImportBatch) -> None:
        if batch.expected_seq != 0:
            raise ConcurrencyError(
                run_id=batch.run_id, expected_seq=0, actual_seq=batch.expected_seq
            )
        await super()._import(batch)


class ImportForgetsSessionStore(MemoryEventStore):
    """After an import, the run's session (for later appends) is left as it was."""

    async def _import(self, batch: ImportBatch) -> None:
        run = self._runs.get(batch.run_id)
        before = None if run is None else run.session_id
        await super()._import(batch)
        self._runs[batch.run_id].session_id = before


class ImportForgetsEventIdsStore(MemoryEventStore):
    """Does not index imported event ids: a copied id can be imported again."""

    async def _import(self, batch: ImportBatch) -> None:
        await super()._import(batch)
        run = self._runs[batch.run_id]
        for envelope in batch.envelopes:
            run.by_event_id.pop(envelope.event_id, None)


# -- rule 9 and the lifecycle -------------------------------------------------------


class DriverErrorEscapesStore(MemoryEventStore):
    """Lets a driver's exception through untranslated."""

    def _translate_error(self, exc: Exception, operation: str) -> EventStoreError:
        return exc  # type: ignore[return-value]


class CloseNotIdempotentStore(MemoryEventStore):
    """A second ``close()`` raises (it releases a connection twice)."""

    async def close(self) -> None:
        if self._closed:
            raise RuntimeError("connection already released")
        await super().close()


class ClosedStoreStillAnswersStore(MemoryEventStore):
    """Serves calls before ``open()`` and after ``close()``."""

    def _require_open(self) -> None:
        return None


# -- stores sharing storage (durable), and their bugs --------------------------------

_SHARED: dict[str, dict[RunId, Any]] = {}


class SharedMemoryStore(MemoryEventStore):
    """In-memory runs shared by every store object with the same ``key`` (a "file").

    It declares ``durable``: closing one store object and opening another with the
    same key finds the same runs. Correct by itself; the subclasses break it.
    """

    backend_name: ClassVar[str] = "shared-memory"
    capabilities: ClassVar[frozenset[Capability]] = MemoryEventStore.capabilities | {
        Capability.DURABLE
    }

    def __init__(self, key: str = "default", **options: Any) -> None:
        super().__init__(**options)
        self._key = key
        self._runs = _SHARED.setdefault(key, {})

    async def _do_close(self) -> None:
        return None  # the data stays for the next store object

    def _poll_interval(self, idle_rounds: int) -> float | None:
        return poll_delay(idle_rounds)  # other store objects write the same runs


class LosesLastAppendOnCloseStore(SharedMemoryStore):
    """Buffers the last append of each run and drops it on close (no final flush)."""

    async def _do_close(self) -> None:
        for run in self._runs.values():
            if run.envelopes:
                lost = run.envelopes.pop()
                run.by_event_id.pop(lost.event_id, None)


class IdempotencyKeysNotPersistedStore(SharedMemoryStore):
    """Keeps the event-id index in the store object: a reopened store has none."""

    async def _do_open(self) -> None:
        for run in self._runs.values():
            run.by_event_id.clear()


class SessionNotPersistedStore(SharedMemoryStore):
    """Keeps the run's current session in the store object: a reopened store has none."""

    async def _do_open(self) -> None:
        for run in self._runs.values():
            run.session_id = None


class StoreObjectsDoNotShareStorageStore(SharedMemoryStore):
    """Each store object works on its own copy, written back when it closes."""

    async def _do_open(self) -> None:
        self._runs = copy.deepcopy(_SHARED[self._key])

    async def _do_close(self) -> None:
        _SHARED[self._key].update(self._runs)


# -- SQLite-based -------------------------------------------------------------------

# The one notifier of SQLiteProcessLocalWakeUpsStore's objects in this process.
_PROCESS_NOTIFIER = RunNotifier()


def _sqlite_classes() -> dict[str, type[EventStore]]:
    from eventstore_sqlalchemy._sqlite import SQLiteEventStore

    class SQLiteNeverPollsStore(SQLiteEventStore):
        """Waits only for this object's own appends: another store object's never wake it."""

        def _poll_interval(self, idle_rounds: int) -> float | None:
            return None

    class SQLiteProcessLocalWakeUpsStore(SQLiteEventStore):
        """Wakes subscribers through one notifier shared by the process's store objects.

        Appends through another store object in the same process wake them; appends
        by another process never do (it never polls).
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._notifier = _PROCESS_NOTIFIER

        def _poll_interval(self, idle_rounds: int) -> float | None:
            return None

    class SQLiteLimitCappedAt1000Store(SQLiteEventStore):
        """Pages of at most 1,000 rows (a fetchmany size taken for the limit)."""

        async def _list_after(
            self, run_id: RunId, after_seq: int, limit: int
        ) -> list[EventEnvelope]:
            return await super()._list_after(run_id, after_seq, min(limit, 1000))

    class SQLiteListRunsIgnoresSessionStore(SQLiteEventStore):
        """``list_runs`` drops the session filter from its query."""

        async def _list_runs(
            self, session_id: SessionId | None, limit: int, after: RunId | None
        ) -> list[RunInfo]:
            return await super()._list_runs(None, limit, after)

    class SQLiteLastSeqOffByOneStore(SQLiteEventStore):
        """``last_seq`` reads ``count(*) + 1`` ("the next seq") for a run with events."""

        async def _last_seq(self, run_id: RunId) -> int:
            last = await super()._last_seq(run_id)
            return last + 1 if last else 0

    return {
        cls.__name__: cls
        for cls in (
            SQLiteNeverPollsStore,
            SQLiteLimitCappedAt1000Store,
            SQLiteListRunsIgnoresSessionStore,
            SQLiteLastSeqOffByOneStore,
        )
    }


# -- reached through a URL ----------------------------------------------------------


class OptionInUrlIgnoredStore(MemoryEventStore):
    """``from_url`` reads keyword options but not the URL's query."""

    @classmethod
    def from_url(cls, url: str | StoreURL, **options: Any) -> OptionInUrlIgnoredStore:
        bare = StoreURL.parse("memory://")
        return cls(**parse_options(MemoryOptions, bare, options, backend="broken").model_dump())


class OptionKeywordIgnoredStore(MemoryEventStore):
    """``from_url`` reads the URL's query but drops keyword options."""

    @classmethod
    def from_url(cls, url: str | StoreURL, **options: Any) -> OptionKeywordIgnoredStore:
        parsed = StoreURL.parse(url)
        return cls(**parse_options(MemoryOptions, parsed, {}, backend="broken").model_dump())


class _RemembersUrl(MemoryEventStore):
    @classmethod
    def from_url(cls, url: str | StoreURL, **options: Any) -> _RemembersUrl:
        parsed = StoreURL.parse(url)
        store = cls(**parse_options(MemoryOptions, parsed, options, backend="broken").model_dump())
        store.url_text = url if isinstance(url, str) else parsed.secret  # type: ignore[attr-defined]
        return store


class PasswordInDescribeStore(_RemembersUrl):
    """``describe()`` (and so ``repr``) shows the URL with its password."""

    def describe(self) -> str:
        return f"memory at {self.url_text}"  # type: ignore[attr-defined]


class PasswordInErrorMessagesStore(_RemembersUrl):
    """Driver errors are translated with their message as it is, password and all."""

    def _translate_error(self, exc: Exception, operation: str) -> EventStoreError:
        return BackendError(f"{operation} failed: {exc}")


class CapabilitiesDifferFromSpecStore(MemoryEventStore):
    """Declares ``import`` although its registered ``BackendSpec`` does not."""


class _UrlBackend(NamedTuple):
    scheme: str
    store: type[EventStore]
    capabilities: frozenset[Capability]


_PASSWORD_URL = "{scheme}://contract:hunter2-secret@localhost/x"

_URL_BACKENDS: dict[str, _UrlBackend] = {
    "option_in_url_ignored": _UrlBackend(
        "brokenurlopts", OptionInUrlIgnoredStore, MemoryEventStore.capabilities
    ),
    "option_keyword_ignored": _UrlBackend(
        "brokenkwopts", OptionKeywordIgnoredStore, MemoryEventStore.capabilities
    ),
    "password_in_describe": _UrlBackend(
        "brokendescribe", PasswordInDescribeStore, MemoryEventStore.capabilities
    ),
    "password_in_error_messages": _UrlBackend(
        "brokenerrors", PasswordInErrorMessagesStore, MemoryEventStore.capabilities
    ),
    "capabilities_differ_from_spec": _UrlBackend(
        "brokencaps",
        CapabilitiesDifferFromSpecStore,
        MemoryEventStore.capabilities - {Capability.IMPORT},
    ),
}


class _BrokenPlugin:
    @hookimpl
    def eventstore_register_backends(self) -> list[BackendSpec]:
        return [
            BackendSpec(
                name=f"broken-{b.scheme}",
                schemes=(b.scheme,),
                factory=f"broken_backends:{b.store.__name__}.from_url",
                capabilities=b.capabilities,
                description="a deliberately broken backend of the suite's own tests",
            )
            for b in _URL_BACKENDS.values()
        ]


def register_url_backends() -> None:
    """Register the URL-reached broken backends in the default registry (once)."""
    registry = default_registry()
    try:
        registry.backend_for(next(iter(_URL_BACKENDS.values())).scheme + "://")
    except EventStoreError:
        registry.register(_BrokenPlugin(), name="eventstore-contract-broken-backends")


# -- the catalogue ------------------------------------------------------------------

Family = Literal["memory", "shared", "sqlite", "url"]


class Broken(NamedTuple):
    """A broken backend and the suite test that catches it.

    ``store`` is the class (for the in-memory ones, also a store factory: calling it
    makes a new store), or for the SQLite ones the class's name: they are built only
    when needed, so that importing this module imports no SQLAlchemy.
    """

    store: type[EventStore] | str
    caught_by: str
    family: Family = "memory"


def store_class(name: str) -> type[EventStore]:
    """The class of the broken backend ``name``."""
    entry = BROKEN[name]
    if isinstance(entry.store, str):
        return _sqlite_classes()[entry.store]
    return entry.store


def store_url_for(name: str, tmp_path: Path) -> str | None:
    """The ``store_url`` fixture for a suite run against ``name`` (``None``: none)."""
    entry = BROKEN[name]
    if entry.family == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/events.db"
    if entry.family == "url":
        register_url_backends()
        scheme = _URL_BACKENDS[name].scheme
        if name.startswith("password_"):
            return _PASSWORD_URL.format(scheme=scheme)
        return f"{scheme}://"
    return None


def store_factory_for(name: str, tmp_path: Path) -> StoreFactory:
    """The ``store_factory`` fixture for a suite run against ``name``."""
    entry = BROKEN[name]
    cls = store_class(name)
    if entry.family == "sqlite":
        url = store_url_for(name, tmp_path)
        return lambda: cls.from_url(url)  # type: ignore[attr-defined,no-any-return]
    if entry.family == "url":
        url = store_url_for(name, tmp_path)
        return lambda: open_store(url)
    if entry.family == "shared":
        key = str(tmp_path)
        return lambda: cls(key=key)  # type: ignore[call-arg]
    return cls


def _b(store: type[EventStore] | str, caught_by: str, family: Family = "memory") -> Broken:
    return Broken(store, caught_by, family)


BROKEN: dict[str, Broken] = {
    # rule 1: sequence
    "gaps_or_duplicates_under_concurrency": _b(
        RacySeqStore, "test_sequence_concurrent_appenders_get_consecutive_seqs"
    ),
    "seqs_shared_between_runs": _b(SeqsSharedBetweenRunsStore, "test_sequence_is_per_run"),
    "refused_append_uses_a_seq": _b(
        RefusedAppendUsesSeqStore, "test_sequence_refused_and_retried_appends_use_no_seq"
    ),
    "raw_duplicate_on_retry": _b(
        RawDuplicateOnRetryStore, "test_sequence_raw_storage_has_no_duplicates_after_retries"
    ),
    "batch_interleaved": _b(
        BatchInterleavedStore, "test_append_batch_concurrent_batches_do_not_interleave"
    ),
    "batch_returned_out_of_order": _b(
        BatchReturnedOutOfOrderStore, "test_append_batch_assigns_consecutive_seqs"
    ),
    "append_ignores_given_event_id": _b(
        IgnoresGivenEventIdStore, "test_append_returns_envelope_of_the_event"
    ),
    "partial_batch_stores_new_events": _b(
        PartialBatchStoresNewEventsStore, "test_idempotency_partial_batch_retry_conflicts"
    ),
    "last_seq_off_by_one": _b(
        LastSeqOffByOneStore, "test_sequence_starts_at_one_and_is_consecutive"
    ),
    "last_seq_unknown_run_not_zero": _b(LastSeqUnknownRunStore, "test_read_unknown_run_is_empty"),
    # rule 2: session
    "session_not_stamped": _b(NoSessionStore, "test_session_run_started_stamps_later_envelopes"),
    "session_leaks_between_runs": _b(SessionLeaksBetweenRunsStore, "test_session_is_per_run"),
    "first_session_wins": _b(FirstSessionWinsStore, "test_session_latest_run_started_wins"),
    "session_not_stamped_inside_batch": _b(
        SessionNotStampedInsideBatchStore, "test_session_is_stamped_inside_a_batch"
    ),
    "session_backfilled_on_read": _b(
        SessionBackfilledOnReadStore, "test_session_changes_within_a_run_are_read_back"
    ),
    "session_dropped_on_read": _b(
        SessionDroppedOnReadStore, "test_session_run_started_stamps_later_envelopes"
    ),
    # rule 3: pagination
    "paging_ignores_after_seq": _b(FirstPageAgainStore, "test_pagination_visits_every_event_once"),
    "limit_off_by_one": _b(LimitOffByOneStore, "test_pagination_returns_exactly_limit"),
    "limit_ignored": _b(LimitIgnoredStore, "test_pagination_returns_exactly_limit"),
    "limit_capped_at_1000": _b(
        LimitCappedAt1000Store, "test_read_run_longer_than_max_limit_in_full_pages"
    ),
    "limit_capped_below_max": _b(
        LimitCappedBelowMaxStore, "test_read_run_longer_than_max_limit_in_full_pages"
    ),
    "past_end_returns_last_page": _b(
        PastEndReturnsLastPageStore, "test_read_after_seq_at_and_past_the_end_is_empty"
    ),
    "after_seq_inclusive": _b(AfterSeqInclusiveStore, "test_pagination_visits_every_event_once"),
    "after_seq_zero_skips_first": _b(
        AfterSeqZeroSkipsFirstStore, "test_pagination_after_seq_none_starts_at_one"
    ),
    "events_out_of_order": _b(OutOfOrderStore, "test_read_returns_events_in_seq_order"),
    "pages_ordered_by_event_id": _b(
        OrderedByEventIdStore, "test_read_event_ids_need_not_be_time_ordered"
    ),
    "limit_not_validated": _b(LimitNotValidatedStore, "test_pagination_rejects_invalid_limit"),
    "after_seq_not_validated": _b(
        AfterSeqNotValidatedStore, "test_pagination_rejects_invalid_after_seq"
    ),
    # rule 4: idempotency
    "duplicate_on_retry": _b(
        DuplicateOnRetryStore, "test_idempotency_retry_returns_stored_envelope"
    ),
    "idempotency_check_races": _b(
        IdempotencyCheckRacesStore, "test_idempotency_concurrent_retries_store_once"
    ),
    "retry_answered_with_given_event": _b(
        RetryAnsweredWithGivenEventStore, "test_idempotency_id_reused_for_another_event_conflicts"
    ),
    "conflicting_retry_stores_the_event": _b(
        ConflictingRetryStoresTheEventStore,
        "test_idempotency_id_reused_for_another_event_conflicts",
    ),
    "expected_seq_checked_before_ids": _b(
        ExpectedSeqCheckedBeforeIdsStore, "test_idempotency_is_checked_before_expected_seq"
    ),
    "ids_not_scoped_to_run": _b(
        IdsNotScopedToRunStore, "test_idempotency_event_ids_are_scoped_to_their_run"
    ),
    # rule 5: optimistic concurrency
    "expected_seq_ignored": _b(
        IgnoresExpectedSeqStore, "test_concurrency_expected_seq_mismatch_raises"
    ),
    "expected_seq_off_by_one": _b(
        ExpectedSeqOffByOneStore, "test_concurrency_expected_seq_match_commits"
    ),
    "wrong_actual_seq": _b(WrongActualSeqStore, "test_concurrency_expected_seq_mismatch_raises"),
    "concurrency_error_after_partial_write": _b(
        ConcurrencyErrorAfterPartialWriteStore, "test_concurrency_batch_mismatch_writes_nothing"
    ),
    "expected_seq_check_races": _b(
        ExpectedSeqCheckRacesStore, "test_concurrency_only_one_racing_writer_wins"
    ),
    # rule 6: round trip
    "big_integers_read_as_floats": _b(
        BigIntegersReadAsFloatsStore, "test_round_trip_integers_at_the_limits_read_back_equal"
    ),
    "floats_lose_precision": _b(FloatsLosePrecisionStore, "test_round_trip_float_edges"),
    "negative_zero_lost": _b(NegativeZeroLostStore, "test_round_trip_float_edges"),
    "subnormals_flushed_to_zero": _b(SubnormalsFlushedStore, "test_round_trip_float_edges"),
    "nul_stripped": _b(NulStrippedStore, "test_round_trip_nul_characters"),
    "non_bmp_replaced": _b(NonBmpReplacedStore, "test_round_trip_non_bmp_characters"),
    "empty_strings_read_as_null": _b(EmptyStringsReadAsNullStore, "test_round_trip_empty_strings"),
    "extra_fields_dropped": _b(ExtraFieldsDroppedStore, "test_round_trip_extra_fields_kept"),
    "timestamps_truncated_to_milliseconds": _b(
        TimestampsTruncatedToMillisecondsStore, "test_round_trip_timestamps_keep_nanoseconds"
    ),
    "timestamps_truncated_to_microseconds": _b(
        TimestampsTruncatedToMicrosecondsStore, "test_round_trip_timestamps_keep_nanoseconds"
    ),
    "imported_emitted_at_truncated_to_microseconds": _b(
        ImportedEmittedAtTruncatedToMicrosecondsStore,
        "test_round_trip_imported_emitted_at_keeps_nanoseconds",
    ),
    "emitted_at_truncated_on_read": _b(
        EmittedAtTruncatedOnReadStore, "test_round_trip_list_after_equals_append_result"
    ),
    "unknown_variant_name_truncated": _b(
        UnknownVariantNameTruncatedStore, "test_round_trip_unknown_variants_with_unusual_names"
    ),
    "unknown_payload_rewritten": _b(
        UnknownPayloadKeysSortedStore, "test_round_trip_unknown_variant_stored_unchanged"
    ),
    "unencodable_text_sanitised": _b(
        UnencodableTextSanitisedStore, "test_round_trip_lone_surrogates_are_refused"
    ),
    "holes_returned_as_short_pages": _b(
        HolesReturnedAsShortPagesStore,
        "test_corruption_a_removed_entry_is_a_hole_not_a_shorter_page",
    ),
    "nesting_limit_too_strict": _b(
        NestingLimitTooStrictStore, "test_round_trip_nesting_at_the_limit_reads_back_equal"
    ),
    # limits and options
    "max_event_bytes_off_by_one": _b(
        MaxEventBytesOffByOneStore, "test_errors_event_of_exactly_max_event_bytes_is_stored"
    ),
    "event_size_not_checked": _b(
        EventSizeNotCheckedStore, "test_errors_event_too_large_is_refused"
    ),
    "option_in_url_ignored": _b(
        OptionInUrlIgnoredStore, "test_options_max_event_bytes_in_the_url", "url"
    ),
    "option_keyword_ignored": _b(
        OptionKeywordIgnoredStore, "test_options_max_event_bytes_as_a_keyword", "url"
    ),
    # rule 7: durability
    "loses_last_append_on_close": _b(
        LosesLastAppendOnCloseStore, "test_durability_events_survive_reopen", "shared"
    ),
    "idempotency_keys_not_persisted": _b(
        IdempotencyKeysNotPersistedStore,
        "test_durability_idempotency_keys_survive_reopen",
        "shared",
    ),
    "session_not_persisted": _b(
        SessionNotPersistedStore, "test_durability_seq_and_session_continue_after_reopen", "shared"
    ),
    "store_objects_do_not_share_storage": _b(
        StoreObjectsDoNotShareStorageStore,
        "test_durability_two_stores_on_one_storage_share_the_log",
        "shared",
    ),
    # rule 8: corruption
    "corrupt_entry_skipped": _b(SkipsCorruptStore, "test_corruption_is_never_skipped_when_paging"),
    "corruption_without_position": _b(
        CorruptionWithoutPositionStore,
        "test_corruption_raises_corrupt_event_error_naming_run_and_position",
    ),
    "corruption_reported_as_backend_error": _b(
        CorruptionAsBackendErrorStore,
        "test_corruption_raises_corrupt_event_error_naming_run_and_position",
    ),
    # rule 9: errors, and the lifecycle
    "driver_error_escapes": _b(
        DriverErrorEscapesStore, "test_errors_driver_failures_become_event_store_errors"
    ),
    "password_in_describe": _b(PasswordInDescribeStore, "test_errors_no_credential_in_repr", "url"),
    "password_in_error_messages": _b(
        PasswordInErrorMessagesStore, "test_errors_driver_failures_become_event_store_errors", "url"
    ),
    "last_seq_not_validated": _b(
        LastSeqNotValidatedStore, "test_errors_invalid_arguments_are_value_errors"
    ),
    "close_not_idempotent": _b(CloseNotIdempotentStore, "test_close_is_idempotent"),
    "closed_store_still_answers": _b(
        ClosedStoreStillAnswersStore, "test_errors_closed_store_raises_store_closed_error"
    ),
    "capabilities_differ_from_spec": _b(
        CapabilitiesDifferFromSpecStore,
        "test_capabilities_match_the_registered_backend_spec",
        "url",
    ),
    # subscribe
    "live_wake_ups_lost": _b(LosesWakeUpsStore, "test_subscribe_live_delivers_new_events"),
    "subscribe_drops_events_during_catch_up": _b(
        DropsDuringCatchUpStore, "test_subscribe_events_appended_during_catch_up_are_not_lost"
    ),
    "subscribe_repeats_resume_seq": _b(
        SubscribeRepeatsResumeSeqStore, "test_subscribe_resumes_from_any_seq"
    ),
    "until_terminal_ignored": _b(
        UntilTerminalIgnoredStore, "test_subscribe_until_terminal_ends_after_terminal_event"
    ),
    "until_terminal_resumed_waits_forever": _b(
        UntilTerminalResumedWaitsStore,
        "test_subscribe_until_terminal_resumed_after_the_terminal_event_ends",
    ),
    "slow_consumer_skipped_ahead": _b(
        SlowConsumerSkippedAheadStore, "test_subscribe_slow_consumer_misses_nothing"
    ),
    "other_store_appends_never_wake": _b(
        "SQLiteNeverPollsStore",
        "test_subscribe_live_sees_appends_of_another_store_object",
        "sqlite",
    ),
    "other_process_appends_never_wake": _b(
        "SQLiteProcessLocalWakeUpsStore",
        "test_subscribe_live_sees_appends_of_another_process",
        "sqlite",
    ),
    # list_runs
    "list_runs_wrong_order": _b(ListRunsWrongOrderStore, "test_list_runs_is_ordered_by_run_id"),
    "list_runs_ignores_session": _b(
        ListRunsIgnoresSessionStore, "test_list_runs_filters_by_session"
    ),
    "list_runs_ignores_after": _b(ListRunsIgnoresAfterStore, "test_list_runs_pages_with_after"),
    "list_runs_ignores_limit": _b(ListRunsIgnoresLimitStore, "test_list_runs_pages_with_after"),
    "list_runs_wrong_last_seq": _b(
        ListRunsWrongLastSeqStore, "test_list_runs_reports_last_seq_session_and_times"
    ),
    "list_runs_session_of_first_run_started": _b(
        ListRunsFirstSessionStore, "test_list_runs_follows_the_latest_run_started"
    ),
    "list_runs_first_emitted_at_wrong": _b(
        ListRunsFirstEmittedAtWrongStore,
        "test_list_runs_reports_the_times_of_the_first_and_last_envelope",
    ),
    "list_runs_last_emitted_at_wrong": _b(
        ListRunsLastEmittedAtWrongStore,
        "test_list_runs_reports_the_times_of_the_first_and_last_envelope",
    ),
    "list_runs_omits_runs_without_session": _b(
        ListRunsOmitsRunsWithoutSessionStore, "test_list_runs_includes_runs_without_session"
    ),
    # delete_run
    "delete_wrong_count": _b(
        DeleteWrongCountStore, "test_delete_run_returns_count_and_empties_the_log"
    ),
    "delete_unknown_run_not_zero": _b(
        DeleteUnknownRunNotZeroStore, "test_delete_unknown_run_returns_zero"
    ),
    "delete_leaves_session": _b(DeleteLeavesSessionStore, "test_delete_run_forgets_the_session"),
    "delete_leaves_idempotency_keys": _b(
        DeleteLeavesIdempotencyKeysStore, "test_delete_run_forgets_idempotency_keys"
    ),
    "delete_keeps_seq_counter": _b(
        DeleteKeepsSeqCounterStore, "test_delete_run_restarts_at_seq_one"
    ),
    "delete_removes_other_runs": _b(
        DeleteRemovesOtherRunsStore, "test_delete_run_leaves_other_runs_alone"
    ),
    "delete_leaves_run_in_list_runs": _b(
        DeleteLeavesRunInListRunsStore, "test_delete_run_removes_it_from_list_runs"
    ),
    # import
    "import_drops_sessions": _b(
        ImportDropsSessionsStore, "test_import_keeps_ids_seqs_sessions_and_times"
    ),
    "import_restamps_times": _b(
        ImportRestampsTimesStore, "test_import_keeps_ids_seqs_sessions_and_times"
    ),
    "import_refuses_resumed_copy": _b(
        ImportRefusesResumedCopyStore, "test_import_resumes_without_duplicates"
    ),
    "import_forgets_session": _b(
        ImportForgetsSessionStore, "test_import_continues_the_run_for_new_appends"
    ),
    "import_forgets_event_ids": _b(
        ImportForgetsEventIdsStore, "test_import_refuses_an_event_id_already_stored"
    ),
    # SQLite-based variants of rules above
    "sqlite_limit_capped_at_1000": _b(
        "SQLiteLimitCappedAt1000Store",
        "test_read_run_longer_than_max_limit_in_full_pages",
        "sqlite",
    ),
    "sqlite_list_runs_ignores_session": _b(
        "SQLiteListRunsIgnoresSessionStore", "test_list_runs_filters_by_session", "sqlite"
    ),
    "sqlite_last_seq_off_by_one": _b(
        "SQLiteLastSeqOffByOneStore", "test_sequence_starts_at_one_and_is_consecutive", "sqlite"
    ),
}
