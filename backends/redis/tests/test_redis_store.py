"""The Redis store against a real server: the contract's rules and this backend's own."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
import redis
from _redis_support import entries, run
from eventstore_redis import RedisEventStore

from eventstore import (
    ConcurrencyError,
    CorruptEventError,
    EventEnvelope,
    EventId,
    IdempotencyConflictError,
    RunCompleted,
    RunId,
    RunStarted,
    SessionId,
    TextDelta,
)
from eventstore.errors import HistoryUnavailableError

MakeStore = Callable[..., RedisEventStore]


def delta(run_id: RunId, text: str = "x") -> TextDelta:
    return TextDelta(run_id=run_id, delta=text)


def started(run_id: RunId, session_id: SessionId) -> RunStarted:
    return RunStarted(run_id=run_id, session_id=session_id, provider="acme", model="gpt-test")


def test_seqs_are_consecutive_under_concurrent_appenders(make_store: MakeStore) -> None:
    async def body() -> list[int]:
        run_id = RunId.new()
        async with make_store() as store:
            await asyncio.gather(*(store.append(delta(run_id, str(i))) for i in range(200)))
            return [e.seq for e in await store.list_after(run_id, None, 1000)]

    assert run(body()) == list(range(1, 201))


def test_stream_ids_are_the_seqs(make_store: MakeStore, raw: redis.Redis) -> None:
    async def body() -> tuple[RunId, str]:
        run_id = RunId.new()
        async with make_store() as store:
            await store.append_batch([delta(run_id, str(i)) for i in range(3)])
            return run_id, store.keys.log(run_id)

    _, key = run(body())
    assert [entry_id for entry_id, _ in entries(raw, key)] == [b"1-0", b"2-0", b"3-0"]


def test_session_is_stamped_from_run_started(make_store: MakeStore) -> None:
    async def body() -> list[SessionId | None]:
        run_id, session = RunId.new(), SessionId.new()
        async with make_store() as store:
            await store.append(delta(run_id))
            await store.append_batch([delta(run_id), started(run_id, session), delta(run_id)])
            await store.append(delta(run_id))
            return [e.session_id for e in await store.list_after(run_id)]

    sessions = run(body())
    assert sessions[:2] == [None, None]
    assert sessions[2] is not None
    assert sessions[2:] == [sessions[2]] * 3


def test_list_after_pages_exactly(make_store: MakeStore) -> None:
    async def body() -> tuple[list[int], list[int]]:
        run_id = RunId.new()
        async with make_store() as store:
            await store.append_batch([delta(run_id, str(i)) for i in range(23)])
            seen: list[int] = []
            after = 0
            while page := await store.list_after(run_id, after, 5):
                seen.extend(e.seq for e in page)
                after = page[-1].seq
            middle = [e.seq for e in await store.list_after(run_id, 10, 3)]
            return seen, middle

    seen, middle = run(body())
    assert seen == list(range(1, 24))
    assert middle == [11, 12, 13]


def test_round_trip_equals_what_append_returned(make_store: MakeStore) -> None:
    async def body() -> bool:
        run_id = RunId.new()
        async with make_store() as store:
            written = [await store.append(started(run_id, SessionId.new()))]
            written += await store.append_batch([delta(run_id, "é ü 漢"), delta(run_id, '"q"\\')])
            written.append(
                await store.append(RunCompleted(run_id=run_id, finish_reason="stop", iterations=2))
            )
            return await store.list_after(run_id) == written

    assert run(body())


def test_retry_with_same_event_id_returns_stored_envelope(make_store: MakeStore) -> None:
    async def body() -> tuple[bool, int, bool]:
        run_id, event_id = RunId.new(), EventId.new()
        # A retry sends the same events (a rebuilt one would have another timestamp).
        event, events = delta(run_id), [delta(run_id), delta(run_id)]
        async with make_store() as store:
            first = await store.append(event, event_id=event_id)
            await store.append(delta(run_id))
            # Checked before expected_seq: a retry of a committed append is no conflict.
            again = await store.append(event, event_id=event_id, expected_seq=0)
            batch_ids = [EventId.new(), EventId.new()]
            batch = await store.append_batch(events, event_ids=batch_ids)
            batch_again = await store.append_batch(events, event_ids=batch_ids)
            return again == first, await store.last_seq(run_id), batch_again == batch

    same, last, same_batch = run(body())
    assert same and same_batch
    assert last == 4


def test_batch_with_some_ids_stored_is_a_conflict(make_store: MakeStore) -> None:
    async def body() -> int:
        run_id, known = RunId.new(), EventId.new()
        async with make_store() as store:
            await store.append(delta(run_id), event_id=known)
            with pytest.raises(IdempotencyConflictError):
                await store.append_batch(
                    [delta(run_id), delta(run_id)], event_ids=[known, EventId.new()]
                )
            return await store.last_seq(run_id)

    assert run(body()) == 1


def test_expected_seq_mismatch_raises_and_writes_nothing(make_store: MakeStore) -> None:
    async def body() -> tuple[ConcurrencyError, int]:
        run_id = RunId.new()
        async with make_store() as store:
            await store.append_batch([delta(run_id)] * 2)
            with pytest.raises(ConcurrencyError) as caught:
                await store.append_batch([delta(run_id)] * 3, expected_seq=1)
            await store.append(delta(run_id), expected_seq=2)
            return caught.value, await store.last_seq(run_id)

    error, last = run(body())
    assert (error.expected_seq, error.actual_seq) == (1, 2)
    assert last == 3


def test_list_runs_uses_the_index_and_pages(make_store: MakeStore) -> None:
    async def body() -> tuple[list[RunId], list[RunId], list[RunId], SessionId]:
        session = SessionId.new()
        runs = sorted(RunId.new() for _ in range(5))
        async with make_store() as store:
            for index, run_id in enumerate(runs):
                if index % 2 == 0:
                    await store.append(started(run_id, session))
                else:
                    await store.append(delta(run_id))
            first = await store.list_runs(limit=3)
            rest = await store.list_runs(limit=3, after=first[-1].run_id)
            mine = await store.list_runs(session_id=session)
            infos = first + rest
            assert all(i.last_seq == 1 and i.first_emitted_at is not None for i in infos)
            return [i.run_id for i in infos], [i.run_id for i in mine], runs, session

    listed, mine, runs, _ = run(body())
    assert listed == runs
    assert mine == runs[0::2]


def test_delete_run_removes_every_key_and_restarts_at_one(
    make_store: MakeStore, raw: redis.Redis, prefix: str
) -> None:
    async def body() -> tuple[int, int, list[Any], int, list[bytes]]:
        run_id, session = RunId.new(), SessionId.new()
        async with make_store() as store:
            await store.append_batch([started(run_id, session), delta(run_id), delta(run_id)])
            removed = await store.delete_run(run_id)
            last = await store.last_seq(run_id)
            runs = await store.list_runs()
            keys = raw.keys(f"{prefix}*")  # fine in a test: one prefix, a few keys
            # The delete's receipt (for a re-sent delete, see DELETE_SCRIPT) expires.
            receipts = [key for key in keys if b":deleted:" in key]
            assert all(0 < raw.pttl(key) <= 120_000 for key in receipts)
            again = await store.append(delta(run_id))
            return removed, last, runs + keys, again.seq, receipts

    removed, last, leftovers, seq, receipts = run(body())
    assert len(receipts) == 1
    assert (removed, last, leftovers, seq) == (3, 0, receipts, 1)


def test_live_subscribe_delivers_appends_in_order(make_store: MakeStore) -> None:
    async def body() -> list[int]:
        run_id = RunId.new()
        async with make_store(block_ms=200) as store:
            await store.append_batch([delta(run_id)] * 3)

            async def produce() -> None:
                for i in range(20):
                    await store.append(delta(run_id, str(i)))
                    if i % 5 == 0:
                        await asyncio.sleep(0.01)
                await store.append(RunCompleted(run_id=run_id, finish_reason="stop", iterations=1))

            producer = asyncio.create_task(produce())
            seqs = [e.seq async for e in store.subscribe(run_id, 1, until_terminal=True)]
            await producer
            return seqs

    assert run(body()) == list(range(2, 25))


def test_closing_the_store_ends_a_blocked_subscriber(make_store: MakeStore) -> None:
    async def body() -> type[BaseException]:
        run_id = RunId.new()
        store = await make_store(block_ms=60_000).open()

        async def consume() -> None:
            async for _ in store.subscribe(run_id):
                pass

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0.2)
        await store.close()
        try:
            await asyncio.wait_for(consumer, 5)
        except Exception as exc:
            return type(exc)
        raise AssertionError("the subscriber kept running after close")

    from eventstore.errors import StoreClosedError

    assert run(body()) is StoreClosedError


def test_retention_caps_events_and_reports_trimmed_history(make_store: MakeStore) -> None:
    async def body() -> tuple[list[int], HistoryUnavailableError, list[int]]:
        run_id = RunId.new()
        async with make_store(max_events_per_run=5) as store:
            for i in range(12):
                await store.append(delta(run_id, str(i)))
            kept = [e.seq for e in await store.list_after(run_id, 7)]
            with pytest.raises(HistoryUnavailableError) as caught:
                await store.list_after(run_id, 2)
            tail = [e.seq for e in await store.list_after(run_id, 7, 2)]
            return kept, caught.value, tail

    kept, error, tail = run(body())
    assert kept == [8, 9, 10, 11, 12]
    assert tail == [8, 9]
    assert (error.requested_after, error.first_available) == (2, 8)


def test_retention_is_off_by_default(make_store: MakeStore) -> None:
    async def body() -> int:
        run_id = RunId.new()
        async with make_store() as store:
            await store.append_batch([delta(run_id)] * 10_500)
            return len(await store.list_after(run_id, 0, 10_000)) + len(
                await store.list_after(run_id, 10_000, 10_000)
            )

    assert run(body()) == 10_500


def _damage(raw: redis.Redis, key: str, seq: int) -> None:
    pipe = raw.pipeline()
    pipe.delete(key)
    for entry_id, fields in entries(raw, key):
        data = b"not json" if entry_id == f"{seq}-0".encode() else fields[b"e"]
        pipe.xadd(key, {b"e": data}, id=entry_id)
    pipe.execute()


def test_corrupt_entry_raises_naming_run_and_seq(make_store: MakeStore, raw: redis.Redis) -> None:
    async def body() -> CorruptEventError:
        run_id = RunId.new()
        async with make_store() as store:
            await store.append_batch([delta(run_id)] * 4)
            _damage(raw, store.keys.log(run_id), 3)
            assert len(await store.list_after(run_id, 0, 2)) == 2
            with pytest.raises(CorruptEventError) as caught:
                await store.list_after(run_id)
            return caught.value

    error = run(body())
    assert error.position.startswith("seq 3") if isinstance(error.position, str) else False
    assert "3-0" in str(error)


def test_skip_corrupt_is_opt_in_warns_and_counts(
    make_store: MakeStore, raw: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> tuple[list[int], int]:
        run_id = RunId.new()
        async with make_store(skip_corrupt=True) as store:
            await store.append_batch([delta(run_id)] * 5)
            _damage(raw, store.keys.log(run_id), 2)
            page = await store.list_after(run_id, 0, 3)
            return [e.seq for e in page], store.skipped_corrupt

    with caplog.at_level(logging.WARNING, logger="eventstore.redis"):
        seqs, skipped = run(body())
    assert seqs == [1, 3, 4]  # the page is still full
    assert skipped == 1
    assert "seq 2" in caplog.text


def test_a_subscriber_past_a_skipped_corrupt_entry_waits_and_reads_on(
    make_store: MakeStore, raw: redis.Redis
) -> None:
    # The newest entry is corrupt and skipped. Waiting from the last seq delivered
    # would find that entry at once, every time: a busy loop instead of a wait.
    async def body() -> tuple[list[int], int]:
        run_id = RunId.new()
        async with make_store(skip_corrupt=True) as store:
            await store.append_batch([delta(run_id)] * 5)
            _damage(raw, store.keys.log(run_id), 5)
            reads = 0
            read = store._list_after

            async def counting(*args: Any) -> list[EventEnvelope]:
                nonlocal reads
                reads += 1
                return await read(*args)

            store._list_after = counting  # type: ignore[method-assign,assignment]
            stream = store.subscribe(run_id)
            delivered = [(await anext(stream)).seq for _ in range(4)]
            following = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(0.5)
            idle_reads = reads
            await store.append(delta(run_id))
            delivered.append((await asyncio.wait_for(following, 10)).seq)
            await stream.aclose()  # type: ignore[attr-defined]
            return delivered, idle_reads

    delivered, idle_reads = run(body())
    assert delivered == [1, 2, 3, 4, 6]  # the corrupt seq 5 skipped, not waited for
    assert idle_reads < 20  # about one read per wake-up, not thousands


def _rewrite(raw: redis.Redis, key: str, seq: int, fields: dict[bytes, bytes]) -> None:
    """Rebuild the stream with ``fields`` (plus the envelope as "e" if kept) at ``seq``."""
    pipe = raw.pipeline()
    pipe.delete(key)
    for entry_id, stored in entries(raw, key):
        if entry_id == f"{seq}-0".encode():
            pipe.xadd(
                key,
                {k: stored[b"e"] if v == b"<envelope>" else v for k, v in fields.items()},
                id=entry_id,
            )
        else:
            pipe.xadd(key, {b"e": stored[b"e"]}, id=entry_id)
    pipe.execute()


def test_an_entry_with_other_fields_is_read_by_its_e_field(
    make_store: MakeStore, raw: redis.Redis
) -> None:
    async def body() -> list[int]:
        run_id = RunId.new()
        async with make_store() as store:
            await store.append_batch([delta(run_id)] * 4)
            _rewrite(raw, store.keys.log(run_id), 2, {b"by": b"other", b"e": b"<envelope>"})
            return [e.seq for e in await store.list_after(run_id)]

    assert run(body()) == [1, 2, 3, 4]


def test_backdoor_remove_and_replace_touch_only_the_entry(
    make_store: MakeStore, raw: redis.Redis
) -> None:
    async def body() -> None:
        run_id = RunId.new()
        async with make_store() as store:
            stored = await store.append_batch([delta(run_id, str(i)) for i in range(4)])
            backdoor = store.backdoor()
            key = store.keys.log(run_id)
            other = stored[0].model_copy(update={"seq": 9})
            await backdoor.replace(run_id, 3, other.model_dump_json())
            await backdoor.remove(run_id, 2)
            assert await backdoor.raw_seqs(run_id) == [1, 3, 4]
            assert entries(raw, key)[1] == (b"3-0", {b"e": other.model_dump_json().encode()})
            assert await store.last_seq(run_id) == 4  # meta untouched
            for missing in (2, 5):
                with pytest.raises(KeyError):
                    await backdoor.remove(run_id, missing)
                with pytest.raises(KeyError):
                    await backdoor.replace(run_id, missing, "{}")

    run(body())


def test_skip_corrupt_skips_an_envelope_that_disagrees_with_its_id(
    make_store: MakeStore,
) -> None:
    async def body() -> tuple[list[int], int]:
        run_id = RunId.new()
        async with make_store(skip_corrupt=True) as store:
            stored = await store.append_batch([delta(run_id)] * 4)
            moved = stored[1].model_copy(update={"seq": 7})
            await store.backdoor().replace(run_id, 2, moved.model_dump_json())
            page = await store.list_after(run_id, 0, 10)
            return [e.seq for e in page], store.skipped_corrupt

    assert run(body()) == ([1, 3, 4], 1)


def test_partial_batch_says_how_many_ids_are_stored(make_store: MakeStore) -> None:
    async def body() -> str:
        run_id, known = RunId.new(), EventId.new()
        async with make_store() as store:
            await store.append(delta(run_id), event_id=known)
            with pytest.raises(IdempotencyConflictError) as caught:
                await store.append_batch(
                    [delta(run_id)] * 3, event_ids=[known, EventId.new(), EventId.new()]
                )
            return str(caught.value)

    assert "1 of the batch's 3 event ids are already stored" in run(body())


def test_an_entry_without_an_e_field_is_corrupt(make_store: MakeStore, raw: redis.Redis) -> None:
    async def body() -> None:
        run_id = RunId.new()
        async with make_store() as store:
            await store.append_batch([delta(run_id)] * 4)
            _rewrite(raw, store.keys.log(run_id), 3, {b"data": b"<envelope>"})
            with pytest.raises(CorruptEventError, match="no 'e' field"):
                await store.list_after(run_id)

    run(body())


def test_missing_entry_is_corruption_not_a_silent_gap(
    make_store: MakeStore, raw: redis.Redis
) -> None:
    async def body() -> None:
        run_id = RunId.new()
        async with make_store() as store:
            await store.append_batch([delta(run_id)] * 4)
            raw.xdel(store.keys.log(run_id), "2-0")
            with pytest.raises(CorruptEventError, match="no entry 2-0"):
                await store.list_after(run_id)

    run(body())


def test_script_is_reloaded_after_script_flush(make_store: MakeStore, raw: redis.Redis) -> None:
    async def body() -> list[int]:
        run_id = RunId.new()
        async with make_store() as store:
            await store.append(delta(run_id))
            raw.script_flush()
            await store.append(delta(run_id))
            return [e.seq for e in await store.list_after(run_id)]

    assert run(body()) == [1, 2]


def test_emitted_at_is_the_servers_commit_time(make_store: MakeStore, raw: redis.Redis) -> None:
    async def body() -> tuple[int, int, int]:
        run_id = RunId.new()
        before = raw.time()
        async with make_store() as store:
            envelope = await store.append(delta(run_id))
        after = raw.time()
        return (
            before[0] * 1_000_000 + before[1],
            envelope.emitted_at.timestamp(unit="microsecond"),
            after[0] * 1_000_000 + after[1],
        )

    low, stamp, high = run(body())
    assert low <= stamp <= high


def test_retry_of_a_trimmed_append_is_not_stored_again(make_store: MakeStore) -> None:
    async def body() -> tuple[HistoryUnavailableError, int]:
        run_id, first = RunId.new(), EventId.new()
        async with make_store(max_events_per_run=2) as store:
            await store.append(delta(run_id), event_id=first)
            await store.append_batch([delta(run_id)] * 3)
            with pytest.raises(HistoryUnavailableError) as caught:
                await store.append(delta(run_id), event_id=first)
            return caught.value, await store.last_seq(run_id)

    error, last = run(body())
    assert (error.first_available, last) == (3, 4)


def test_pipelined_appends_survive_a_script_flush(make_store: MakeStore, raw: redis.Redis) -> None:
    async def body() -> list[int]:
        run_id = RunId.new()
        async with make_store() as store:
            await store.append(delta(run_id))
            raw.script_flush()
            # Concurrent appends go out as one pipeline that meets NOSCRIPT.
            await asyncio.gather(*(store.append(delta(run_id, str(i))) for i in range(50)))
            return [e.seq for e in await store.list_after(run_id)]

    assert run(body()) == list(range(1, 52))


def test_a_cancelled_subscriber_ends(make_store: MakeStore) -> None:
    """Regression: redis-py's wait_for on Python 3.11 could swallow the cancellation."""

    async def body() -> tuple[bool, int]:
        run_id = RunId.new()
        async with make_store() as store:
            delivered: asyncio.Queue[int] = asyncio.Queue()

            async def follow() -> None:
                async for envelope in store.subscribe(run_id):
                    delivered.put_nowait(envelope.seq)

            follower = asyncio.create_task(follow())
            for _ in range(30):
                await store.append(delta(run_id))
                await delivered.get()
            # Cancelled right after a delivery, while it re-reads: the racy moment.
            follower.cancel()
            done, _ = await asyncio.wait({follower}, timeout=10)
            return bool(done) and follower.cancelled(), delivered.qsize()

    assert run(body()) == (True, 0)


def test_cleanup_after_a_caught_cancellation_still_works(make_store: MakeStore) -> None:
    """A task that catches its cancellation may still write and read (e.g. RunCancelled)."""

    async def body() -> list[int]:
        run_id = RunId.new()
        async with make_store() as store:
            seqs: list[int] = []

            async def worker() -> None:
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    seqs.append((await store.append(delta(run_id))).seq)
                    seqs.append(await store.last_seq(run_id))
                    seqs.extend(e.seq for e in await store.list_after(run_id))
                    raise

            task = asyncio.create_task(worker())
            await asyncio.sleep(0.05)
            task.cancel()
            await asyncio.wait({task}, timeout=10)
            assert task.cancelled()
            return seqs

    assert run(body()) == [1, 1, 1]


def test_a_cancelled_reader_loop_ends(make_store: MakeStore) -> None:
    async def body() -> bool:
        run_id = RunId.new()
        async with make_store() as store:
            await store.append(delta(run_id))

            async def read_forever() -> None:
                while True:
                    await store.list_after(run_id)

            reader = asyncio.create_task(read_forever())
            await asyncio.sleep(0.05)
            reader.cancel()
            done, _ = await asyncio.wait({reader}, timeout=10)
            return bool(done) and reader.cancelled()

    assert run(body())
