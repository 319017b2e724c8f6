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
from ._envelope import EventEnvelope, encode_envelope
from ._errors import (
    ConcurrencyError,
    ConfigurationError,
    HistoryUnavailableError,
    InvalidArgumentError,
    RunDivergedError,
)
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

    Safe to re-run: envelopes already in the destination are compared with the
    source's, whole, and skipped. A destination run that is longer than the
    source's raises ``ConcurrencyError``, one that differs from it anywhere
    :class:`~eventstore.errors.RunDivergedError`, rather than being continued with the
    source's events. A source run with a hole in its seqs, or whose first events
    are gone (possible in logs written by other tools), raises
    ``InvalidArgumentError`` naming it. Another copy writing the same runs at the
    same time is tolerated. Where either side's retention trimmed a run's first
    events, what both still hold is compared.
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
            raise ConcurrencyError(
                run_id=run_id,
                expected_seq=source_last,
                actual_seq=stored,
                message=(
                    f"run {run_id}: the destination holds {stored} events, the source only "
                    f"{source_last}; the destination run diverged and is left as it is"
                ),
            )
        # From seq 1 even when resuming: import_envelopes compares every envelope
        # the destination already holds with the source's, so a destination that
        # diverged anywhere is refused, not merged.
        after = 0
        while True:
            try:
                page = await source.list_after(run_id, after, page_size)
            except HistoryUnavailableError as exc:
                if after != 0:
                    raise
                # The source's retention trimmed the start of the run: compare from
                # its first event still there (a copy resumed after the trim).
                after = exc.first_available - 1
                continue
            if not page:
                break
            _check_no_hole(run_id, after, page)
            new = await _import_page(destination, page)
            progress.events_copied += new
            progress.events_skipped += len(page) - new
            after = page[-1].seq
            if on_progress is not None:
                on_progress(progress)
        progress.runs_done += 1
        if on_progress is not None:
            on_progress(progress)
    progress.current_run = None
    return progress


def _check_no_hole(run_id: RunId, after: int, page: Sequence[EventEnvelope]) -> None:
    previous = after
    for envelope in page:
        if envelope.seq == previous + 1:
            previous = envelope.seq
        elif previous == 0:
            raise InvalidArgumentError(
                f"run {run_id}: the source's run starts at seq {envelope.seq} (earlier "
                "events were trimmed or lost); a copy keeps seqs, so it cannot start there"
            )
        else:
            raise InvalidArgumentError(
                f"run {run_id}: the source's seqs go from {previous} to {envelope.seq}; "
                "a log with a hole cannot be copied verbatim"
            )


# A copy racing another copy of the same run sees the other's envelopes appear
# between its read of the last seq and its write; trying the page again skips them.
_IMPORT_ATTEMPTS = 3


async def _import_page(destination: EventStore, page: Sequence[EventEnvelope]) -> int:
    for _ in range(_IMPORT_ATTEMPTS - 1):
        try:
            return await destination.import_envelopes(page)
        except RunDivergedError:
            raise
        except ConcurrencyError:
            continue  # another copy wrote meanwhile: this try skips what it wrote
    return await destination.import_envelopes(page)


async def verify_runs(
    source: EventStore,
    destination: EventStore,
    run_ids: Sequence[RunId] | None = None,
    *,
    page_size: int = PAGE_SIZE,
) -> list[RunComparison]:
    """Compare ``run_ids`` (default: every run of ``source``) envelope by envelope.

    Two envelopes are the same when their JSON as serde writes it is byte for byte
    the same: every field, every digit of every time (to the nanosecond) and of every
    number, ``1`` and ``1.0`` told apart.

    Where either side's retention trimmed a run's first events, the comparison
    starts at the first event both still hold.
    """
    ids: AsyncIterator[RunId] | Sequence[RunId] = (
        iter_run_ids(source) if run_ids is None else run_ids
    )
    results = []
    async for run_id in _aiter(ids):
        after, first_difference = 0, None
        while first_difference is None:
            try:
                left = await source.list_after(run_id, after, page_size)
                right = await destination.list_after(run_id, after, page_size)
            except HistoryUnavailableError as exc:
                if exc.first_available - 1 <= after:
                    raise
                # Either side's retention trimmed the start: compare what both hold.
                after = exc.first_available - 1
                continue
            for a, b in zip(left, right, strict=False):
                # serde's bytes, not model equality: 1 == 1.0 == True in Python, and
                # every digit of a time or a float must be the same on both sides.
                if encode_envelope(a) != encode_envelope(b):
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
