"""The exception hierarchy of eventstore, drawn in :mod:`eventstore.errors`.

Everything a store raises is an :class:`EventStoreError`; driver exceptions are
translated at the backend boundary and chained as ``__cause__``. Messages name the
run and expected versus actual values, and never a credential: URLs are redacted
before they reach a message. The store's error boundary (one place, in
:class:`eventstore.EventStore`) records which backend raised an error that crossed it
in :attr:`EventStoreError.backend`, and ``str(error)`` then starts with that name.
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
    """Base class of every error an event store raises.

    :attr:`backend` is the name of the backend whose store raised it (set by the
    store's error boundary, ``None`` for errors raised before a backend is involved,
    such as a malformed URL); ``str(error)`` starts with it.
    """

    #: The backend that raised this error, set once by the store's error boundary.
    backend: str | None = None

    def __str__(self) -> str:
        message = super().__str__()
        return message if self.backend is None else f"{self.backend}: {message}"


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
    """An event id was reused for something else; nothing was stored.

    Raised when an append names an event id already stored in the run with a
    *different* event (a retry must send the same event), when a batch mixes ids
    that are stored with ids that are not (a batch is stored whole or not at all),
    and when a copied envelope's event id is already stored at another seq.
    """

    @classmethod
    def different_event(
        cls, *, run_id: UUID, event_id: UUID, seq: int, stored: str, given: str
    ) -> IdempotencyConflictError:
        """An append reusing ``event_id``, stored at ``seq``, for another event."""
        detail = "" if stored == given else f" (stored {stored}, given {given})"
        return cls(
            f"run {run_id}: event id {event_id} is already stored at seq {seq} with a "
            f"different event{detail}; a retry must send the same event, a new event "
            "needs a new id"
        )

    @classmethod
    def partial_batch(cls, *, run_id: UUID, stored: int, total: int) -> IdempotencyConflictError:
        """A retried batch of which only ``stored`` of ``total`` event ids are stored."""
        return cls(
            f"run {run_id}: {stored} of the batch's {total} event ids are already stored; "
            "a retried batch must be stored entirely or not at all"
        )

    @classmethod
    def copied_id_taken(cls, *, run_id: UUID) -> IdempotencyConflictError:
        """An imported envelope whose event id the run already holds at another seq."""
        return cls(f"run {run_id}: a copied event id is already stored at another seq")


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
