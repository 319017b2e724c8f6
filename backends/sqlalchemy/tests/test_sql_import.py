"""Verbatim copies into SQL stores (capability ``import``, used by ``eventstore copy``)."""

from __future__ import annotations

import asyncio

import pytest

import eventstore
from eventstore import ConcurrencyError, EventEnvelope, RunId, RunStarted, SessionId, TextDelta
from eventstore.copy import copy_runs, verify_runs


def _run_events(run_id: RunId, count: int) -> list[eventstore.AgentEvent]:
    events: list[eventstore.AgentEvent] = [
        TextDelta(run_id=run_id, delta="before"),
        RunStarted(run_id=run_id, session_id=SessionId.new(), provider="p", model="m"),
    ]
    events.extend(TextDelta(run_id=run_id, delta=str(i)) for i in range(count))
    return events


async def _copy_and_read(destination_url: str) -> tuple[list[EventEnvelope], list[EventEnvelope]]:
    run_id = RunId.new()
    async with (
        eventstore.open_store("memory://") as source,
        eventstore.open_store(destination_url) as destination,
    ):
        original = await source.append_batch(_run_events(run_id, 30))
        first = await copy_runs(source, destination, [run_id], page_size=7)
        again = await copy_runs(source, destination, [run_id], page_size=7)
        assert (first.events_copied, again.events_copied) == (32, 0)
        comparison = await verify_runs(source, destination, [run_id])
        assert all(result.identical for result in comparison), comparison
        copied = await destination.list_after(run_id, None, 1000)
        # The copy continues like the original: next seq, same session.
        following = await destination.append(TextDelta(run_id=run_id, delta="next"))
        assert following.seq == 33
        assert following.session_id == original[-1].session_id
    return original, copied


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_copy_keeps_ids_seqs_sessions_and_times(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(f"{backend}_url")
    original, copied = asyncio.run(_copy_and_read(url))
    assert copied == original


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_import_into_a_diverged_run_is_refused(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(f"{backend}_url")

    async def scenario() -> None:
        run_id = RunId.new()
        async with (
            eventstore.open_store("memory://") as source,
            eventstore.open_store(url) as destination,
        ):
            envelopes = await source.append_batch(_run_events(run_id, 3))
            await destination.append(TextDelta(run_id=run_id, delta="other"))
            with pytest.raises(ConcurrencyError):
                await destination.import_envelopes(envelopes)
            assert await destination.last_seq(run_id) == 1

    asyncio.run(scenario())
