"""The event model: every variant, the values nested in them, and their JSON codec.

The variants and value types an application builds are exported by :mod:`eventstore`
too; this module adds what reads or writes events as JSON outside a store
(:func:`decode_event`, :func:`encode_event`), :data:`EVENT_TYPES`, the limits an
event must keep to be stored (:data:`MAX_JSON_DEPTH`, :data:`JSON_INT_MIN`,
:data:`JSON_INT_MAX`, :data:`U64_MAX`, :data:`U32_MAX`, :data:`EARLIEST_TIME`,
:data:`LATEST_TIME`), and event times as chrono reads and writes them
(:data:`Timestamp`, :func:`parse_time`, :func:`format_time`, :func:`to_instant`).

Times are :class:`whenever.Instant` values (nanosecond precision); see the docs'
"Wire format" page for every field's Rust type, Python type and range.
"""

from __future__ import annotations

from . import _events
from ._events import *  # noqa: F403 - the whole model, named once in _events.__all__
from ._events import EVENT_TYPES, U32_MAX, U64_MAX, decode_event, encode_event
from ._guards import JSON_INT_MAX, JSON_INT_MIN, MAX_JSON_DEPTH
from ._time import EARLIEST_TIME, LATEST_TIME, Timestamp, format_time, parse_time, to_instant

__all__ = [
    "EARLIEST_TIME",
    "EVENT_TYPES",
    "JSON_INT_MAX",
    "JSON_INT_MIN",
    "LATEST_TIME",
    "MAX_JSON_DEPTH",
    "U32_MAX",
    "U64_MAX",
    "Timestamp",
    "decode_event",
    "encode_event",
    "format_time",
    "parse_time",
    "to_instant",
]
__all__ += _events.__all__
