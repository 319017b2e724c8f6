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
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Final
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    JsonValue,
    StrictStr,
    TypeAdapter,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
)
from pydantic_core import core_schema

from ._errors import InvalidArgumentError
from ._ids import RunId, SessionId
from ._tagged import ExternallyTagged
from ._time import Instant, Timestamp, parse_time, utc_now

#: The largest value of Rust's ``u64`` (and ``usize`` on the 64-bit targets the
#: runtime is built for) and ``u32``: integer fields are bounded by their Rust type,
#: on write and on read, so nothing stored here is refused by serde.
U64_MAX: Final = 2**64 - 1
U32_MAX: Final = 2**32 - 1

_I64_MIN: Final = -(2**63)

#: A Rust ``u64`` field: a non-negative int (not a bool or a numeric string) below 2**64.
Count = Annotated[int, Field(strict=True, ge=0, le=U64_MAX)]
#: A Rust ``u32`` field.
Count32 = Annotated[int, Field(strict=True, ge=0, le=U32_MAX)]
#: A Rust ``Option<u64>`` field, written ``null`` when ``None`` as serde writes it.
_OptionalCount = Annotated[int | None, Field(strict=True, ge=0, le=U64_MAX)]

#: ``timestamp`` of every variant: defaults to now when an event is built in Python,
#: required in JSON (serde refuses an event without one). Declared last in each
#: variant, after its own fields, because serde writes fields in declaration order.
_NOW: Final[Any] = Field(default_factory=utc_now)


def _finite_json(value: JsonValue) -> JsonValue:
    # pydantic reads NaN, Infinity and 1e400 (as inf) into a JsonValue whatever the
    # config says, and writes them back as null; serde refuses all three. serde also
    # reads integers past i64/u64 as floats, so they are refused when read. On the
    # read path of every tool call: type() tests, no isinstance, no call per scalar.
    _check_items((value,), True)
    return value


def _finite_python(value: JsonValue) -> JsonValue:
    # Built in Python, an integer past i64/u64 reaches the append guard, which
    # refuses it with InvalidArgumentError (the documented error for it).
    _check_items((value,), False)
    return value


class _SerdeJsonSchema:
    """Pydantic schema of :data:`Json`: ``JsonValue``, checked as serde would read it."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        inner = handler(source)
        return core_schema.json_or_python_schema(
            json_schema=core_schema.no_info_after_validator_function(_finite_json, inner),
            python_schema=core_schema.no_info_after_validator_function(_finite_python, inner),
        )


def _check_items(items: Iterable[JsonValue], integers: bool) -> None:
    for item in items:
        kind = type(item)
        if kind is str or item is None or kind is bool:
            continue
        if kind is int:
            if integers and not _I64_MIN <= item <= U64_MAX:  # type: ignore[operator]
                _refuse_integer(item)  # type: ignore[arg-type]
        elif kind is float:
            _check_finite(item)  # type: ignore[arg-type]
        elif kind is dict:
            _check_items(item.values(), integers)  # type: ignore[union-attr]
        else:
            _check_items(item, integers)  # type: ignore[arg-type]


def _refuse_integer(number: int) -> None:
    # serde_json keeps an integer exactly only as i64 or u64; a larger one it reads
    # as a float and writes back with other digits.
    raise ValueError(
        f"the integer {number} is outside -2**63..2**64-1, which serde reads as a float"
    )


def _check_finite(number: float) -> None:
    if number - number != 0.0:
        raise ValueError(f"{number!r} is not a JSON number (serde refuses it)")


#: Any JSON value that serde reads as a ``serde_json::Value``: no NaN or infinities.
Json = Annotated[JsonValue, _SerdeJsonSchema()]

# No inf/NaN: JSON cannot carry them (they would be written as null and read back
# changed), so they are refused when the event is built.
# A non-finite float that skipped validation (model_construct) is written as the bare
# NaN or Infinity token, never as null, so that the append guard refuses it.
_MODEL_CONFIG: Final = ConfigDict(
    frozen=True, extra="allow", allow_inf_nan=False, ser_json_inf_nan="constants"
)


class _Value(BaseModel):
    """Base of the frozen value types nested in events."""

    model_config = _MODEL_CONFIG
    # Unknown fields are JSON values like the declared ones: a set, a tuple, bytes or
    # a non-finite float would be written as something else and read back changed.
    __pydantic_extra__: dict[str, Json] = Field(init=False)


class _Event(BaseModel):
    """Fields and behaviour shared by every known event variant."""

    model_config = _MODEL_CONFIG
    # See _Value: unknown fields are held to the JSON rules of the declared ones.
    __pydantic_extra__: dict[str, Json] = Field(init=False)

    #: True for the variants that end a run.
    is_terminal: ClassVar[bool] = False

    run_id: RunId
    if TYPE_CHECKING:
        # Declared by every subclass after its own fields, as ``timestamp: Timestamp =
        # _NOW``: a field declared here would be written second, not last.
        timestamp: Instant

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
    arguments: Json


class Success(_Value):
    """A tool execution that returned ``output``."""

    output: Json


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


_REASONS: Final = frozenset(reason.value for reason in FinishReason)


def _known_reason_in_python(
    value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
) -> Any:
    # A bare string outside the enum is kept when read (a newer runtime wrote it) but
    # refused when an event is built in Python: there it is a typo, and serde in the
    # Rust runtime would refuse to read it back.
    if info.mode == "python" and type(value) is str and value not in _REASONS:
        raise ValueError(
            f"unknown finish reason {value!r}: use one of {sorted(_REASONS)} or "
            "UnknownFinishReason(unknown=...)"
        )
    return handler(value)


class RunStarted(_Event):
    """A run began; sets the run's session id for every later envelope."""

    session_id: SessionId
    provider: StrictStr
    model: StrictStr
    timestamp: Timestamp = _NOW


class ContextBuilt(_Event):
    """The prompt context was assembled from ``message_count`` messages."""

    message_count: Count
    timestamp: Timestamp = _NOW


class ModelStarted(_Event):
    """A model call started (one per iteration of the agent loop)."""

    provider: StrictStr
    model: StrictStr
    iteration: Count
    timestamp: Timestamp = _NOW


class TextDelta(_Event):
    """A chunk of assistant text streamed by the model."""

    delta: StrictStr
    timestamp: Timestamp = _NOW


class ToolCallStarted(_Event):
    """The model began emitting a tool call."""

    call_id: StrictStr
    tool_name: StrictStr
    timestamp: Timestamp = _NOW


class ToolCallDelta(_Event):
    """A chunk of a tool call's JSON arguments."""

    call_id: StrictStr
    delta: StrictStr
    timestamp: Timestamp = _NOW


class ToolCallCompleted(_Event):
    """The model finished emitting a tool call."""

    call: ToolCall
    timestamp: Timestamp = _NOW


class ToolExecutionStarted(_Event):
    """The runtime started executing a tool call."""

    call_id: StrictStr
    tool_name: StrictStr
    timestamp: Timestamp = _NOW


class ToolExecutionFinished(_Event):
    """The runtime finished executing a tool call, successfully or not."""

    call_id: StrictStr
    tool_name: StrictStr
    result: ToolExecutionResult
    duration_ms: Count
    timestamp: Timestamp = _NOW


class AssistantMessageCommitted(_Event):
    """An assistant message was committed to the conversation."""

    message_id: UUID
    timestamp: Timestamp = _NOW


class ToolMessageCommitted(_Event):
    """A tool result message was committed to the conversation."""

    message_id: UUID
    timestamp: Timestamp = _NOW


class UsageRecorded(_Event):
    """Token usage of a model call."""

    usage: TokenUsage
    timestamp: Timestamp = _NOW


class CacheMetrics(_Event):
    """Prompt-cache statistics of a model call."""

    cache_creation_input_tokens: Count
    cache_read_input_tokens: Count
    cached_input_tokens: Count
    timestamp: Timestamp = _NOW


class RunCompleted(_Event):
    """The run finished normally. Terminal."""

    is_terminal: ClassVar[bool] = True

    #: A known reason; ``{"unknown": text}`` (the Rust enum's ``Unknown(String)``); or,
    #: read from JSON only, a reason newer than this version (the Rust enum is
    #: ``non_exhaustive``), kept as the string it was written as.
    finish_reason: Annotated[
        FinishReason | UnknownFinishReason | StrictStr,
        Field(union_mode="left_to_right"),
        WrapValidator(_known_reason_in_python),
    ]
    iterations: Count
    timestamp: Timestamp = _NOW


class RunFailed(_Event):
    """The run failed with ``error``. Terminal."""

    is_terminal: ClassVar[bool] = True

    error: StrictStr
    timestamp: Timestamp = _NOW


class RunCancelled(_Event):
    """The run was cancelled. Terminal."""

    is_terminal: ClassVar[bool] = True
    timestamp: Timestamp = _NOW


class DoomLoopDetected(_Event):
    """The runtime detected the agent repeating itself."""

    description: StrictStr
    timestamp: Timestamp = _NOW


class CompactionCircuitOpened(_Event):
    """Context compaction failed repeatedly and was switched off."""

    consecutive_failures: Count32
    timestamp: Timestamp = _NOW


class UnknownEvent(BaseModel):
    """An event of a variant this version does not know, kept as raw JSON.

    It is never dropped: it is stored, listed and copied like any other event, and
    encodes back to exactly ``{name: payload}``.
    """

    model_config = ConfigDict(frozen=True, allow_inf_nan=False, ser_json_inf_nan="constants")

    is_terminal: ClassVar[bool] = False

    name: StrictStr
    payload: Json

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
    def timestamp(self) -> Instant | None:
        """The payload's ``timestamp``, if it has one chrono would read (years 1..9999 UTC)."""
        raw = self.payload.get("timestamp") if isinstance(self.payload, dict) else None
        if not isinstance(raw, str):
            return None
        try:
            return parse_time(raw)
        except ValueError:
            return None


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
    ExternallyTagged(
        EVENT_TYPES, unknown=_unknown, unknown_type=UnknownEvent, required_in_json="timestamp"
    ),
]

_EVENT_ADAPTER: Final[TypeAdapter[AgentEvent]] = TypeAdapter(
    AgentEvent, config=ConfigDict(title="AgentEvent")
)


_TAG_PREFIX: Final[dict[type, bytes]] = {
    cls: b'{"' + cls.__name__.encode() + b'":' for cls in EVENT_TYPES
}


def encode_event_bytes(event: AgentEvent) -> bytes:
    """The event's externally tagged JSON as UTF-8 bytes, as serde writes it.

    Raises :class:`InvalidArgumentError` for a ``timestamp`` that was never
    validated (``model_construct``) and is not an :class:`~whenever.Instant`.

    The hot path of every append: known variants are serialized by their own
    model serializer and wrapped here, which skips the union's Python-level
    tagging callback (half the cost of a small event).
    """
    prefix = _TAG_PREFIX.get(type(event))
    if prefix is None:
        return _serde_floats(_EVENT_ADAPTER.dump_json(event))
    # Built events were checked by their validator; this catches a time that skipped
    # it (model_construct, model_copy(update=...)) and would be stored unreadable.
    if type(event.timestamp) is not Instant:
        raise InvalidArgumentError(
            f"{event.event_type} event's timestamp must be a whenever.Instant (build the "
            f"event with a datetime or an Instant, not model_construct), "
            f"got {event.timestamp!r}"
        )
    return prefix + _serde_floats(type(event).__pydantic_serializer__.to_json(event)) + b"}"


# A JSON string (skipped whole) or the "+" of a number's positive exponent.
_STRING_OR_EXPONENT_PLUS: Final = re.compile(rb'"(?:[^"\\]|\\.)*"|(?<=[0-9]e)\+')


def _serde_floats(data: bytes) -> bytes:
    """``data`` with floats as serde_json writes them (``1e16``, not pydantic's ``1e+16``).

    Both write the shortest digits that round-trip (ryu's) and switch to exponent form
    at the same magnitudes; they differ only in the exponent's ``+``.
    """
    if b"e+" not in data:
        return data
    return _STRING_OR_EXPONENT_PLUS.sub(_drop_plus, data)


def _drop_plus(match: re.Match[bytes]) -> bytes:
    token = match.group(0)
    return b"" if token == b"+" else token


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
