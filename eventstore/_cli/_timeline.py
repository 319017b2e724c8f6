"""Renders envelopes read back from a store as a readable run timeline (rich)."""

from __future__ import annotations

__all__ = ["RunDigest", "digest", "summarize", "timeline_table"]

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import _events as ev

if TYPE_CHECKING:
    from rich.table import Table
    from whenever import Instant

    from .._envelope import EventEnvelope

_STYLES = {
    "RunStarted": "bold cyan",
    "RunCompleted": "bold green",
    "RunFailed": "bold red",
    "RunCancelled": "bold yellow",
    "DoomLoopDetected": "red",
    "CompactionCircuitOpened": "red",
    "TextDelta": "white",
    "UsageRecorded": "magenta",
    "CacheMetrics": "magenta",
}


def _short(value: object) -> str:
    # UUIDv7s made close together share their leading (time) digits; the tail differs.
    return "…" + str(value)[-8:]


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _usage(usage: ev.TokenUsage) -> str:
    text = f"{usage.input_tokens} in / {usage.output_tokens} out / {usage.total_tokens} total"
    if usage.cache_read_input_tokens is not None:
        text += f" (cache read {usage.cache_read_input_tokens}"
        text += f", created {usage.cache_creation_input_tokens or 0})"
    return text


def summarize(event: ev.AgentEvent) -> str:
    """One line saying what ``event`` means."""
    match event:
        case ev.RunStarted():
            return f"session {_short(event.session_id)}, {event.provider}/{event.model}"
        case ev.ContextBuilt():
            return f"{event.message_count} messages in context"
        case ev.ModelStarted():
            return f"iteration {event.iteration}: {event.provider}/{event.model}"
        case ev.TextDelta():
            return repr(event.delta)
        case ev.ToolCallStarted() | ev.ToolExecutionStarted():
            return f"{event.tool_name} [{event.call_id}]"
        case ev.ToolCallDelta():
            return f"[{event.call_id}] += {event.delta!r}"
        case ev.ToolCallCompleted():
            return f"{event.call.name}({_json(event.call.arguments)}) [{event.call.id}]"
        case ev.ToolExecutionFinished():
            if isinstance(event.result, ev.Success):
                outcome = f"ok -> {_json(event.result.output)}"
            else:
                outcome = f"FAILED: {event.result.error}"
            return f"{event.tool_name} [{event.call_id}] {outcome} ({event.duration_ms} ms)"
        case ev.AssistantMessageCommitted() | ev.ToolMessageCommitted():
            return f"message {_short(event.message_id)}"
        case ev.UsageRecorded():
            return _usage(event.usage)
        case ev.CacheMetrics():
            return (
                f"cache read {event.cache_read_input_tokens}, created "
                f"{event.cache_creation_input_tokens}, cached {event.cached_input_tokens}"
            )
        case ev.RunCompleted():
            reason = event.finish_reason
            if isinstance(reason, ev.FinishReason):
                shown = reason.value
            elif isinstance(reason, ev.UnknownFinishReason):
                shown = reason.unknown
            else:  # a reason kept as the text it was given
                shown = reason
            return f"finished ({shown}) after {event.iterations} iteration(s)"
        case ev.RunFailed():
            return event.error
        case ev.RunCancelled():
            return "cancelled"
        case ev.DoomLoopDetected():
            return event.description
        case ev.CompactionCircuitOpened():
            return f"compaction off after {event.consecutive_failures} consecutive failures"
        case ev.UnknownEvent():
            fields = ", ".join(event.payload) if isinstance(event.payload, dict) else "?"
            return f"unknown variant, kept as raw JSON ({fields})"


def _timestamp(event: ev.AgentEvent) -> Instant | None:
    return event.timestamp


def timeline_table(pages: Sequence[Sequence[EventEnvelope]], title: str) -> Table:
    """A table with one row per envelope; the first row of each page shows its number."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("page", justify="right", style="dim")
    table.add_column("seq", justify="right")
    table.add_column("+time", justify="right", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("summary", overflow="fold")
    first = next((_timestamp(e.event) for page in pages for e in page), None)
    for number, page in enumerate(pages, start=1):
        for index, envelope in enumerate(page):
            stamp = _timestamp(envelope.event)
            offset = f"{(stamp - first).total('seconds'):.3f}s" if stamp and first else "?"
            kind = envelope.event.event_type
            table.add_row(
                str(number) if index == 0 else "",
                str(envelope.seq),
                offset,
                Text(kind, style=_STYLES.get(kind, "")),
                Text(summarize(envelope.event)),
            )
        if number < len(pages):
            table.add_section()
    return table


@dataclass
class RunDigest:
    """What a run amounted to: its text, tool calls, token usage and how it ended."""

    text_by_iteration: dict[int, str] = field(default_factory=dict)
    tool_calls: list[tuple[str, str, str, int | None, float | None]] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cache_read_tokens: int = 0
    cache_created_tokens: int = 0
    status: str = "still running"


def digest(envelopes: Sequence[EventEnvelope]) -> RunDigest:
    """Fold a run's envelopes into a :class:`RunDigest`.

    Tool calls carry their reported ``duration_ms`` and the time measured between
    their start and finish events.
    """
    result = RunDigest()
    iteration = 0
    started: dict[str, Instant] = {}
    for envelope in envelopes:
        event = envelope.event
        match event:
            case ev.ModelStarted():
                iteration = event.iteration
            case ev.TextDelta():
                result.text_by_iteration[iteration] = (
                    result.text_by_iteration.get(iteration, "") + event.delta
                )
            case ev.ToolExecutionStarted():
                started[event.call_id] = event.timestamp
            case ev.ToolExecutionFinished():
                begin = started.get(event.call_id)
                measured = (event.timestamp - begin).total("seconds") if begin else None
                status = "ok" if isinstance(event.result, ev.Success) else "failed"
                result.tool_calls.append(
                    (event.call_id, event.tool_name, status, event.duration_ms, measured)
                )
            case ev.UsageRecorded():
                usage = event.usage
                result.input_tokens += usage.input_tokens
                result.output_tokens += usage.output_tokens
                result.total_tokens += usage.total_tokens
                result.cache_read_tokens += usage.cache_read_input_tokens or 0
                result.cache_created_tokens += usage.cache_creation_input_tokens or 0
            case ev.RunCompleted() | ev.RunFailed() | ev.RunCancelled():
                result.status = f"{event.event_type}: {summarize(event)}"
    return result
