"""The event model: every variant, the values nested in them, and their JSON codec.

The variants and value types an application builds are exported by :mod:`eventstore`
too; this module adds what reads or writes events as JSON outside a store
(:func:`decode_event`, :func:`encode_event`), :data:`EVENT_TYPES`, and the limits an
event must keep to be stored (:data:`MAX_JSON_DEPTH`, :data:`JSON_INT_MIN`,
:data:`JSON_INT_MAX`).
"""

from __future__ import annotations

from . import _events
from ._events import *  # noqa: F403 - the whole model, named once in _events.__all__
from ._events import EVENT_TYPES, decode_event, encode_event
from ._guards import JSON_INT_MAX, JSON_INT_MIN, MAX_JSON_DEPTH

__all__ = [
    "EVENT_TYPES",
    "JSON_INT_MAX",
    "JSON_INT_MIN",
    "MAX_JSON_DEPTH",
    "decode_event",
    "encode_event",
]
__all__ += _events.__all__
