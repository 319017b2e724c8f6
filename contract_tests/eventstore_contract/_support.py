"""Small builders and readers the suite modules share."""

from __future__ import annotations

__all__ = [
    "delta",
    "golden_events",
    "read_all",
    "started",
    "take",
]

import json
from collections.abc import AsyncIterator
from functools import cache
from importlib import resources
from typing import Any

from eventstore import (
    AgentEvent,
    EventEnvelope,
    EventStore,
    RunId,
    RunStarted,
    SessionId,
    TextDelta,
    decode_event,
)


def delta(run_id: RunId, index: int) -> TextDelta:
    """A small, recognisable event: ``TextDelta`` with text ``"<index>"``."""
    return TextDelta(run_id=run_id, delta=f"{index}")


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
    while len(out) < count:
        out.append(await anext(stream))
    return out


@cache
def _golden_lines() -> tuple[dict[str, Any], ...]:
    text = resources.files("eventstore_contract").joinpath("data/golden_events.jsonl").read_text()
    return tuple(json.loads(line) for line in text.splitlines() if line.strip())


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
