"""The exception hierarchy of eventstore.

Everything a store raises is an :class:`EventStoreError`; driver exceptions are
translated at the backend boundary and chained as ``__cause__``::

    EventStoreError
    ├── InvalidArgumentError (also ValueError)
    │   ├── EventTooLargeError
    │   └── IdempotencyConflictError
    ├── ConfigurationError (also ValueError)
    ├── ConcurrencyError
    ├── CorruptEventError
    ├── HistoryUnavailableError
    ├── UnsupportedOperationError
    ├── StoreClosedError
    └── BackendError
        └── BackendUnavailableError

Messages name the backend, the run and expected versus actual values, and never a
credential: URLs are redacted before they reach a message.
"""

from __future__ import annotations

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

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from uuid import UUID


class EventStoreError(Exception):
    """Base class of every error an event store raises."""


class InvalidArgumentError(EventStoreError, ValueError):
    """An argument is out of range or of the wrong type (e.g. ``limit=0``)."""


class EventTooLargeError(InvalidArgumentError):
    """An event's serialized form exceeds the store's ``max_event_bytes``."""

    def __init__(self, *, size: int, limit: int, event_type: str) -> None:
        self.size = size
        self.limit = limit
        self.event_type = event_type
        super().__init__(
            f"{event_type} event is {size} bytes serialized, over the store's limit of "
            f"{limit} bytes (max_event_bytes)"
        )


class IdempotencyConflictError(InvalidArgumentError):
    """A batch mixes event ids that are already stored with ids that are not.

    A batch is atomic, so a retried batch is either entirely stored or not at all;
    a partial match means event ids were reused for different events.
    """


class ConfigurationError(EventStoreError, ValueError):
    """A URL, option or installed plugin does not make a usable store."""


class ConcurrencyError(EventStoreError):
    """``expected_seq`` did not match the run's last seq; nothing was written."""

    def __init__(
        self, *, run_id: UUID, expected_seq: int, actual_seq: int, message: str | None = None
    ) -> None:
        self.run_id = run_id
        self.expected_seq = expected_seq
        self.actual_seq = actual_seq
        super().__init__(
            message or f"run {run_id}: expected last seq {expected_seq}, but it is {actual_seq}"
        )


class RunDivergedError(ConcurrencyError):
    """A copy's destination holds, at ``seq``, another envelope than the source's.

    Raised by :meth:`EventStore.import_envelopes` (and so by ``eventstore copy``)
    instead of continuing a destination run that no longer matches its source.
    """

    def __init__(self, *, run_id: UUID, seq: int, actual_seq: int) -> None:
        self.seq = seq
        super().__init__(
            run_id=run_id,
            expected_seq=seq - 1,
            actual_seq=actual_seq,
            message=(
                f"run {run_id}: the destination's envelope at seq {seq} differs from the "
                f"source's (event id, session, time or event); the destination run "
                f"({actual_seq} events) diverged and is left as it is"
            ),
        )


class CorruptEventError(EventStoreError):
    """A stored entry cannot be decoded. It is reported, never skipped silently."""

    def __init__(self, *, run_id: UUID, position: int | str, reason: str) -> None:
        self.run_id = run_id
        self.position = position
        self.reason = reason
        super().__init__(f"run {run_id}: stored entry at {position} is corrupt: {reason}")


class RunDeletedError(EventStoreError):
    """A run followed with ``subscribe`` was deleted (it now ends before what was seen)."""

    def __init__(self, *, run_id: UUID, seen_seq: int, last_seq: int) -> None:
        self.run_id = run_id
        self.seen_seq = seen_seq
        self.last_seq = last_seq
        super().__init__(
            f"run {run_id} was deleted while it was followed: the subscriber had seen seq "
            f"{seen_seq}, the run now ends at seq {last_seq}"
        )


class HistoryUnavailableError(EventStoreError):
    """The requested events were removed by an explicit retention policy."""

    def __init__(self, *, run_id: UUID, requested_after: int, first_available: int) -> None:
        self.run_id = run_id
        self.requested_after = requested_after
        self.first_available = first_available
        super().__init__(
            f"run {run_id}: events after seq {requested_after} were trimmed by retention; "
            f"the first available seq is {first_available}"
        )


class UnsupportedOperationError(EventStoreError):
    """The backend does not offer this operation (see its capabilities)."""


class StoreClosedError(EventStoreError):
    """The store is not open: use ``async with`` or ``await store.open()``."""


class BackendError(EventStoreError):
    """The backend failed; the driver's exception is chained as ``__cause__``."""


class BackendUnavailableError(BackendError):
    """The backend cannot be reached (connection refused, lost, timed out)."""
