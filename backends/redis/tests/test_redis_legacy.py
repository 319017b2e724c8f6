"""Reading runs in the layout of behest's Redis store (``layout=legacy``), read-only."""

from __future__ import annotations

import pytest
import redis
from _redis_support import run, write_legacy_run

import eventstore
from eventstore import RunId, TextDelta
from eventstore.copy import copy_runs, verify_runs
from eventstore.errors import UnsupportedOperationError
from eventstore.events import format_time


@pytest.fixture
def legacy_url(redis_server_url: str, prefix: str) -> str:
    # behest's keys are "<prefix>:<run_id>"; the test's prefix keeps runs apart.
    return f"{redis_server_url}?layout=legacy&legacy_prefix={prefix}run"


def test_legacy_pages_by_seq_whatever_the_stream_order(
    raw: redis.Redis, prefix: str, legacy_url: str
) -> None:
    # 2 landed before 1, and 5 was lost to a crash between INCR and XADD.
    run_id = write_legacy_run(raw, f"{prefix}run", [2, 1, 3, 4, 7, 6, 8])

    async def body() -> tuple[list[list[int]], int]:
        async with eventstore.open_store(legacy_url) as store:
            pages, after = [], 0
            while page := await store.list_after(run_id, after, 3):
                pages.append([e.seq for e in page])
                after = page[-1].seq
            return pages, await store.last_seq(run_id)

    pages, last = run(body())
    assert pages == [[1, 2, 3], [4, 6, 7], [8]]
    assert last == 8


def test_legacy_runs_are_listed_and_read_only(
    raw: redis.Redis, prefix: str, legacy_url: str
) -> None:
    first = write_legacy_run(raw, f"{prefix}run", [1, 2])
    second = write_legacy_run(raw, f"{prefix}run", [1])

    async def body() -> list[RunId]:
        async with eventstore.open_store(legacy_url) as store:
            with pytest.raises(UnsupportedOperationError, match="read-only"):
                await store.append(TextDelta(run_id=first, delta="no"))
            return [info.run_id for info in await store.list_runs()]

    assert run(body()) == sorted([first, second])


def test_legacy_nanosecond_times_are_read_listed_and_copied_with_every_digit(
    raw: redis.Redis, prefix: str, legacy_url: str, redis_server_url: str
) -> None:
    # behest's envelopes carry chrono's nanosecond times (legacy_entry: emitted_at
    # 2026-01-01T00:00:<seq>.000000001Z, the event's ...00.123456789Z).
    run_id = write_legacy_run(raw, f"{prefix}run", [2, 1, 3])
    native_url = f"{redis_server_url}?prefix={prefix}dst:"

    async def body() -> tuple[list[str], list[str], list[str], bool]:
        async with (
            eventstore.open_store(legacy_url) as legacy,
            eventstore.open_store(native_url) as native,
        ):
            [info] = await legacy.list_runs()
            assert info.first_emitted_at is not None and info.last_emitted_at is not None
            listed = [format_time(info.first_emitted_at), format_time(info.last_emitted_at)]
            read = [format_time(e.emitted_at) for e in await legacy.list_after(run_id)]
            await copy_runs(legacy, native, [run_id])
            [copied] = await native.list_runs()
            assert copied.first_emitted_at is not None and copied.last_emitted_at is not None
            copied_times = [
                format_time(copied.first_emitted_at),
                format_time(copied.last_emitted_at),
            ]
            (comparison,) = await verify_runs(legacy, native, [run_id])
            return listed, read, copied_times, comparison.identical

    listed, read, copied, identical = run(body())
    stamps = [f"2026-01-01T00:00:{seq:02d}.000000001Z" for seq in (1, 2, 3)]
    assert read == stamps
    assert listed == copied == [stamps[0], stamps[-1]]
    assert identical
