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

from . import _events
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
from ._events import *  # noqa: F403 - the event model, named once in _events.__all__
from ._ids import EventId, RunId, SessionId
from ._plugins import open_store
from ._store import MAX_LIMIT, EventStore

__all__ = [
    "MAX_LIMIT",
    "BackendError",
    "BackendUnavailableError",
    "Capability",
    "ConcurrencyError",
    "ConfigurationError",
    "CorruptEventError",
    "EventEnvelope",
    "EventId",
    "EventStore",
    "EventStoreError",
    "IdempotencyConflictError",
    "InvalidArgumentError",
    "RunDeletedError",
    "RunId",
    "RunInfo",
    "SessionId",
    "open_store",
]
__all__ += _events.__all__

__version__ = "0.1.0"  # the one version of every workspace distribution
