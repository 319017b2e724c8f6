"""The event model: every variant, the values nested in them, and their JSON codec.

The variants and value types an application builds are exported by :mod:`eventstore`
too; this module adds what reads or writes events as JSON outside a store
(:func:`decode_event`, :func:`encode_event`) and :data:`EVENT_TYPES`.
"""

from __future__ import annotations

from ._events import (
    EVENT_TYPES,
    AgentEvent,
    AssistantMessageCommitted,
    CacheMetrics,
    CompactionCircuitOpened,
    ContextBuilt,
    DoomLoopDetected,
    Failure,
    FinishReason,
    ModelStarted,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
    Success,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
    ToolExecutionFinished,
    ToolExecutionResult,
    ToolExecutionStarted,
    ToolMessageCommitted,
    UnknownEvent,
    UnknownFinishReason,
    UsageRecorded,
    decode_event,
    encode_event,
)
from ._guards import JSON_INT_MAX, JSON_INT_MIN, MAX_JSON_DEPTH

__all__ = [
    "EVENT_TYPES",
    "JSON_INT_MAX",
    "JSON_INT_MIN",
    "MAX_JSON_DEPTH",
    "AgentEvent",
    "AssistantMessageCommitted",
    "CacheMetrics",
    "CompactionCircuitOpened",
    "ContextBuilt",
    "DoomLoopDetected",
    "Failure",
    "FinishReason",
    "ModelStarted",
    "RunCancelled",
    "RunCompleted",
    "RunFailed",
    "RunStarted",
    "Success",
    "TextDelta",
    "TokenUsage",
    "ToolCall",
    "ToolCallCompleted",
    "ToolCallDelta",
    "ToolCallStarted",
    "ToolExecutionFinished",
    "ToolExecutionResult",
    "ToolExecutionStarted",
    "ToolMessageCommitted",
    "UnknownEvent",
    "UnknownFinishReason",
    "UsageRecorded",
    "decode_event",
    "encode_event",
]
