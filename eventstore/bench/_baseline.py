"""The protocol a backend implements to give the harness a raw-driver baseline."""

from __future__ import annotations

__all__ = ["RawBaseline"]

from typing import Protocol, runtime_checkable

from .._ids import RunId


@runtime_checkable
class RawBaseline(Protocol):
    """The same work as a store's, done with the bare driver.

    ``append_one`` stores one event of a run with the next seq in its own
    transaction (or round trip); ``append_many`` stores a batch of one run in one;
    ``read_page`` reads up to ``limit`` events after ``after_seq`` *and decodes
    their JSON*, returning how many it read. Appends receive the event JSON already
    encoded. A baseline that cannot do a scenario raises ``NotImplementedError``
    from that method and the harness leaves its ratio out.
    """

    #: Shown in reports, e.g. ``"raw sqlite3"``.
    name: str

    async def open(self) -> None:
        """Connect and create whatever storage the baseline needs."""
        ...

    async def close(self) -> None:
        """Release connections and drop the baseline's storage."""
        ...

    async def append_one(self, run_id: RunId, event_json: str) -> None:
        """Store one event with the run's next seq."""
        ...

    async def append_many(self, run_id: RunId, events_json: list[str]) -> None:
        """Store a batch of one run's events with consecutive seqs, atomically."""
        ...

    async def read_page(self, run_id: RunId, after_seq: int, limit: int) -> int:
        """Read and JSON-decode up to ``limit`` events after ``after_seq``."""
        ...
