"""eventstore: the event log of AI-agent runs behind one small async interface.

Pick a backend by URL with :func:`open_store`; every backend obeys the same
contract (see the docs' "Concepts" page) and is checked by the same conformance
suite (``eventstore-contract-tests``).

This namespace holds what applications use: the store, the event model, ids and
the errors an application handles. :mod:`eventstore.errors` has the whole error
hierarchy, :mod:`eventstore.events` the JSON codec, and :mod:`eventstore.backend`
everything a backend author needs.
"""

from __future__ import annotations

from ._capabilities import Capability
from ._envelope import EventEnvelope, RunInfo
from ._errors import (
    BackendError,
    BackendUnavailableError,
    ConcurrencyError,
    ConfigurationError,
    CorruptEventError,
    EventStoreError,
    IdempotencyConflictError,
    InvalidArgumentError,
    RunDeletedError,
)
from ._events import (
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
)
from ._ids import EventId, RunId, SessionId
from ._plugins import open_store
from ._store import MAX_LIMIT, EventStore

__all__ = [
    "MAX_LIMIT",
    "AgentEvent",
    "AssistantMessageCommitted",
    "BackendError",
    "BackendUnavailableError",
    "CacheMetrics",
    "Capability",
    "CompactionCircuitOpened",
    "ConcurrencyError",
    "ConfigurationError",
    "ContextBuilt",
    "CorruptEventError",
    "DoomLoopDetected",
    "EventEnvelope",
    "EventId",
    "EventStore",
    "EventStoreError",
    "Failure",
    "FinishReason",
    "IdempotencyConflictError",
    "InvalidArgumentError",
    "ModelStarted",
    "RunCancelled",
    "RunCompleted",
    "RunDeletedError",
    "RunFailed",
    "RunId",
    "RunInfo",
    "RunStarted",
    "SessionId",
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
    "open_store",
]

__version__ = "0.1.0"
