"""What a store returns, :class:`EventEnvelope` and :class:`RunInfo`, and how it is built.

Building envelopes is written once, here, for every backend: :func:`stamp` gives an
append's seqs, session ids and commit time to its :class:`PendingEvent` values, and
the resulting :class:`Stamped` batch yields both the envelopes to return and the
envelope JSON to store.
"""

from __future__ import annotations

__all__ = [
    "EventEnvelope",
    "ImportBatch",
    "PendingEvent",
    "RunInfo",
    "Stamped",
    "decode_envelope",
    "encode_envelope",
    "envelope_json",
    "new_envelope",
    "stamp",
    "stamp_sessions",
]

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

from ._events import U64_MAX, AgentEvent, RunStarted, encode_event
from ._ids import EventId, RunId, SessionId
from ._time import Instant, Timestamp, format_time, to_instant, utc_now


class EventEnvelope(BaseModel):
    """One stored event with the envelope the store gave it.

    The JSON form (``model_dump_json``) is behest's ``RuntimeEventEnvelope`` and the
    storage format of every text-storing backend, so a run copied between backends
    keeps its event ids, seqs and times.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: EventId
    seq: Annotated[int, Field(strict=True, ge=1, le=U64_MAX)]
    run_id: RunId
    session_id: SessionId | None
    event: AgentEvent
    emitted_at: Timestamp


class RunInfo(BaseModel):
    """Summary of one run's log, as returned by ``EventStore.list_runs``."""

    model_config = ConfigDict(frozen=True)

    run_id: RunId
    session_id: SessionId | None
    last_seq: int
    first_emitted_at: Timestamp | None
    last_emitted_at: Timestamp | None


_ALL_FIELDS: Final = frozenset(EventEnvelope.model_fields)
_new = object.__new__
_set = object.__setattr__


def new_envelope(
    *,
    event_id: EventId,
    seq: int,
    run_id: RunId,
    session_id: SessionId | None,
    event: AgentEvent,
    emitted_at: Instant | datetime,
) -> EventEnvelope:
    """Build an envelope from values that are already valid, skipping validation.

    For backends, on the append path: the event was validated when it was built and
    the store produced the rest. It does what ``model_construct`` does, at a third
    of the cost, which matters at 100,000 appends per second. ``emitted_at`` may be
    an aware ``datetime`` (converted), as backends written for 0.1 pass.
    """
    if type(emitted_at) is not Instant:
        emitted_at = to_instant(emitted_at)
    envelope = _new(EventEnvelope)
    _set(
        envelope,
        "__dict__",
        {
            "event_id": event_id,
            "seq": seq,
            "run_id": run_id,
            "session_id": session_id,
            "event": event,
            "emitted_at": emitted_at,
        },
    )
    # A fresh (mutable) set: pydantic's model_copy(update=...) updates it in place.
    _set(envelope, "__pydantic_fields_set__", set(_ALL_FIELDS))
    _set(envelope, "__pydantic_extra__", None)
    _set(envelope, "__pydantic_private__", None)
    return envelope


def decode_envelope(data: str | bytes) -> EventEnvelope:
    """Parse envelope JSON; raises ``pydantic.ValidationError`` when malformed."""
    return EventEnvelope.model_validate_json(data)


def encode_envelope(envelope: EventEnvelope) -> str:
    """The envelope's JSON exactly as serde writes behest's ``RuntimeEventEnvelope``.

    The storage form of every text-storing backend; ``model_dump_json`` gives the
    same fields but not serde's bytes for every float.
    """
    return envelope_json(
        event_id=envelope.event_id,
        seq=envelope.seq,
        run_id=envelope.run_id,
        session_id=envelope.session_id,
        event_json=encode_event(envelope.event),
        emitted_at=envelope.emitted_at,
    )


def envelope_json(
    *,
    event_id: EventId,
    seq: int,
    run_id: RunId,
    session_id: SessionId | None,
    event_json: str,
    emitted_at: Instant,
) -> str:
    """Envelope JSON around an already encoded event, without re-encoding the event.

    Backends that store text serialize each event once (the store base class does it
    to check its size) and wrap it here, which is several times cheaper than dumping
    the whole envelope model again.
    """
    run = f'"run_id":"{run_id}"'
    return _envelope_text(event_id, seq, run, session_id, event_json, format_time(emitted_at))


def _envelope_text(
    event_id: EventId, seq: int, run: str, session_id: SessionId | None, event: str, stamp: str
) -> str:
    session = "null" if session_id is None else f'"{session_id}"'
    return (
        f'{{"event_id":"{event_id}","seq":{seq},{run},'
        f'"session_id":{session},"event":{event},"emitted_at":"{stamp}"}}'
    )


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An event on its way into a backend: validated, with its id and its JSON.

    ``event_json`` is the event's externally tagged JSON, encoded exactly once by
    the base class (which also checked that it reads back equal); text-storing
    backends store it (through :meth:`Stamped.texts`) rather than re-encode.
    """

    event: AgentEvent
    event_id: EventId
    event_json: str


def stamp_sessions(
    current: SessionId | None, events: Sequence[PendingEvent]
) -> tuple[list[SessionId | None], SessionId | None]:
    """Session ids for consecutive events of a run, and the run's session afterwards.

    A ``RunStarted`` carries and sets its own session id; every other event takes
    the run's session at that point (``None`` before any ``RunStarted``). Rule 2 of
    the contract; :func:`stamp` applies it for you.
    """
    sessions: list[SessionId | None] = []
    for pending in events:
        event = pending.event
        if type(event) is RunStarted:
            current = event.session_id
        sessions.append(current)
    return sessions, current


@dataclass(slots=True)  # not frozen: a frozen __init__ costs a microsecond per append
class Stamped:
    """One append's events with the envelope fields the store gave them.

    Build it with :func:`stamp` inside the backend's atomic step, once the run's last
    seq and session are known; store :meth:`texts` (or the fields), and return
    :meth:`envelopes` once it committed.
    """

    run_id: RunId
    events: Sequence[PendingEvent]
    #: The seq of ``events[0]``; the others follow consecutively.
    first_seq: int
    #: The session id of each event's envelope (rule 2).
    session_ids: list[SessionId | None]
    #: The run's session id after this append (what to record for the run).
    session_after: SessionId | None
    #: The commit time, the same for every envelope of the append.
    emitted_at: Instant

    def envelopes(self) -> list[EventEnvelope]:
        """The envelopes to return from ``_append``."""
        run_id, emitted_at = self.run_id, self.emitted_at
        return [
            new_envelope(
                event_id=pending.event_id,
                seq=seq,
                run_id=run_id,
                session_id=session_id,
                event=pending.event,
                emitted_at=emitted_at,
            )
            for pending, seq, session_id in self._numbered()
        ]

    def texts(self) -> list[str]:
        """The envelope JSON of each event, the storage form of text-storing backends."""
        run, stamp = f'"run_id":"{self.run_id}"', format_time(self.emitted_at)
        return [
            _envelope_text(pending.event_id, seq, run, session_id, pending.event_json, stamp)
            for pending, seq, session_id in self._numbered()
        ]

    def _numbered(self) -> Iterator[tuple[PendingEvent, int, SessionId | None]]:
        return zip(self.events, itertools.count(self.first_seq), self.session_ids, strict=False)


def stamp(
    run_id: RunId,
    events: Sequence[PendingEvent],
    *,
    last_seq: int,
    session_id: SessionId | None,
    emitted_at: Instant | datetime | None = None,
) -> Stamped:
    """Give ``events`` the seqs after ``last_seq``, their session ids and a commit time.

    ``last_seq`` and ``session_id`` are the run's last seq and session as read in the
    same atomic step that stores the events; ``emitted_at`` defaults to now.
    """
    sessions, after = stamp_sessions(session_id, events)
    return Stamped(
        run_id=run_id,
        events=events,
        first_seq=last_seq + 1,
        session_ids=sessions,
        session_after=after,
        emitted_at=utc_now() if emitted_at is None else to_instant(emitted_at),
    )


@dataclass(frozen=True, slots=True)
class ImportBatch:
    """Envelopes copied from another store, on their way into a backend's ``_import``.

    The base class has checked them: one run, distinct event ids, consecutive seqs
    from ``expected_seq + 1``, none of them already stored equal. ``texts`` holds each
    envelope's finished JSON, the storage form of text-storing backends.
    """

    run_id: RunId
    envelopes: Sequence[EventEnvelope]
    texts: Sequence[str]
    #: The run's last seq when the copy was planned; ``_import`` must re-check it.
    expected_seq: int

    @property
    def session_after(self) -> SessionId | None:
        """The run's session id after the import: the last envelope's."""
        return self.envelopes[-1].session_id


def envelope_texts(envelopes: Sequence[EventEnvelope], event_jsons: Sequence[str]) -> list[str]:
    """Envelope JSON for finished envelopes (a copy), keeping ids, seqs, sessions, times."""
    return [
        envelope_json(
            event_id=envelope.event_id,
            seq=envelope.seq,
            run_id=envelope.run_id,
            session_id=envelope.session_id,
            event_json=event_json,
            emitted_at=envelope.emitted_at,
        )
        for envelope, event_json in zip(envelopes, event_jsons, strict=True)
    ]
