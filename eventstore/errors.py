"""Every error an event store raises, as one hierarchy under :class:`EventStoreError`.

::

    EventStoreError
    ├── InvalidArgumentError (also ValueError)
    │   ├── EventTooLargeError
    │   └── IdempotencyConflictError
    ├── ConfigurationError (also ValueError)
    ├── ConcurrencyError
    │   └── RunDivergedError
    ├── CorruptEventError
    ├── RunDeletedError
    ├── HistoryUnavailableError
    ├── UnsupportedOperationError
    ├── StoreClosedError
    └── BackendError
        └── BackendUnavailableError

The errors an application usually handles are exported by :mod:`eventstore` too;
this module holds them all.
"""

from __future__ import annotations

from ._errors import (
    BackendError,
    BackendUnavailableError,
    ConcurrencyError,
    ConfigurationError,
    CorruptEventError,
    EventStoreError,
    EventTooLargeError,
    HistoryUnavailableError,
    IdempotencyConflictError,
    InvalidArgumentError,
    RunDeletedError,
    RunDivergedError,
    StoreClosedError,
    UnsupportedOperationError,
)

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "ConcurrencyError",
    "ConfigurationError",
    "CorruptEventError",
    "EventStoreError",
    "EventTooLargeError",
    "HistoryUnavailableError",
    "IdempotencyConflictError",
    "InvalidArgumentError",
    "RunDeletedError",
    "RunDivergedError",
    "StoreClosedError",
    "UnsupportedOperationError",
]
