"""Copying runs between stores, resumably, and verifying the copies.

``copy_runs`` reads each run from the source page by page and writes it to the
destination with :meth:`EventStore.import_envelopes`, which keeps event ids, seqs,
session ids and times and skips what the destination already holds: re-running an
interrupted copy continues where it stopped and never duplicates. ``verify_runs``
compares both sides run by run.
"""

from __future__ import annotations

__all__ = ["CopyProgress", "RunComparison", "copy_runs", "iter_run_ids", "verify_runs"]

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from ._capabilities import Capability
from ._errors import ConcurrencyError, ConfigurationError
from ._ids import RunId
from ._store import EventStore

#: Envelopes read and written per round trip.
PAGE_SIZE = 1000


@dataclass
class CopyProgress:
    """Running totals of a copy, passed to the progress callback after each page."""

    runs_done: int = 0
    events_copied: int = 0
    events_skipped: int = 0
    current_run: RunId | None = None


@dataclass(frozen=True)
class RunComparison:
    """The result of comparing one run in two stores."""

    run_id: RunId
    source_events: int
    destination_events: int
    first_difference: int | None  # seq of the first differing envelope, None if equal

    @property
    def identical(self) -> bool:
        """True if both stores hold exactly the same envelopes for the run."""
        return self.first_difference is None and self.source_events == self.destination_events


async def iter_run_ids(store: EventStore, *, page_size: int = PAGE_SIZE) -> AsyncIterator[RunId]:
    """Every run id in ``store``, in run id order (needs capability ``list_runs``)."""
    if Capability.LIST_RUNS not in store.capabilities:
        raise ConfigurationError(
            f"{store.backend_name} cannot list its runs; name the runs to copy explicitly"
        )
    after: RunId | None = None
    while True:
        page = await store.list_runs(limit=page_size, after=after)
        for info in page:
            yield info.run_id
        if len(page) < page_size:
            return
        after = page[-1].run_id


async def copy_runs(
    source: EventStore,
    destination: EventStore,
    run_ids: Sequence[RunId] | None = None,
    *,
    on_progress: Callable[[CopyProgress], None] | None = None,
    page_size: int = PAGE_SIZE,
) -> CopyProgress:
    """Copy ``run_ids`` (default: every run of ``source``) into ``destination``.

    Safe to re-run: envelopes already in the destination are skipped. A destination
    run that is longer than the source's, or whose last envelope differs from the
    source's at that seq, raises ``ConcurrencyError`` (use ``verify_runs`` for a
    full comparison).
    """
    if Capability.IMPORT not in destination.capabilities:
        raise ConfigurationError(
            f"{destination.backend_name} cannot import envelopes (capability 'import'), "
            "so it cannot be a copy destination"
        )
    progress = CopyProgress()
    ids: AsyncIterator[RunId] | Sequence[RunId] = (
        iter_run_ids(source) if run_ids is None else run_ids
    )
    async for run_id in _aiter(ids):
        progress.current_run = run_id
        stored = await destination.last_seq(run_id)
        source_last = await source.last_seq(run_id)
        if stored > source_last:
            raise ConcurrencyError(run_id=run_id, expected_seq=source_last, actual_seq=stored)
        progress.events_skipped += stored
        # Re-read the destination's last envelope too: import_envelopes compares it
        # with the source's, so a destination run that diverged is refused instead
        # of being continued with the source's events.
        after = max(stored - 1, 0)
        while True:
            page = await source.list_after(run_id, after, page_size)
            if not page:
                break
            progress.events_copied += await destination.import_envelopes(page)
            after = page[-1].seq
            if on_progress is not None:
                on_progress(progress)
        progress.runs_done += 1
        if on_progress is not None:
            on_progress(progress)
    progress.current_run = None
    return progress


async def verify_runs(
    source: EventStore,
    destination: EventStore,
    run_ids: Sequence[RunId] | None = None,
    *,
    page_size: int = PAGE_SIZE,
) -> list[RunComparison]:
    """Compare ``run_ids`` (default: every run of ``source``) envelope by envelope."""
    ids: AsyncIterator[RunId] | Sequence[RunId] = (
        iter_run_ids(source) if run_ids is None else run_ids
    )
    results = []
    async for run_id in _aiter(ids):
        after, first_difference = 0, None
        while first_difference is None:
            left = await source.list_after(run_id, after, page_size)
            right = await destination.list_after(run_id, after, page_size)
            for a, b in zip(left, right, strict=False):
                if a != b:
                    first_difference = a.seq
                    break
            if first_difference is None and len(left) != len(right):
                first_difference = after + min(len(left), len(right)) + 1
            if not left or len(left) < page_size:
                break
            after = left[-1].seq
        results.append(
            RunComparison(
                run_id=run_id,
                source_events=await source.last_seq(run_id),
                destination_events=await destination.last_seq(run_id),
                first_difference=first_difference,
            )
        )
    return results


async def _aiter(ids: AsyncIterator[RunId] | Sequence[RunId]) -> AsyncIterator[RunId]:
    if isinstance(ids, Sequence):
        for run_id in ids:
            yield run_id
    else:
        async for run_id in ids:
            yield run_id
