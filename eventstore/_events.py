"""The agent runtime's events, one frozen pydantic model per variant.

The JSON form is the one the Rust runtime (behest) writes with serde defaults: each
event externally tagged with its PascalCase class name, snake_case fields, bare UUID
strings and RFC 3339 UTC times. An event of a variant this version does not know is
read as :class:`UnknownEvent` and written back unchanged.

Models keep fields they do not know (``extra="allow"``) so that an event written by a
newer runtime survives a copy through this library byte-for-byte in meaning.
"""

from __future__ import annotations

__all__ = [
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
]
# The names above are the model an application builds events with, re-exported by
# ``eventstore`` and ``eventstore.events``; the codec below (EVENT_TYPES,
# decode_event, encode_event) is exported by ``eventstore.events`` only.

import enum
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Final
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    JsonValue,
    StrictStr,
    TypeAdapter,
    field_validator,
)
from pydantic_core import core_schema

from ._errors import InvalidArgumentError
from ._ids import RunId, SessionId
from ._tagged import ExternallyTagged

_ZERO: Final = timedelta(0)
#: The earliest and latest instants an event's ``timestamp`` or an envelope's
#: ``emitted_at`` may hold: years 1 to 9999 in UTC, what Python's datetime holds
#: once converted to UTC (and, as microseconds since the Unix epoch, what the SQL
#: backends store), so every time can be converted and read back.
EARLIEST_TIME: Final = datetime.min.replace(tzinfo=UTC)
LATEST_TIME: Final = datetime.max.replace(tzinfo=UTC)
_EDGE_YEARS: Final = frozenset({EARLIEST_TIME.year, LATEST_TIME.year})


def _to_utc(value: datetime) -> datetime:
    # Parsed "Z" times carry pydantic's own UTC tzinfo; they are already UTC and
    # compare equal, so only other offsets are converted.
    if value.tzinfo is UTC or value.utcoffset() == _ZERO:
        return value
    return value.astimezone(UTC)


def utc_now() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


class _UtcWhenBuilt:
    """Normalizes datetimes given in Python to UTC; JSON times are taken as written.

    Every writer of this JSON (this library, the Rust runtime's chrono ``Utc``) writes
    UTC with a ``Z``, so decoding skips the Python-level conversion, which costs a
    seventh of decoding an envelope; a foreign non-UTC offset is kept as the same
    instant (datetimes compare by instant).
    """

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        aware = handler(source)
        return core_schema.json_or_python_schema(
            json_schema=aware,
            python_schema=core_schema.no_info_after_validator_function(_to_utc, aware),
        )


#: An aware datetime, normalized to UTC when built in Python; naive ones are rejected,
#: and so are instants outside years 1..9999 in UTC (checked by pydantic-core before
#: the conversion, which would overflow), whether built in Python or read from JSON.
UtcDatetime = Annotated[AwareDatetime, Field(ge=EARLIEST_TIME, le=LATEST_TIME), _UtcWhenBuilt()]
#: A non-negative integer that is really an int (not a bool or a numeric string).
Count = Annotated[int, Field(strict=True, ge=0)]
_OptionalCount = Annotated[int | None, Field(strict=True, ge=0, exclude_if=lambda v: v is None)]

# No inf/NaN: JSON cannot carry them (they would be written as null and read back
# changed), so they are refused when the event is built.
_MODEL_CONFIG: Final = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False)


class _Value(BaseModel):
    """Base of the frozen value types nested in events."""

    model_config = _MODEL_CONFIG
    # Unknown fields are JSON values like the declared ones: a set, a tuple, bytes or
    # a non-finite float would be written as something else and read back changed.
    __pydantic_extra__: dict[str, JsonValue] = Field(init=False)


class _Event(BaseModel):
    """Fields and behaviour shared by every known event variant."""

    model_config = _MODEL_CONFIG
    # See _Value: unknown fields are held to the JSON rules of the declared ones.
    __pydantic_extra__: dict[str, JsonValue] = Field(init=False)

    #: True for the variants that end a run.
    is_terminal: ClassVar[bool] = False

    run_id: RunId
    timestamp: UtcDatetime = Field(default_factory=utc_now)

    @property
    def event_type(self) -> str:
        """The variant name, as used for the JSON tag (e.g. ``"RunStarted"``)."""
        return type(self).__name__


class TokenUsage(_Value):
    """Token counts reported by the model provider for one call."""

    input_tokens: Count
    output_tokens: Count
    total_tokens: Count
    cache_creation_input_tokens: _OptionalCount = None
    cache_read_input_tokens: _OptionalCount = None
    cached_input_tokens: _OptionalCount = None


class ToolCall(_Value):
    """A complete tool call as the model produced it."""

    id: StrictStr
    name: StrictStr
    arguments: JsonValue


class Success(_Value):
    """A tool execution that returned ``output``."""

    output: JsonValue


class Failure(_Value):
    """A tool execution that failed with ``error``."""

    error: StrictStr


#: The outcome of a tool execution: ``{"Success": {...}}`` or ``{"Failure": {...}}``.
ToolExecutionResult = Annotated[Success | Failure, ExternallyTagged([Success, Failure])]


class FinishReason(enum.StrEnum):
    """Why the model stopped; an unrecognised reason is an :class:`UnknownFinishReason`."""

    STOP = "stop"
    TOOL_CALLS = "tool_calls"
    LENGTH = "length"
    CONTENT_FILTER = "content_filter"
    ERROR = "error"


class UnknownFinishReason(_Value):
    """A finish reason this version does not know, kept as text (``{"unknown": ...}``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    unknown: StrictStr


class RunStarted(_Event):
    """A run began; sets the run's session id for every later envelope."""

    session_id: SessionId
    provider: StrictStr
    model: StrictStr


class ContextBuilt(_Event):
    """The prompt context was assembled from ``message_count`` messages."""

    message_count: Count


class ModelStarted(_Event):
    """A model call started (one per iteration of the agent loop)."""

    provider: StrictStr
    model: StrictStr
    iteration: Count


class TextDelta(_Event):
    """A chunk of assistant text streamed by the model."""

    delta: StrictStr


class ToolCallStarted(_Event):
    """The model began emitting a tool call."""

    call_id: StrictStr
    tool_name: StrictStr


class ToolCallDelta(_Event):
    """A chunk of a tool call's JSON arguments."""

    call_id: StrictStr
    delta: StrictStr


class ToolCallCompleted(_Event):
    """The model finished emitting a tool call."""

    call: ToolCall


class ToolExecutionStarted(_Event):
    """The runtime started executing a tool call."""

    call_id: StrictStr
    tool_name: StrictStr


class ToolExecutionFinished(_Event):
    """The runtime finished executing a tool call, successfully or not."""

    call_id: StrictStr
    tool_name: StrictStr
    result: ToolExecutionResult
    duration_ms: Count


class AssistantMessageCommitted(_Event):
    """An assistant message was committed to the conversation."""

    message_id: UUID


class ToolMessageCommitted(_Event):
    """A tool result message was committed to the conversation."""

    message_id: UUID


class UsageRecorded(_Event):
    """Token usage of a model call."""

    usage: TokenUsage


class CacheMetrics(_Event):
    """Prompt-cache statistics of a model call."""

    cache_creation_input_tokens: Count
    cache_read_input_tokens: Count
    cached_input_tokens: Count


class RunCompleted(_Event):
    """The run finished normally. Terminal."""

    is_terminal: ClassVar[bool] = True

    finish_reason: FinishReason | UnknownFinishReason
    iterations: Count


class RunFailed(_Event):
    """The run failed with ``error``. Terminal."""

    is_terminal: ClassVar[bool] = True

    error: StrictStr


class RunCancelled(_Event):
    """The run was cancelled. Terminal."""

    is_terminal: ClassVar[bool] = True


class DoomLoopDetected(_Event):
    """The runtime detected the agent repeating itself."""

    description: StrictStr


class CompactionCircuitOpened(_Event):
    """Context compaction failed repeatedly and was switched off."""

    consecutive_failures: Count


class UnknownEvent(BaseModel):
    """An event of a variant this version does not know, kept as raw JSON.

    It is never dropped: it is stored, listed and copied like any other event, and
    encodes back to exactly ``{name: payload}``.
    """

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    is_terminal: ClassVar[bool] = False

    name: StrictStr
    payload: JsonValue

    @field_validator("name")
    @classmethod
    def _not_a_known_variant(cls, name: str) -> str:
        # A known name would be stored as text and read back as the known class.
        if name in _KNOWN_NAMES:
            raise ValueError(f"{name!r} is a known event variant; build {name}(...) instead")
        return name

    @property
    def event_type(self) -> str:
        """The unknown variant's name."""
        return self.name

    @property
    def run_id(self) -> RunId:
        """The ``run_id`` in the payload; ``ValueError`` if it has none."""
        raw = self.payload.get("run_id") if isinstance(self.payload, dict) else None
        if not isinstance(raw, str):
            raise ValueError(f"unknown event {self.name!r} has no string run_id field")
        return RunId.parse(raw)

    @property
    def timestamp(self) -> datetime | None:
        """The payload's ``timestamp``, if it has a parseable one (aware, years 1..9999 UTC)."""
        raw = self.payload.get("timestamp") if isinstance(self.payload, dict) else None
        if not isinstance(raw, str):
            return None
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            return None
        if moment.tzinfo is None or not EARLIEST_TIME <= moment <= LATEST_TIME:
            return None  # naive, or outside the range an event's time may hold
        return _to_utc(moment)


#: Every known variant, in the order of the runtime's enum.
EVENT_TYPES: Final[tuple[type[_Event], ...]] = (
    RunStarted,
    ContextBuilt,
    ModelStarted,
    TextDelta,
    ToolCallStarted,
    ToolCallDelta,
    ToolCallCompleted,
    ToolExecutionStarted,
    ToolExecutionFinished,
    AssistantMessageCommitted,
    ToolMessageCommitted,
    UsageRecorded,
    CacheMetrics,
    RunCompleted,
    RunFailed,
    RunCancelled,
    DoomLoopDetected,
    CompactionCircuitOpened,
)


_KNOWN_NAMES: Final = frozenset(cls.__name__ for cls in EVENT_TYPES)


def _unknown(name: str, payload: Any) -> UnknownEvent:
    return UnknownEvent(name=name, payload=payload)


#: Any event: a known variant or an :class:`UnknownEvent`.
AgentEvent = Annotated[
    RunStarted
    | ContextBuilt
    | ModelStarted
    | TextDelta
    | ToolCallStarted
    | ToolCallDelta
    | ToolCallCompleted
    | ToolExecutionStarted
    | ToolExecutionFinished
    | AssistantMessageCommitted
    | ToolMessageCommitted
    | UsageRecorded
    | CacheMetrics
    | RunCompleted
    | RunFailed
    | RunCancelled
    | DoomLoopDetected
    | CompactionCircuitOpened
    | UnknownEvent,
    ExternallyTagged(EVENT_TYPES, unknown=_unknown, unknown_type=UnknownEvent),
]

_EVENT_ADAPTER: Final[TypeAdapter[AgentEvent]] = TypeAdapter(
    AgentEvent, config=ConfigDict(title="AgentEvent")
)


_TAG_PREFIX: Final[dict[type, bytes]] = {
    cls: b'{"' + cls.__name__.encode() + b'":' for cls in EVENT_TYPES
}


def encode_event_bytes(event: AgentEvent) -> bytes:
    """The event's externally tagged JSON as UTF-8 bytes.

    Raises :class:`InvalidArgumentError` for a ``timestamp`` that was never
    validated (``model_construct``) and is naive or outside years 1..9999 in UTC.

    The hot path of every append: known variants are serialized by their own
    model serializer and wrapped here, which skips the union's Python-level
    tagging callback (half the cost of a small event).
    """
    prefix = _TAG_PREFIX.get(type(event))
    if prefix is None:
        return _EVENT_ADAPTER.dump_json(event)
    # Built events were checked by their validator; this catches a time that skipped
    # it (model_construct, model_copy(update=...)) and would be stored unreadable.
    # Only years 1 and 9999 hold instants out of range: offsets are under a day.
    stamp: Any = event.timestamp  # a known variant's: a datetime, unless never validated
    try:
        checked = stamp.tzinfo is not None and stamp.year not in _EDGE_YEARS
    except AttributeError:
        checked = False
    if not checked:
        _check_timestamp(event.event_type, stamp)
    return prefix + type(event).__pydantic_serializer__.to_json(event) + b"}"


def _check_timestamp(event_type: str, stamp: object) -> None:
    """Refuse a ``timestamp`` that is not an aware datetime in years 1..9999 UTC."""
    if not isinstance(stamp, datetime) or stamp.utcoffset() is None:
        raise InvalidArgumentError(
            f"{event_type} event's timestamp must be an aware datetime, got {stamp!r}"
        )
    if not EARLIEST_TIME <= stamp <= LATEST_TIME:
        raise InvalidArgumentError(
            f"{event_type} event's timestamp {stamp.isoformat()} is outside the range "
            f"an event's time may hold: {EARLIEST_TIME.isoformat()} to "
            f"{LATEST_TIME.isoformat()} (years 1 to 9999 in UTC)"
        )


def encode_event(event: AgentEvent) -> str:
    """The event's externally tagged JSON, as the Rust runtime writes it."""
    return encode_event_bytes(event).decode()


def decode_event(data: str | bytes) -> AgentEvent:
    """Parse externally tagged JSON into its event class (or :class:`UnknownEvent`).

    Raises ``pydantic.ValidationError`` (a ``ValueError``) on malformed input.
    """
    return _EVENT_ADAPTER.validate_json(data)


def is_event(value: object) -> bool:
    """True if ``value`` is an event instance of any variant."""
    return isinstance(value, (_Event, UnknownEvent))
