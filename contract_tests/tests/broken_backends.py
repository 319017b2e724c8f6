"""Deliberately broken backends, one classic bug each, to prove the suite bites.

Each is a small subclass of the in-memory backend; ``BROKEN`` maps a name to the
class and to the suite test named after the rule it breaks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any, NamedTuple

from eventstore import EventEnvelope, EventId, RunId
from eventstore.backend import PendingEvent, new_envelope
from eventstore.memory import MemoryEventStore


def _replace(envelope: EventEnvelope, **changes: Any) -> EventEnvelope:
    # Not model_copy: envelopes built by new_envelope have a frozen fields-set that
    # pydantic's model_copy cannot update.
    fields = {name: getattr(envelope, name) for name in EventEnvelope.model_fields}
    return new_envelope(**{**fields, **changes})


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


class FirstPageAgainStore(MemoryEventStore):
    """Ignores ``after_seq`` once past the first page."""

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        return await super()._list_after(run_id, 0, limit)


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


class LimitOffByOneStore(MemoryEventStore):
    """Returns one envelope fewer than ``limit``... except when that would be none."""

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        return await super()._list_after(run_id, after_seq, max(1, limit - 1))


class DuplicateOnRetryStore(MemoryEventStore):
    """Ignores ``event_id``: a retried append is stored a second time."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        fresh = [PendingEvent(p.event, EventId.new(), p.event_json) for p in events]
        out = await super()._append(run_id, fresh, expected_seq)
        # Report the caller's ids, as a store that just forgot to check them would.
        return [_replace(e, event_id=p.event_id) for e, p in zip(out, events, strict=True)]


class IgnoresExpectedSeqStore(MemoryEventStore):
    """Commits whatever ``expected_seq`` says."""

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        return await super()._append(run_id, events, None)


class SkipsCorruptStore(MemoryEventStore):
    """Silently leaves corrupt entries out of reads."""

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        run = self._runs.get(run_id)
        if run is None:
            return []
        page = run.envelopes[after_seq : after_seq + limit]
        return [e for e in page if e.seq not in run.corrupt]


class OutOfOrderStore(MemoryEventStore):
    """Returns each page newest first."""

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        return list(reversed(await super()._list_after(run_id, after_seq, limit)))


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
            if not page:
                await self._wait_for_append(run_id, last, 0)


class LosesWakeUpsStore(MemoryEventStore):
    """Never wakes a live subscriber: it catches up, then waits forever."""

    async def _wait_for_append(self, run_id: RunId, after_seq: int, idle_rounds: int) -> None:
        await asyncio.Event().wait()


class Broken(NamedTuple):
    """A broken backend and the suite test named after the rule it breaks."""

    store: type[MemoryEventStore]
    caught_by: str


BROKEN: dict[str, Broken] = {
    "gaps_or_duplicates_under_concurrency": Broken(
        RacySeqStore, "test_sequence_concurrent_appenders_get_consecutive_seqs"
    ),
    "paging_ignores_after_seq": Broken(
        FirstPageAgainStore, "test_pagination_visits_every_event_once"
    ),
    "session_not_stamped": Broken(
        NoSessionStore, "test_session_run_started_stamps_later_envelopes"
    ),
    "limit_off_by_one": Broken(LimitOffByOneStore, "test_pagination_returns_exactly_limit"),
    "duplicate_on_retry": Broken(
        DuplicateOnRetryStore, "test_idempotency_retry_returns_stored_envelope"
    ),
    "expected_seq_ignored": Broken(
        IgnoresExpectedSeqStore, "test_concurrency_expected_seq_mismatch_raises"
    ),
    "corrupt_entry_skipped": Broken(
        SkipsCorruptStore, "test_corruption_is_never_skipped_when_paging"
    ),
    "events_out_of_order": Broken(OutOfOrderStore, "test_read_returns_events_in_seq_order"),
    "live_wake_ups_lost": Broken(LosesWakeUpsStore, "test_subscribe_live_delivers_new_events"),
    "subscribe_drops_events_during_catch_up": Broken(
        DropsDuringCatchUpStore, "test_subscribe_events_appended_during_catch_up_are_not_lost"
    ),
}
