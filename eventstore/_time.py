"""Event times: nanosecond instants, read and written exactly as chrono does.

The Rust runtime stamps events with ``chrono::Utc::now()``, which has nanosecond
precision, and chrono writes them in RFC 3339 with ``Z`` and 0, 3, 6 or 9 fraction
digits (the fewest that hold the value). Python's ``datetime`` stops at microseconds,
so every time here is a :class:`whenever.Instant`: a UTC instant with nanosecond
precision, ordered and compared by instant, with pydantic support. whenever was
chosen over a hand-written type (and over pandas' ``Timestamp``, a heavy dependency
for one type) because it is small, typed, Rust-backed and covers exactly the range
chrono and Python share, years 1 to 9999.

Python ``datetime`` values are accepted wherever a time is given (aware ones only)
and ``Instant.to_stdlib()`` gives one back, rounded down to the microsecond.
"""

from __future__ import annotations

__all__ = [
    "EARLIEST_TIME",
    "LATEST_TIME",
    "Instant",
    "Timestamp",
    "format_time",
    "parse_time",
    "to_instant",
    "utc_now",
]

import re
from datetime import datetime
from typing import Annotated, Any, Final

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema
from whenever import Instant

#: The earliest and latest instants an event's ``timestamp`` or an envelope's
#: ``emitted_at`` may hold: years 1 to 9999 in UTC, what both chrono and Python's
#: ``datetime`` can represent, so every stored time can be read anywhere.
EARLIEST_TIME: Final = Instant.MIN
LATEST_TIME: Final = Instant.MAX

# chrono's RFC 3339 reader (what serde uses for DateTime<Utc>, checked against chrono
# 0.4.23 by tests/test_rust_interop.py): a date, "T" or a space, the time with any
# number of fraction digits (those past the ninth are dropped), and "Z", "z" or an
# offset +hh:mm or +hhmm. Nothing else: no lowercase "t", no basic format, no week
# dates, no missing seconds.
_RFC3339: Final = re.compile(
    r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:?\d{2})",
    re.ASCII,  # \d is 0-9 only, as for chrono
)


def utc_now() -> Instant:
    """The current time, to the nanosecond where the system clock has it."""
    return Instant.now()


def parse_time(text: str) -> Instant:
    """Read an RFC 3339 time as chrono reads it; ``ValueError`` if chrono would refuse it.

    Offsets are converted to UTC; fraction digits past the ninth are dropped, as
    chrono drops them. A leap second (``:60``) is refused: Python has no way to hold it.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    date, clock, fraction, offset = match.groups()
    if clock.endswith(":60"):
        raise ValueError(f"leap seconds are not supported: {text!r}")
    nanos = f".{fraction[:9]}" if fraction else ""
    zone = "Z" if offset in ("Z", "z") else f"{offset[:3]}:{offset[-2:]}"
    try:
        return Instant.parse_iso(f"{date}T{clock}{nanos}{zone}")
    except ValueError:
        raise ValueError(f"not a valid time in years 1 to 9999 UTC: {text!r}") from None


def format_time(moment: Instant) -> str:
    """``moment`` as chrono writes a ``DateTime<Utc>``: 0, 3, 6 or 9 fraction digits, ``Z``."""
    text = moment.format_iso()  # YYYY-MM-DDTHH:MM:SS, the fraction without trailing zeros, Z
    digits = len(text) - 21  # the fraction's digits, when there is one
    if digits <= 0 or digits % 3 == 0:
        return text
    return text[:-1] + "00"[: 3 - digits % 3] + "Z"


def to_instant(value: Instant | datetime) -> Instant:
    """``value`` as an :class:`Instant`; a ``datetime`` must be aware (``ValueError`` if not)."""
    if type(value) is Instant:
        return value
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError(
                "a naive datetime (no timezone) is not an instant: give it a tzinfo such as UTC"
            )
        return Instant(value)
    raise TypeError(f"expected a whenever.Instant or an aware datetime, got {type(value).__name__}")


# Text in chrono's own shape: "YYYY-MM-DDTHH:MM:SS" + "" / ".fff" / ".ffffff" /
# ".fffffffff" + "Z" (its lengths, and the separators at 4, 7, 10, 13, 16 and 19).
_CHRONO_LENGTHS: Final = frozenset({20, 24, 27, 30})
_CHRONO_SEPARATORS: Final = ("--T::.", "--T::Z")


# Times read recently, by their text: the envelopes of one append share their
# emitted_at, so a page read back holds each commit time many times over.
_RECENT: dict[str, Instant] = {}
_RECENT_MAX: Final = 1024


def _from_json(value: Any) -> Instant:
    if type(value) is not str:
        raise PydanticCustomError("time_type", "a time must be an RFC 3339 string")
    recent = _RECENT.get(value)
    if recent is not None:
        return recent
    moment = _parse_json(value)
    if len(_RECENT) >= _RECENT_MAX:
        _RECENT.clear()
    _RECENT[value] = moment
    return moment


def _parse_json(value: str) -> Instant:
    # The read path of every envelope, twice: text in chrono's own shape goes straight
    # to whenever's parser (a fifth of the cost of the regex), which checks the digits
    # and ranges. A leap second (seconds "6x") takes the slow path, which refuses it.
    if (
        len(value) in _CHRONO_LENGTHS
        and value[-1] == "Z"
        and value[4:20:3] in _CHRONO_SEPARATORS
        and value[17] != "6"
    ):
        try:
            return Instant.parse_iso(value)
        except ValueError:
            pass  # the slow path says why
    try:
        return parse_time(value)
    except ValueError as exc:
        raise PydanticCustomError("time_parsing", "{reason}", {"reason": str(exc)}) from None


def _from_python(value: Any) -> Instant:
    if type(value) is Instant:
        return value
    if isinstance(value, str):
        return _from_json(value)
    try:
        return to_instant(value)
    except (TypeError, ValueError) as exc:
        raise PydanticCustomError("time_type", "{reason}", {"reason": str(exc)}) from None


class _TimestampSchema:
    """Pydantic schema of :data:`Timestamp`: chrono's text in JSON, an Instant in Python."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.json_or_python_schema(
            json_schema=core_schema.no_info_plain_validator_function(_from_json),
            python_schema=core_schema.no_info_plain_validator_function(_from_python),
            serialization=core_schema.plain_serializer_function_ser_schema(
                format_time, when_used="json"
            ),
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "format": "date-time"}


#: A nanosecond UTC instant: an RFC 3339 string in JSON (read and written as chrono
#: does), a :class:`whenever.Instant` in Python; built from an ``Instant``, an aware
#: ``datetime`` or an RFC 3339 string. Years 1 to 9999 only.
Timestamp = Annotated[Instant, _TimestampSchema()]
