"""``import_envelopes`` and ``eventstore copy``: legacy runs copied into the native layout.

The conformance suite checks import's rules; these tests check what is Redis' own: the
run indexes and metadata an import maintains, retention, that the read-only legacy
layout refuses imports, and the migration path from behest's store end to end.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from _redis_support import run, write_legacy_run
from eventstore_redis import RedisEventStore
from typer.testing import CliRunner

import eventstore
from eventstore import (
    Capability,
    EventEnvelope,
    InvalidArgumentError,
    RunId,
    RunInfo,
    RunStarted,
    SessionId,
    TextDelta,
)
from eventstore._cli import build_app
from eventstore.copy import copy_runs, verify_runs
from eventstore.errors import HistoryUnavailableError, UnsupportedOperationError
from eventstore.memory import MemoryEventStore


def _legacy_url(redis_server_url: str, prefix: str) -> str:
    return f"{redis_server_url}?layout=legacy&legacy_prefix={prefix}run"


def _native_url(redis_server_url: str, prefix: str) -> str:
    return f"{redis_server_url}?prefix={prefix}dst:"


async def _everything(url: str) -> tuple[list[RunInfo], dict[RunId, list[EventEnvelope]]]:
    async with eventstore.open_store(url) as store:
        infos = await store.list_runs()
        return infos, {info.run_id: await store.list_after(info.run_id) for info in infos}


async def _memory_run(
    run_id: RunId, session: SessionId, before: int, after: int
) -> list[EventEnvelope]:
    # Envelopes as another store made them: ``before`` events without a session, then
    # a RunStarted and ``after`` more events of that session.
    async with MemoryEventStore() as source:
        for index in range(before):
            await source.append(TextDelta(run_id=run_id, delta=f"pre {index}"))
        await source.append(RunStarted(run_id=run_id, session_id=session, provider="a", model="m"))
        for index in range(after):
            await source.append(TextDelta(run_id=run_id, delta=f"post {index}"))
        return await source.list_after(run_id)


def test_legacy_runs_copy_into_the_native_layout_identically(
    raw: redis.Redis, redis_server_url: str, prefix: str
) -> None:
    # The first run's entries landed out of seq order, as behest's racing appenders left them.
    shuffled = write_legacy_run(raw, f"{prefix}run", [2, 1, 3, 5, 4])
    plain = write_legacy_run(raw, f"{prefix}run", [1, 2, 3])

    async def body() -> None:
        async with (
            eventstore.open_store(_legacy_url(redis_server_url, prefix)) as source,
            eventstore.open_store(_native_url(redis_server_url, prefix)) as destination,
        ):
            assert isinstance(destination, RedisEventStore)
            first = await copy_runs(source, destination)
            assert (first.runs_done, first.events_copied, first.events_skipped) == (2, 8, 0)
            comparisons = await verify_runs(source, destination)
            assert [c.run_id for c in comparisons] == sorted([shuffled, plain])
            assert all(c.identical for c in comparisons)
            # list_runs of the copy agrees with the source's: session, last seq, times.
            assert await destination.list_runs() == await source.list_runs()
            again = await copy_runs(source, destination)
            assert (again.events_copied, again.events_skipped) == (0, 8)

    run(body())


def test_cli_copy_from_the_legacy_layout_with_verify(
    raw: redis.Redis, redis_server_url: str, prefix: str
) -> None:
    run_id = write_legacy_run(raw, f"{prefix}run", [1, 3, 2, 4, 5, 6])
    source, destination = (
        _legacy_url(redis_server_url, prefix),
        _native_url(redis_server_url, prefix),
    )
    app = build_app()
    args = ["copy", source, destination, "--verify"]

    first = CliRunner().invoke(app, args, env={"COLUMNS": "250"})
    assert first.exit_code == 0, first.output
    assert "copied 6 events of 1 runs" in first.output
    assert "verify: 1 of 1 runs identical" in first.output

    second = CliRunner().invoke(app, args, env={"COLUMNS": "250"})
    assert second.exit_code == 0, second.output
    assert "copied 0 events of 1 runs" in second.output
    assert "(6 already there)" in second.output

    (source_infos, source_runs), (copy_infos, copy_runs_) = (
        run(_everything(source)),
        run(_everything(destination)),
    )
    assert copy_infos == source_infos
    assert copy_runs_ == source_runs
    assert [e.seq for e in copy_runs_[run_id]] == [1, 2, 3, 4, 5, 6]


def test_the_legacy_layout_refuses_imports(redis_server_url: str, prefix: str) -> None:
    run_id = RunId.new()

    async def body() -> None:
        envelopes = await _memory_run(run_id, SessionId.new(), 0, 1)
        async with eventstore.open_store(_legacy_url(redis_server_url, prefix)) as legacy:
            assert Capability.IMPORT not in legacy.capabilities
            with pytest.raises(UnsupportedOperationError, match="import_envelopes"):
                await legacy.import_envelopes(envelopes)

    run(body())


def test_import_maintains_the_run_and_session_indexes(
    make_store: Callable[..., RedisEventStore],
) -> None:
    run_id, session = RunId.new(), SessionId.new()

    async def body() -> None:
        envelopes = await _memory_run(run_id, session, 2, 2)
        async with make_store() as store:
            # The first part has no session yet: the run is listed, under no session.
            await store.import_envelopes(envelopes[:2])
            [info] = await store.list_runs()
            assert (info.run_id, info.session_id, info.last_seq) == (run_id, None, 2)
            assert await store.list_runs(session_id=session) == []
            await store.import_envelopes(envelopes)
            expected = RunInfo(
                run_id=run_id,
                session_id=session,
                last_seq=5,
                first_emitted_at=envelopes[0].emitted_at,
                last_emitted_at=envelopes[-1].emitted_at,
            )
            assert await store.list_runs() == [expected]
            assert await store.list_runs(session_id=session) == [expected]
            assert await store.delete_run(run_id) == 5
            assert await store.list_runs(session_id=session) == []

    run(body())


def test_import_respects_retention(make_store: Callable[..., RedisEventStore]) -> None:
    run_id = RunId.new()

    async def body() -> None:
        envelopes = await _memory_run(run_id, SessionId.new(), 0, 5)
        async with make_store(max_events_per_run=3) as store:
            assert await store.import_envelopes(envelopes) == 6
            assert await store.list_after(run_id, 3) == envelopes[3:]
            with pytest.raises(HistoryUnavailableError) as caught:
                await store.list_after(run_id, 0)
            assert caught.value.first_available == 4

    run(body())


def test_copying_again_into_a_store_with_retention_copies_nothing_and_verifies(
    make_store: Callable[..., RedisEventStore],
) -> None:
    # A second copy compares what the destination still holds; the events its
    # retention trimmed are not "missing" and not a divergence.
    run_id = RunId.new()

    async def body() -> tuple[int, int, bool]:
        async with MemoryEventStore() as source, make_store(max_events_per_run=5) as store:
            await source.import_envelopes(await _memory_run(run_id, SessionId.new(), 0, 18))
            first = await copy_runs(source, store, [run_id])
            again = await copy_runs(source, store, [run_id])
            (comparison,) = await verify_runs(source, store, [run_id])
            return first.events_copied, again.events_copied, comparison.identical

    assert run(body()) == (19, 0, True)  # RunStarted and 18 deltas


def test_a_legacy_run_with_a_hole_is_refused_not_copied_with_a_gap(
    raw: redis.Redis, redis_server_url: str, prefix: str
) -> None:
    # behest lost seq 3 to a crash between INCR and XADD. A copy keeps seqs, and a
    # native run has no holes, so the copy stops with the run untouched.
    run_id = write_legacy_run(raw, f"{prefix}run", [1, 2, 4, 5])

    async def body() -> int:
        async with (
            eventstore.open_store(_legacy_url(redis_server_url, prefix)) as source,
            eventstore.open_store(_native_url(redis_server_url, prefix)) as destination,
        ):
            with pytest.raises(InvalidArgumentError, match="seqs go from 2 to 4"):
                await copy_runs(source, destination, [run_id])
            return await destination.last_seq(run_id)

    assert run(body()) == 0
