"""Reading runs in the layout of behest's Redis store (``layout=legacy``), read-only."""

from __future__ import annotations

import pytest
import redis
from _redis_support import run, write_legacy_run

import eventstore
from eventstore import RunId, TextDelta
from eventstore.errors import UnsupportedOperationError


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
