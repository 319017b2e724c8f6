"""eventstore.copy: verbatim, resumable copies and verification."""

from __future__ import annotations

import asyncio

import pytest

import eventstore as es
import eventstore.errors as es_errors
from eventstore.copy import CopyProgress, copy_runs, verify_runs
from eventstore.memory import MemoryEventStore


async def _fill(store: es.EventStore, runs: int, events: int) -> list[es.RunId]:
    ids = []
    for _ in range(runs):
        run_id = es.RunId.new()
        await store.append(
            es.RunStarted(run_id=run_id, session_id=es.SessionId.new(), provider="p", model="m")
        )
        for i in range(events - 2):
            await store.append(es.TextDelta(run_id=run_id, delta=f"chunk {i}"))
        await store.append(
            es.RunCompleted(run_id=run_id, finish_reason=es.FinishReason.STOP, iterations=1)
        )
        ids.append(run_id)
    return ids


def test_copy_keeps_every_envelope_and_verify_reports_identical() -> None:
    async def body() -> None:
        async with MemoryEventStore() as src, MemoryEventStore() as dst:
            ids = await _fill(src, runs=3, events=25)
            progress = await copy_runs(src, dst, page_size=10)
            assert progress.runs_done == 3 and progress.events_copied == 75
            comparisons = await verify_runs(src, dst)
            assert [c.run_id for c in comparisons] == sorted(ids)
            assert all(c.identical for c in comparisons)

    asyncio.run(body())


def test_interrupted_copy_resumes_without_duplicates() -> None:
    class Interrupt(Exception):
        pass

    def stop_after_two_pages(progress: CopyProgress) -> None:
        if progress.events_copied >= 20:
            raise Interrupt

    async def body() -> None:
        async with MemoryEventStore() as src, MemoryEventStore() as dst:
            (run_id,) = await _fill(src, runs=1, events=50)
            with pytest.raises(Interrupt):
                await copy_runs(src, dst, on_progress=stop_after_two_pages, page_size=10)
            assert await dst.last_seq(run_id) == 20
            progress = await copy_runs(src, dst, page_size=10)
            assert progress.events_copied == 30 and progress.events_skipped == 20
            assert await dst.list_after(run_id, None, 100) == await src.list_after(
                run_id, None, 100
            )
            again = await copy_runs(src, dst)
            assert again.events_copied == 0

    asyncio.run(body())


def test_verify_finds_the_first_difference() -> None:
    async def body() -> None:
        async with MemoryEventStore() as src, MemoryEventStore() as dst:
            (run_id,) = await _fill(src, runs=1, events=10)
            await dst.import_envelopes(await src.list_after(run_id, None, 6))
            (comparison,) = await verify_runs(src, dst, [run_id])
            assert not comparison.identical
            assert comparison.first_difference == 7
            assert (comparison.source_events, comparison.destination_events) == (10, 6)

    asyncio.run(body())


def test_destination_without_import_is_refused() -> None:
    class NoImport(MemoryEventStore):
        capabilities = MemoryEventStore.capabilities - {es.Capability.IMPORT}

    async def body() -> None:
        async with MemoryEventStore() as src, NoImport() as dst:
            with pytest.raises(es.ConfigurationError, match="import"):
                await copy_runs(src, dst)

    asyncio.run(body())


def test_copy_refuses_a_destination_run_that_diverged() -> None:
    async def body() -> None:
        async with MemoryEventStore() as src, MemoryEventStore() as dst:
            (run_id,) = await _fill(src, runs=1, events=5)
            for i in range(3):
                await dst.append(es.TextDelta(run_id=run_id, delta=f"unrelated {i}"))
            with pytest.raises(es.ConcurrencyError):
                await copy_runs(src, dst)
            assert await dst.last_seq(run_id) == 3

    asyncio.run(body())


def test_copy_refuses_a_destination_run_longer_than_the_source() -> None:
    async def body() -> None:
        async with MemoryEventStore() as src, MemoryEventStore() as dst:
            (run_id,) = await _fill(src, runs=1, events=3)
            await copy_runs(src, dst)
            await dst.append(es.TextDelta(run_id=run_id, delta="only here"))
            with pytest.raises(es.ConcurrencyError):
                await copy_runs(src, dst)

    asyncio.run(body())


def test_a_resumed_copy_refuses_a_difference_anywhere_in_the_stored_prefix() -> None:
    # Only seq 2 differs, and only in its time: same event id, same last envelope.
    async def body() -> None:
        async with MemoryEventStore() as src, MemoryEventStore() as dst:
            (run_id,) = await _fill(src, runs=1, events=6)
            envelopes = await src.list_after(run_id, None, 100)
            moved = envelopes[1].model_copy(
                update={"emitted_at": envelopes[1].emitted_at.subtract(hours=24 * 365)}
            )
            await dst.import_envelopes([envelopes[0], moved, *envelopes[2:4]])
            with pytest.raises(es_errors.RunDivergedError, match="seq 2 differs") as caught:
                await copy_runs(src, dst, page_size=3)
            assert isinstance(caught.value, es.ConcurrencyError)
            assert caught.value.seq == 2
            assert await dst.last_seq(run_id) == 4  # left as it was

    asyncio.run(body())


def test_a_source_with_a_hole_is_named_not_half_copied() -> None:
    class Holey(MemoryEventStore):
        """A log written by another tool, missing seq 4."""

        gaps_possible = True  # like the Redis backend's read-only legacy layout

        async def _list_after(
            self, run_id: es.RunId, after_seq: int, limit: int
        ) -> list[es.EventEnvelope]:
            page = await super()._list_after(run_id, after_seq, limit + 1)
            return [e for e in page if e.seq != 4][:limit]

    async def body() -> None:
        async with Holey() as src, MemoryEventStore() as dst:
            (run_id,) = await _fill(src, runs=1, events=8)
            with pytest.raises(es.InvalidArgumentError, match="go from 3 to 5"):
                await copy_runs(src, dst, page_size=3)
            assert await dst.last_seq(run_id) == 3
            # A hole at a page boundary, or before seq 1, is named the same way.
            with pytest.raises(es.InvalidArgumentError, match="go from 3 to 5"):
                await copy_runs(src, dst, page_size=3)

    asyncio.run(body())


def test_two_copies_of_the_same_runs_at_once_both_finish() -> None:
    async def body() -> None:
        async with MemoryEventStore() as src, MemoryEventStore() as dst:
            ids = await _fill(src, runs=4, events=30)
            first, second = await asyncio.gather(
                copy_runs(src, dst, page_size=7), copy_runs(src, dst, page_size=5)
            )
            assert first.events_copied + second.events_copied == 120
            assert all(c.identical for c in await verify_runs(src, dst, ids))

    asyncio.run(body())


class Trimming(MemoryEventStore):
    """Keeps the newest events only, as the Redis backend's retention does."""

    first = 1

    async def _list_after(
        self, run_id: es.RunId, after_seq: int, limit: int
    ) -> list[es.EventEnvelope]:
        if after_seq + 1 < self.first:
            raise es_errors.HistoryUnavailableError(
                run_id=run_id, requested_after=after_seq, first_available=self.first
            )
        return await super()._list_after(run_id, after_seq, limit)


def test_a_copy_resumed_after_the_source_trimmed_old_events_continues() -> None:
    async def body() -> None:
        async with Trimming() as src, MemoryEventStore() as dst:
            (run_id,) = await _fill(src, runs=1, events=6)
            await copy_runs(src, dst)
            for i in range(4):
                await src.append(es.TextDelta(run_id=run_id, delta=f"later {i}"))
            src.first = 4  # seqs 1..3 trimmed since the first copy
            progress = await copy_runs(src, dst)
            assert progress.events_copied == 4
            assert await dst.list_after(run_id, 3, 100) == await src.list_after(run_id, 3, 100)
            (comparison,) = await verify_runs(src, dst, [run_id])
            assert comparison.identical

    asyncio.run(body())


def test_copying_again_into_a_destination_that_trimmed_old_events_copies_nothing() -> None:
    async def body() -> None:
        async with MemoryEventStore() as src, Trimming() as dst:
            (run_id,) = await _fill(src, runs=1, events=20)
            await copy_runs(src, dst)
            dst.first = 16  # the destination keeps its newest 5
            again = await copy_runs(src, dst)
            assert (again.events_copied, again.events_skipped) == (0, 20)
            await src.append(es.TextDelta(run_id=run_id, delta="one more"))
            assert (await copy_runs(src, dst)).events_copied == 1
            (comparison,) = await verify_runs(src, dst, [run_id])
            assert comparison.identical

    asyncio.run(body())


def test_a_source_run_whose_start_is_gone_is_named_as_such() -> None:
    class StartLost(MemoryEventStore):
        """A log whose first events were trimmed by a store that reports nothing."""

        gaps_possible = True

        async def _list_after(
            self, run_id: es.RunId, after_seq: int, limit: int
        ) -> list[es.EventEnvelope]:
            return await super()._list_after(run_id, max(after_seq, 10), limit)

    async def body() -> None:
        async with StartLost() as src, MemoryEventStore() as dst:
            (run_id,) = await _fill(src, runs=1, events=15)
            with pytest.raises(es.InvalidArgumentError, match="starts at seq 11"):
                await copy_runs(src, dst, [run_id])
            assert await dst.last_seq(run_id) == 0

    asyncio.run(body())
