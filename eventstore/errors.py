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

from . import _errors
from ._errors import *  # noqa: F403 - the whole hierarchy, named once in _errors.__all__

__all__: list[str] = []
__all__ += _errors.__all__
