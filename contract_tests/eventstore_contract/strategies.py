"""Hypothesis strategies for eventstore values: ids, every event variant, whole runs.

Every event strategy takes the ``run_id`` the events belong to (tests pass a fresh
one so that runs never collide in a shared store); without one, an id is drawn.
Text includes unicode beyond the BMP and JSON-hostile characters (quotes,
backslashes, NUL and other controls, line and paragraph separators); sizes are
bounded so examples stay cheap to store.
"""

from __future__ import annotations

__all__ = [
    "assistant_message_committed",
    "cache_metrics",
    "compaction_circuit_opened",
    "context_built",
    "counts",
    "counts32",
    "EDGE_NUMBERS",
    "EDGE_TIMES",
    "doom_loop_detected",
    "event_ids",
    "events",
    "json_values",
    "model_started",
    "non_terminal_events",
    "run_cancelled",
    "run_completed",
    "run_failed",
    "run_ids",
    "run_started",
    "runs",
    "session_ids",
    "terminal_events",
    "text_delta",
    "texts",
    "timestamps",
    "token_usages",
    "tool_call_completed",
    "tool_call_delta",
    "tool_call_started",
    "tool_execution_finished",
    "tool_execution_started",
    "tool_message_committed",
    "unknown_events",
    "usage_recorded",
]

from collections.abc import Callable
from typing import Final

from hypothesis import strategies as st
from pydantic import JsonValue
from whenever import Instant

from eventstore import (
    AgentEvent,
    AssistantMessageCommitted,
    CacheMetrics,
    CompactionCircuitOpened,
    ContextBuilt,
    DoomLoopDetected,
    EventId,
    Failure,
    FinishReason,
    ModelStarted,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunId,
    RunStarted,
    SessionId,
    Success,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
    ToolExecutionFinished,
    ToolExecutionStarted,
    ToolMessageCommitted,
    UnknownEvent,
    UnknownFinishReason,
    UsageRecorded,
)
from eventstore.events import EARLIEST_TIME, EVENT_TYPES, LATEST_TIME, U32_MAX, U64_MAX

#: Characters that break naive JSON, SQL or line-based storage.
HOSTILE_CHARACTERS: Final = (
    '"',
    "\\",
    "\x00",
    "\n",
    "\r",
    "\t",
    "\x1b",
    "\u2028",
    "\u2029",
    "\ufeff",
    "'",
    "%",
    "😀",
)
_KNOWN_NAMES: Final = frozenset(cls.__name__ for cls in EVENT_TYPES)


def texts(*, max_size: int = 40) -> st.SearchStrategy[str]:
    """Unicode text (no lone surrogates) rich in JSON-hostile characters."""
    return st.text(
        st.one_of(st.sampled_from(HOSTILE_CHARACTERS), st.characters(codec="utf-8")),
        max_size=max_size,
    )


def counts(*, max_value: int = U64_MAX) -> st.SearchStrategy[int]:
    """Non-negative integers as Rust's ``u64`` counters (or ``max_value``) hold them.

    The edges (past 2**53, where doubles lose integers, and the type's maximum) are
    drawn as often as any other value.
    """
    edges = sorted({v for v in (0, 1, 2**53 + 1, 2**63 - 1, 2**63, max_value) if v <= max_value})
    return st.one_of(st.sampled_from(edges), st.integers(min_value=0, max_value=max_value))


def counts32() -> st.SearchStrategy[int]:
    """Integers as a Rust ``u32`` holds them (``consecutive_failures``)."""
    return counts(max_value=U32_MAX)


_NANOS: Final = 1_000_000_000
_MIN_NANOS: Final = EARLIEST_TIME.timestamp(unit="nanosecond")
_MAX_NANOS: Final = LATEST_TIME.timestamp(unit="nanosecond")
#: Times chrono writes with 0, 3, 6 and 9 fraction digits, and both ends of the range.
EDGE_TIMES: Final[tuple[Instant, ...]] = (
    EARLIEST_TIME,
    LATEST_TIME,
    Instant.from_timestamp(0, unit="nanosecond"),
    Instant.from_timestamp(1_764_152_130_200_000_000, unit="nanosecond"),
    Instant.from_timestamp(1_764_152_130_123_456_000, unit="nanosecond"),
    Instant.from_timestamp(1_764_152_130_123_456_789, unit="nanosecond"),
    Instant.from_timestamp(1_764_152_130_000_000_001, unit="nanosecond"),
)


def timestamps() -> st.SearchStrategy[Instant]:
    """UTC instants with nanoseconds, as the Rust runtime stamps events.

    Mostly around now; also anywhere in years 1 to 9999, and the edges (both ends of
    the range, each number of fraction digits chrono writes).
    """
    recent = st.integers(min_value=0, max_value=7_258_118_400 * _NANOS)  # 1970 to 2200
    anywhere = st.integers(min_value=_MIN_NANOS, max_value=_MAX_NANOS)
    return st.one_of(
        st.sampled_from(EDGE_TIMES),
        st.one_of(recent, anywhere).map(lambda n: Instant.from_timestamp(n, unit="nanosecond")),
    )


#: Numbers JSON layers get wrong, drawn as often as any other kind of scalar: integers
#: past 2**53 (doubles lose them) up to the i64/u64 edges, and floats that print or
#: parse badly (0.1 + 0.2, subnormals, -0.0, the largest double).
EDGE_NUMBERS: Final[tuple[int | float, ...]] = (
    2**53 + 1,
    -(2**53) - 1,
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    0.1 + 0.2,
    1e-320,
    5e-324,
    -0.0,
    1.7976931348623157e308,
    -1.7976931348623157e308,
)


def json_values(*, max_leaves: int = 8) -> st.SearchStrategy[JsonValue]:
    """Arbitrary JSON values (finite floats, bounded nesting) as tool data carries."""
    scalars: st.SearchStrategy[JsonValue] = st.one_of(
        st.none(),
        st.booleans(),
        st.sampled_from(EDGE_NUMBERS),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        texts(max_size=20),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(texts(max_size=10), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def run_ids() -> st.SearchStrategy[RunId]:
    """Run ids (any UUID; deterministic, so use fresh ids to isolate stored runs)."""
    return st.uuids().map(RunId.parse)


def session_ids() -> st.SearchStrategy[SessionId]:
    """Session ids."""
    return st.uuids().map(SessionId.parse)


def event_ids() -> st.SearchStrategy[EventId]:
    """Event ids."""
    return st.uuids().map(EventId.parse)


def _run_id(run_id: RunId | None) -> st.SearchStrategy[RunId]:
    return run_ids() if run_id is None else st.just(run_id)


def run_started(
    run_id: RunId | None = None, *, session_id: SessionId | None = None
) -> st.SearchStrategy[RunStarted]:
    """``RunStarted`` events (of ``session_id`` when given)."""
    return st.builds(
        RunStarted,
        run_id=_run_id(run_id),
        session_id=session_ids() if session_id is None else st.just(session_id),
        provider=texts(max_size=12),
        model=texts(max_size=12),
        timestamp=timestamps(),
    )


def context_built(run_id: RunId | None = None) -> st.SearchStrategy[ContextBuilt]:
    """``ContextBuilt`` events."""
    return st.builds(
        ContextBuilt, run_id=_run_id(run_id), message_count=counts(), timestamp=timestamps()
    )


def model_started(run_id: RunId | None = None) -> st.SearchStrategy[ModelStarted]:
    """``ModelStarted`` events."""
    return st.builds(
        ModelStarted,
        run_id=_run_id(run_id),
        provider=texts(max_size=12),
        model=texts(max_size=12),
        iteration=counts(),
        timestamp=timestamps(),
    )


def text_delta(run_id: RunId | None = None) -> st.SearchStrategy[TextDelta]:
    """``TextDelta`` events."""
    return st.builds(TextDelta, run_id=_run_id(run_id), delta=texts(), timestamp=timestamps())


def tool_call_started(run_id: RunId | None = None) -> st.SearchStrategy[ToolCallStarted]:
    """``ToolCallStarted`` events."""
    return st.builds(
        ToolCallStarted,
        run_id=_run_id(run_id),
        call_id=texts(max_size=12),
        tool_name=texts(max_size=12),
        timestamp=timestamps(),
    )


def tool_call_delta(run_id: RunId | None = None) -> st.SearchStrategy[ToolCallDelta]:
    """``ToolCallDelta`` events."""
    return st.builds(
        ToolCallDelta,
        run_id=_run_id(run_id),
        call_id=texts(max_size=12),
        delta=texts(),
        timestamp=timestamps(),
    )


def tool_call_completed(run_id: RunId | None = None) -> st.SearchStrategy[ToolCallCompleted]:
    """``ToolCallCompleted`` events with arbitrary JSON arguments."""
    call = st.builds(
        ToolCall, id=texts(max_size=12), name=texts(max_size=12), arguments=json_values()
    )
    return st.builds(ToolCallCompleted, run_id=_run_id(run_id), call=call, timestamp=timestamps())


def tool_execution_started(run_id: RunId | None = None) -> st.SearchStrategy[ToolExecutionStarted]:
    """``ToolExecutionStarted`` events."""
    return st.builds(
        ToolExecutionStarted,
        run_id=_run_id(run_id),
        call_id=texts(max_size=12),
        tool_name=texts(max_size=12),
        timestamp=timestamps(),
    )


def tool_execution_finished(
    run_id: RunId | None = None,
) -> st.SearchStrategy[ToolExecutionFinished]:
    """``ToolExecutionFinished`` events, successful or failed."""
    result = st.one_of(st.builds(Success, output=json_values()), st.builds(Failure, error=texts()))
    return st.builds(
        ToolExecutionFinished,
        run_id=_run_id(run_id),
        call_id=texts(max_size=12),
        tool_name=texts(max_size=12),
        result=result,
        duration_ms=counts(),
        timestamp=timestamps(),
    )


def assistant_message_committed(
    run_id: RunId | None = None,
) -> st.SearchStrategy[AssistantMessageCommitted]:
    """``AssistantMessageCommitted`` events."""
    return st.builds(
        AssistantMessageCommitted,
        run_id=_run_id(run_id),
        message_id=st.uuids(),
        timestamp=timestamps(),
    )


def tool_message_committed(run_id: RunId | None = None) -> st.SearchStrategy[ToolMessageCommitted]:
    """``ToolMessageCommitted`` events."""
    return st.builds(
        ToolMessageCommitted, run_id=_run_id(run_id), message_id=st.uuids(), timestamp=timestamps()
    )


def token_usages() -> st.SearchStrategy[TokenUsage]:
    """Token usage, with each optional cache field present or absent."""
    optional = st.none() | counts()
    return st.builds(
        TokenUsage,
        input_tokens=counts(),
        output_tokens=counts(),
        total_tokens=counts(),
        cache_creation_input_tokens=optional,
        cache_read_input_tokens=optional,
        cached_input_tokens=optional,
    )


def usage_recorded(run_id: RunId | None = None) -> st.SearchStrategy[UsageRecorded]:
    """``UsageRecorded`` events."""
    return st.builds(
        UsageRecorded, run_id=_run_id(run_id), usage=token_usages(), timestamp=timestamps()
    )


def cache_metrics(run_id: RunId | None = None) -> st.SearchStrategy[CacheMetrics]:
    """``CacheMetrics`` events."""
    return st.builds(
        CacheMetrics,
        run_id=_run_id(run_id),
        cache_creation_input_tokens=counts(),
        cache_read_input_tokens=counts(),
        cached_input_tokens=counts(),
        timestamp=timestamps(),
    )


def run_completed(run_id: RunId | None = None) -> st.SearchStrategy[RunCompleted]:
    """``RunCompleted`` events with a known or an unknown finish reason."""
    reason = st.one_of(
        st.sampled_from(FinishReason), st.builds(UnknownFinishReason, unknown=texts(max_size=12))
    )
    return st.builds(
        RunCompleted,
        run_id=_run_id(run_id),
        finish_reason=reason,
        iterations=counts(),
        timestamp=timestamps(),
    )


def run_failed(run_id: RunId | None = None) -> st.SearchStrategy[RunFailed]:
    """``RunFailed`` events."""
    return st.builds(RunFailed, run_id=_run_id(run_id), error=texts(), timestamp=timestamps())


def run_cancelled(run_id: RunId | None = None) -> st.SearchStrategy[RunCancelled]:
    """``RunCancelled`` events."""
    return st.builds(RunCancelled, run_id=_run_id(run_id), timestamp=timestamps())


def doom_loop_detected(run_id: RunId | None = None) -> st.SearchStrategy[DoomLoopDetected]:
    """``DoomLoopDetected`` events."""
    return st.builds(
        DoomLoopDetected, run_id=_run_id(run_id), description=texts(), timestamp=timestamps()
    )


def compaction_circuit_opened(
    run_id: RunId | None = None,
) -> st.SearchStrategy[CompactionCircuitOpened]:
    """``CompactionCircuitOpened`` events."""
    return st.builds(
        CompactionCircuitOpened,
        run_id=_run_id(run_id),
        consecutive_failures=counts32(),
        timestamp=timestamps(),
    )


def _unknown_name() -> st.SearchStrategy[str]:
    return st.from_regex(r"[A-Z][A-Za-z0-9]{0,24}", fullmatch=True).filter(
        lambda name: name not in _KNOWN_NAMES
    )


def unknown_events(run_id: RunId | None = None) -> st.SearchStrategy[UnknownEvent]:
    """Events of variants no version knows: a new name, a ``run_id`` and any fields."""

    def build(name: str, run: RunId, extra: dict[str, JsonValue]) -> UnknownEvent:
        payload: dict[str, JsonValue] = {**extra, "run_id": str(run)}
        return UnknownEvent(name=name, payload=payload)

    return st.builds(
        build,
        _unknown_name(),
        _run_id(run_id),
        st.dictionaries(texts(max_size=10), json_values(max_leaves=4), max_size=4),
    )


_NON_TERMINAL: Final[tuple[Callable[[RunId | None], st.SearchStrategy[AgentEvent]], ...]] = (
    context_built,
    model_started,
    text_delta,
    tool_call_started,
    tool_call_delta,
    tool_call_completed,
    tool_execution_started,
    tool_execution_finished,
    assistant_message_committed,
    tool_message_committed,
    usage_recorded,
    cache_metrics,
    doom_loop_detected,
    compaction_circuit_opened,
)


def non_terminal_events(
    run_id: RunId | None = None, *, include_unknown: bool = True
) -> st.SearchStrategy[AgentEvent]:
    """Any event that does not end a run, except ``RunStarted``."""
    options = [make(run_id) for make in _NON_TERMINAL]
    if include_unknown:
        options.append(unknown_events(run_id))
    return st.one_of(options)


def terminal_events(run_id: RunId | None = None) -> st.SearchStrategy[AgentEvent]:
    """``RunCompleted``, ``RunFailed`` or ``RunCancelled``."""
    return st.one_of(run_completed(run_id), run_failed(run_id), run_cancelled(run_id))


def events(
    run_id: RunId | None = None, *, include_unknown: bool = True
) -> st.SearchStrategy[AgentEvent]:
    """Any event of any variant (including ``RunStarted`` and terminal ones)."""
    return st.one_of(
        run_started(run_id),
        non_terminal_events(run_id, include_unknown=include_unknown),
        terminal_events(run_id),
    )


def runs(
    run_id: RunId | None = None,
    *,
    session_id: SessionId | None = None,
    max_events: int = 20,
) -> st.SearchStrategy[list[AgentEvent]]:
    """A realistic run: ``RunStarted``, some events, then maybe a terminal event."""

    @st.composite
    def build(draw: st.DrawFn) -> list[AgentEvent]:
        run = draw(_run_id(run_id))
        started: AgentEvent = draw(run_started(run, session_id=session_id))
        body = draw(st.lists(non_terminal_events(run), max_size=max(0, max_events - 2)))
        ending = draw(st.none() | terminal_events(run))
        return [started, *body, *([ending] if ending is not None else [])]

    return build()
