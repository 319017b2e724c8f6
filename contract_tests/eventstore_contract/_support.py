"""Small builders and readers the suite modules share."""

from __future__ import annotations

__all__ = [
    "delta",
    "golden_events",
    "hang_notes",
    "note_stalled_stream",
    "read_all",
    "started",
    "take",
]

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from importlib import resources
from typing import Any

from whenever import Instant

from eventstore import (
    AgentEvent,
    EventEnvelope,
    EventStore,
    RunId,
    RunStarted,
    SessionId,
    TextDelta,
)
from eventstore.events import decode_event

# What the test was waiting for when its time guard fired: the guard's failure message
# lists these, so a lost event reads "delivered seqs 1-3" rather than a bare hang.
_hang_notes: ContextVar[list[str] | None] = ContextVar(
    "eventstore_contract_hang_notes", default=None
)


@contextmanager
def hang_notes() -> Iterator[list[str]]:
    """Collect :func:`note_stalled_stream` notes made in this context (one test body)."""
    notes: list[str] = []
    token = _hang_notes.set(notes)
    try:
        yield notes
    finally:
        _hang_notes.reset(token)


def _seq_ranges(seqs: Sequence[int]) -> str:
    if not seqs:
        return "none"
    parts: list[str] = []
    start = prev = seqs[0]
    for seq in [*seqs[1:], None]:
        if seq is not None and seq == prev + 1:
            prev = seq
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if seq is not None:
            start = prev = seq
    return ", ".join(parts)


def note_stalled_stream(received: Sequence[EventEnvelope], wanted: int | None) -> None:
    """Record, for the time guard's message, what a stalled subscription had delivered."""
    notes = _hang_notes.get()
    if notes is None:
        return
    of = "" if wanted is None else f" of the {wanted} awaited"
    notes.append(
        f"a subscription had delivered {len(received)} envelope(s){of}, "
        f"seqs {_seq_ranges([e.seq for e in received])}, and was waiting for the next"
    )


_EPOCH = Instant.from_utc(2026, 1, 1)


def delta(run_id: RunId, index: int) -> TextDelta:
    """A small, recognisable event: ``TextDelta`` with text ``"<index>"``.

    Its timestamp is fixed by ``index`` too, so two calls give equal events: a retry
    of an append must send the same event (rule 4).
    """
    return TextDelta(run_id=run_id, delta=f"{index}", timestamp=_EPOCH.add(nanoseconds=index))


def started(run_id: RunId, session_id: SessionId | None = None) -> RunStarted:
    """A ``RunStarted`` of ``session_id`` (a fresh session when omitted)."""
    return RunStarted(
        run_id=run_id,
        session_id=session_id or SessionId.new(),
        provider="contract",
        model="model-under-test",
    )


async def read_all(store: EventStore, run_id: RunId, *, page: int = 1000) -> list[EventEnvelope]:
    """Every envelope of the run, paging with the last seq seen."""
    out: list[EventEnvelope] = []
    after = 0
    while True:
        batch = await store.list_after(run_id, after, page)
        if not batch:
            return out
        out.extend(batch)
        if batch[-1].seq <= after:
            # A store that does not move forward would loop forever; what it
            # returned is already wrong, so hand it to the caller's assertions.
            return out
        after = batch[-1].seq


async def take(stream: AsyncIterator[EventEnvelope], count: int) -> list[EventEnvelope]:
    """The next ``count`` envelopes of ``stream``."""
    out: list[EventEnvelope] = []
    try:
        while len(out) < count:
            out.append(await anext(stream))
    except asyncio.CancelledError:
        note_stalled_stream(out, count)
        raise
    return out


@cache
def _golden_lines() -> tuple[dict[str, Any], ...]:
    text = resources.files("eventstore_contract").joinpath("data/golden_events.jsonl").read_text()
    return tuple(json.loads(line) for line in text.splitlines() if line.strip())


@cache
def _serde_lines() -> tuple[str, ...]:
    data = resources.files("eventstore_contract").joinpath("data/serde_events.jsonl")
    # Split on "\n" only: str.splitlines() would also split inside strings (U+2028).
    return tuple(line for line in data.read_text(encoding="utf-8").split("\n") if line)


def serde_event_lines(run_id: RunId, session_id: SessionId) -> list[str]:
    """Events as serde and chrono wrote them (every variant, 0 to 9 fraction digits).

    Each line's run and session ids are replaced by the given ones in the text, so
    the rest of each line stays byte for byte what serde wrote.
    """
    lines = []
    for line in _serde_lines():
        ((_name, payload),) = json.loads(line).items()
        line = line.replace(payload["run_id"], str(run_id))
        if "session_id" in payload:
            line = line.replace(payload["session_id"], str(session_id))
        lines.append(line)
    return lines


def golden_events(run_id: RunId, session_id: SessionId) -> list[AgentEvent]:
    """The golden vectors (every variant, as the Rust runtime writes them) for one run.

    The vectors share one run and session id; they are replaced by the given ones
    so that tests stay isolated in a shared store.
    """
    events: list[AgentEvent] = []
    for line in _golden_lines():
        ((name, payload),) = line.items()
        payload = {**payload, "run_id": str(run_id)}
        if "session_id" in payload:
            payload["session_id"] = str(session_id)
        events.append(decode_event(json.dumps({name: payload})))
    return events
