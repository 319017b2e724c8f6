"""The agent runs ``eventstore demo`` writes: one of every event type, in a plausible order.

The main run asks two tools, one of which keeps failing until the runtime detects a
doom loop, loses context compaction on the way, and completes. Two short follow-up
runs in the same session end the other two ways: cancelled and failed. Event
timestamps follow a simulated clock so the replayed timeline reads like a real run.
"""

from __future__ import annotations

__all__ = ["DemoRuns", "demo_runs"]

import uuid
from dataclasses import dataclass

from whenever import Instant

from .. import _events as ev
from .._ids import RunId, SessionId
from .._time import format_time

_PROVIDER = "acme"
_MODEL = "acme-large-2"


@dataclass(frozen=True)
class DemoRuns:
    """The session, and each run's events in append order."""

    session_id: SessionId
    main: list[ev.AgentEvent]
    cancelled: list[ev.AgentEvent]
    failed: list[ev.AgentEvent]


class _Clock:
    """Hands out timestamps that advance by simulated milliseconds."""

    def __init__(self, start: Instant) -> None:
        self.now = start

    def after(self, ms: int) -> Instant:
        self.now = self.now.add(milliseconds=ms)
        return self.now


def _tool_call(
    r: RunId, t: _Clock, call_id: str, name: str, argument_chunks: list[str], arguments: object
) -> list[ev.AgentEvent]:
    events: list[ev.AgentEvent] = [
        ev.ToolCallStarted(run_id=r, call_id=call_id, tool_name=name, timestamp=t.after(30))
    ]
    events += [
        ev.ToolCallDelta(run_id=r, call_id=call_id, delta=chunk, timestamp=t.after(15))
        for chunk in argument_chunks
    ]
    call = ev.ToolCall(id=call_id, name=name, arguments=arguments)
    events.append(ev.ToolCallCompleted(run_id=r, call=call, timestamp=t.after(5)))
    return events


def _execution(
    r: RunId, t: _Clock, call_id: str, name: str, result: ev.Success | ev.Failure, ms: int
) -> list[ev.AgentEvent]:
    started = ev.ToolExecutionStarted(
        run_id=r, call_id=call_id, tool_name=name, timestamp=t.after(10)
    )
    finished = ev.ToolExecutionFinished(
        run_id=r,
        call_id=call_id,
        tool_name=name,
        result=result,
        duration_ms=ms,
        timestamp=t.after(ms),
    )
    committed = ev.ToolMessageCommitted(run_id=r, message_id=uuid.uuid4(), timestamp=t.after(2))
    return [started, finished, committed]


def _text(r: RunId, t: _Clock, chunks: list[str]) -> list[ev.AgentEvent]:
    return [ev.TextDelta(run_id=r, delta=chunk, timestamp=t.after(45)) for chunk in chunks]


def _main_run(r: RunId, s: SessionId, t: _Clock) -> list[ev.AgentEvent]:
    timeout = ev.Failure(error="rates.example.com timed out after 2000 ms")
    events: list[ev.AgentEvent] = [
        ev.RunStarted(run_id=r, session_id=s, provider=_PROVIDER, model=_MODEL, timestamp=t.now),
        ev.ContextBuilt(run_id=r, message_count=3, timestamp=t.after(12)),
        ev.ModelStarted(
            run_id=r, provider=_PROVIDER, model=_MODEL, iteration=1, timestamp=t.after(20)
        ),
        *_text(r, t, ["Let me check ", "the weather in Paris ", "and today's EUR/USD rate."]),
        *_tool_call(r, t, "call_1", "get_weather", ['{"city": ', '"Paris"}'], {"city": "Paris"}),
        *_tool_call(
            r,
            t,
            "call_2",
            "convert_currency",
            ['{"from": "EUR", ', '"to": "USD"}'],
            {"from": "EUR", "to": "USD"},
        ),
        ev.AssistantMessageCommitted(run_id=r, message_id=uuid.uuid4(), timestamp=t.after(3)),
        ev.UsageRecorded(
            run_id=r,
            usage=ev.TokenUsage(input_tokens=812, output_tokens=64, total_tokens=876),
            timestamp=t.after(1),
        ),
        *_execution(
            r, t, "call_1", "get_weather", ev.Success(output={"temp_c": 18, "sky": "cloudy"}), 340
        ),
        *_execution(r, t, "call_2", "convert_currency", timeout, 2000),
        ev.ModelStarted(
            run_id=r, provider=_PROVIDER, model=_MODEL, iteration=2, timestamp=t.after(25)
        ),
        *_tool_call(
            r,
            t,
            "call_3",
            "convert_currency",
            ['{"from": "EUR", "to": "USD"}'],
            {"from": "EUR", "to": "USD"},
        ),
        *_execution(r, t, "call_3", "convert_currency", timeout, 2000),
        ev.DoomLoopDetected(
            run_id=r,
            description="convert_currency failed twice with identical arguments",
            timestamp=t.after(4),
        ),
        ev.CompactionCircuitOpened(run_id=r, consecutive_failures=3, timestamp=t.after(6)),
        ev.ModelStarted(
            run_id=r, provider=_PROVIDER, model=_MODEL, iteration=3, timestamp=t.after(30)
        ),
        ev.CacheMetrics(
            run_id=r,
            cache_creation_input_tokens=0,
            cache_read_input_tokens=768,
            cached_input_tokens=768,
            timestamp=t.after(180),
        ),
        *_text(
            r,
            t,
            [
                "It is 18 °C and cloudy in Paris. ",
                "The exchange-rate service is down, ",
                "so I cannot quote EUR/USD now.",
            ],
        ),
        ev.AssistantMessageCommitted(run_id=r, message_id=uuid.uuid4(), timestamp=t.after(3)),
        ev.UsageRecorded(
            run_id=r,
            usage=ev.TokenUsage(
                input_tokens=1490,
                output_tokens=41,
                total_tokens=1531,
                cache_creation_input_tokens=0,
                cache_read_input_tokens=768,
                cached_input_tokens=768,
            ),
            timestamp=t.after(1),
        ),
        # A variant from a newer runtime: stored and replayed as raw JSON, never dropped.
        ev.UnknownEvent(
            name="PlanRevised",
            payload={
                "run_id": str(r),
                "steps": ["answer without rates"],
                "timestamp": format_time(t.after(2)),
            },
        ),
        ev.RunCompleted(
            run_id=r, finish_reason=ev.FinishReason.STOP, iterations=3, timestamp=t.after(5)
        ),
    ]
    return events


def demo_runs(start: Instant) -> DemoRuns:
    """Fresh runs of one new session, with timestamps starting at ``start``."""
    session = SessionId.new()
    t = _Clock(start)
    main = _main_run(RunId.new(), session, t)
    r = RunId.new()
    cancelled: list[ev.AgentEvent] = [
        ev.RunStarted(
            run_id=r, session_id=session, provider=_PROVIDER, model=_MODEL, timestamp=t.after(4000)
        ),
        ev.ContextBuilt(run_id=r, message_count=7, timestamp=t.after(10)),
        ev.ModelStarted(
            run_id=r, provider=_PROVIDER, model=_MODEL, iteration=1, timestamp=t.after(20)
        ),
        *_text(r, t, ["Drafting a packing list"]),
        ev.RunCancelled(run_id=r, timestamp=t.after(900)),
    ]
    r = RunId.new()
    failed: list[ev.AgentEvent] = [
        ev.RunStarted(
            run_id=r, session_id=session, provider=_PROVIDER, model=_MODEL, timestamp=t.after(3000)
        ),
        ev.ModelStarted(
            run_id=r, provider=_PROVIDER, model=_MODEL, iteration=1, timestamp=t.after(20)
        ),
        ev.RunFailed(
            run_id=r,
            error="provider overloaded (HTTP 529) after 3 retries",
            timestamp=t.after(6000),
        ),
    ]
    return DemoRuns(session, main, cancelled, failed)
