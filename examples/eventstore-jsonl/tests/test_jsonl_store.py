"""What the conformance suite cannot see: the file format, crash recovery, the URL."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from eventstore_jsonl import JsonlEventStore
from eventstore_jsonl.plugin import CAPABILITIES

import eventstore
import eventstore.backend
from eventstore import (
    BackendUnavailableError,
    ConfigurationError,
    CorruptEventError,
    EventEnvelope,
    EventId,
    RunCompleted,
    RunId,
    RunInfo,
    RunStarted,
    SessionId,
    TextDelta,
)
from eventstore.copy import copy_runs, verify_runs
from eventstore.events import EARLIEST_TIME, LATEST_TIME, parse_time

_T = TypeVar("_T")


def run(coro: Coroutine[Any, Any, _T]) -> _T:
    # A hung store fails the test instead of blocking the run.
    async def guarded() -> _T:
        async with asyncio.timeout(30):
            return await coro

    return asyncio.run(guarded())


def deltas(run_id: RunId, count: int) -> list[TextDelta]:
    return [TextDelta(run_id=run_id, delta=f"d{i}") for i in range(count)]


async def append_and_read(url: str, run_id: RunId, count: int) -> list[EventEnvelope]:
    async with eventstore.open_store(url) as store:
        await store.append_batch(deltas(run_id, count))
        return await store.list_after(run_id)


def new_run_file(url: str, directory: Path, count: int) -> tuple[RunId, Path]:
    """A new run of ``count`` events, and its file."""
    run_id = RunId.new()
    run(append_and_read(url, run_id, count))
    return run_id, directory / f"{run_id}.jsonl"


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "events"


@pytest.fixture
def url(directory: Path) -> str:
    return f"jsonl://{directory}"


# -- the file format ------------------------------------------------------------------


def test_format_one_envelope_json_per_line_in_seq_order(url: str, directory: Path) -> None:
    run_id = RunId.new()
    stored = run(append_and_read(url, run_id, 3))
    lines = (directory / f"{run_id}.jsonl").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3]
    assert [EventEnvelope.model_validate_json(line) for line in lines] == stored


def test_format_imported_envelopes_are_stored_verbatim(url: str, tmp_path: Path) -> None:
    run_id = RunId.new()
    session = SessionId.new()

    async def scenario() -> tuple[list[EventEnvelope], list[EventEnvelope], int]:
        async with eventstore.open_store("memory://") as source:
            await source.append(
                RunStarted(run_id=run_id, session_id=session, provider="p", model="m")
            )
            await source.append_batch(deltas(run_id, 3))
            original = await source.list_after(run_id)
        async with eventstore.open_store(url) as destination:
            assert await destination.import_envelopes(original[:2]) == 2
            # Resuming an interrupted copy stores only what is missing.
            assert await destination.import_envelopes(original) == 2
            copied = await destination.list_after(run_id)
            # The session of the imported run carries on for new appends.
            (after,) = await destination.append_batch(deltas(run_id, 1))
            return original, copied, after.seq if after.session_id == session else -1

    original, copied, next_seq = run(scenario())
    assert copied == original
    assert next_seq == 5


def test_nanosecond_times_and_extreme_years_are_kept_and_listed(url: str, directory: Path) -> None:
    # Envelopes as the Rust runtime writes them (chrono: 0, 3, 6 or 9 digits), years
    # 1 to 9999: read back, listed and stored with every digit.
    run_id, session = RunId.new(), SessionId.new()
    times = [
        "0001-01-01T00:00:00.000000001Z",
        "2026-03-04T05:06:07.120Z",
        "9999-12-31T23:59:59.999999999Z",
    ]
    envelopes = [
        EventEnvelope(
            event_id=EventId.new(),
            seq=index + 1,
            run_id=run_id,
            session_id=session,
            event=(
                RunStarted(
                    run_id=run_id, session_id=session, provider="p", model="m", timestamp=text
                )
                if index == 0
                else TextDelta(run_id=run_id, delta=f"d{index}", timestamp=text)
            ),
            emitted_at=parse_time(text),
        )
        for index, text in enumerate(times)
    ]

    async def scenario() -> tuple[list[EventEnvelope], list[RunInfo]]:
        async with eventstore.open_store(url) as store:
            await store.import_envelopes(envelopes)
        async with eventstore.open_store(url) as store:  # a fresh index
            return await store.list_after(run_id), await store.list_runs()

    read, infos = run(scenario())
    assert read == envelopes
    assert infos == [
        RunInfo(
            run_id=run_id,
            session_id=session,
            last_seq=3,
            first_emitted_at=EARLIEST_TIME.add(nanoseconds=1),
            last_emitted_at=LATEST_TIME,
        )
    ]
    lines = [json.loads(line) for line in (directory / f"{run_id}.jsonl").read_text().splitlines()]
    assert [line["emitted_at"] for line in lines] == times
    assert [next(iter(line["event"].values()))["timestamp"] for line in lines] == times


def test_copy_into_jsonl_is_resumable_and_verifies_identical(url: str) -> None:
    run_ids = [RunId.new() for _ in range(3)]

    async def scenario() -> tuple[int, int, list[bool]]:
        async with (
            eventstore.open_store("memory://") as source,
            eventstore.open_store(url) as destination,
        ):
            for run_id in run_ids:
                await source.append_batch(deltas(run_id, 120))
            # An interrupted copy: one run and part of another made it across.
            await copy_runs(source, destination, run_ids[:1])
            await destination.import_envelopes(await source.list_after(run_ids[1], 0, 50))
            resumed = await copy_runs(source, destination, page_size=40)
            compared = await verify_runs(source, destination)
            return resumed.events_copied, resumed.events_skipped, [c.identical for c in compared]

    copied, skipped, identical = run(scenario())
    assert (copied, skipped) == (70 + 120, 120 + 50)
    assert identical == [True, True, True]


# -- crash recovery -------------------------------------------------------------------


def test_torn_last_line_is_ignored_then_truncated_by_the_next_append(
    url: str, directory: Path
) -> None:
    run_id, path = new_run_file(url, directory, 2)
    intact = path.read_bytes()
    # What a writer killed inside write() leaves: part of a line, no newline.
    path.write_bytes(intact + intact.splitlines(keepends=True)[0][:40])

    async def scenario() -> tuple[int, list[EventEnvelope], list[EventEnvelope]]:
        async with eventstore.open_store(url) as store:
            before = await store.last_seq(run_id)
            appended = await store.append_batch(deltas(run_id, 1))
            return before, appended, await store.list_after(run_id)

    before, appended, stored = run(scenario())
    assert before == 2
    assert appended[0].seq == 3
    assert [e.seq for e in stored] == [1, 2, 3]
    assert stored[2] == appended[0]
    assert path.read_bytes().startswith(intact)
    assert path.read_bytes().count(b"\n") == 3


def test_batch_cut_short_between_its_lines_is_dropped_as_a_whole(url: str, directory: Path) -> None:
    run_id, path = new_run_file(url, directory, 1)
    committed = path.read_bytes()

    run(append_and_read(url, run_id, 3))
    # A crash after two whole lines of the three-line batch reached the file.
    batch = path.read_bytes()[len(committed) :].splitlines(keepends=True)
    assert [line.endswith(b" \n") for line in batch] == [True, True, False]
    path.write_bytes(committed + b"".join(batch[:2]))

    async def scenario() -> tuple[int, list[int]]:
        async with eventstore.open_store(url) as store:
            before = await store.last_seq(run_id)
            await store.append(TextDelta(run_id=run_id, delta="after the crash"))
            return before, [e.seq for e in await store.list_after(run_id)]

    assert run(scenario()) == (1, [1, 2])
    assert path.read_bytes().count(b"\n") == 2


def test_torn_line_alone_is_an_empty_run(url: str, directory: Path) -> None:
    run_id = RunId.new()
    directory.mkdir()
    (directory / f"{run_id}.jsonl").write_bytes(b'{"event_id":"01')

    async def scenario() -> tuple[int, list[EventEnvelope], int]:
        async with eventstore.open_store(url) as store:
            runs = await store.list_runs()
            first = await store.append(TextDelta(run_id=run_id, delta="x"))
            return len(runs), await store.list_after(run_id), first.seq

    runs, stored, first_seq = run(scenario())
    assert runs == 0
    assert first_seq == 1
    assert [e.seq for e in stored] == [1]


def test_corrupt_complete_line_raises_naming_run_and_seq(url: str, directory: Path) -> None:
    run_id, path = new_run_file(url, directory, 3)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + b"this is not json\n" + lines[2])

    async def scenario() -> tuple[CorruptEventError, list[int], list[int]]:
        async with eventstore.open_store(url) as store:
            with pytest.raises(CorruptEventError) as caught:
                await store.list_after(run_id)
            before = [e.seq for e in await store.list_after(run_id, 0, 1)]
            after = [e.seq for e in await store.list_after(run_id, 2)]
            return caught.value, before, after

    error, before, after = run(scenario())
    assert error.run_id == run_id
    assert error.position == "seq 2 (line 2)"
    assert str(run_id) in str(error)
    assert (before, after) == ([1], [3])


def test_corrupt_line_holding_another_seq_is_reported(url: str, directory: Path) -> None:
    run_id, path = new_run_file(url, directory, 3)
    first, second, third = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(first + third + second)

    async def scenario() -> None:
        async with eventstore.open_store(url) as store:
            await store.list_after(run_id)

    with pytest.raises(CorruptEventError, match="expected seq 2, the store returned seq 3"):
        run(scenario())


def test_corrupt_last_line_stops_appends_rather_than_guess_the_session(
    url: str, directory: Path
) -> None:
    run_id, path = new_run_file(url, directory, 2)
    first, _ = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(first + b"garbage\n")

    async def scenario() -> None:
        async with eventstore.open_store(url) as store:
            await store.append(TextDelta(run_id=run_id, delta="x"))

    with pytest.raises(CorruptEventError, match="session is unknown"):
        run(scenario())
    assert path.read_bytes().count(b"\n") == 2


# -- several stores on one directory --------------------------------------------------


def test_subscriber_sees_appends_of_another_store_by_polling(url: str) -> None:
    run_id = RunId.new()

    async def scenario() -> list[int]:
        async with eventstore.open_store(url) as reader, eventstore.open_store(url) as writer:
            stream = reader.subscribe(run_id, until_terminal=True)
            consumer = asyncio.create_task(_seqs(stream))
            await writer.append_batch(deltas(run_id, 2))
            await writer.append(RunCompleted(run_id=run_id, finish_reason="stop", iterations=1))
            return await consumer

    assert run(scenario()) == [1, 2, 3]


async def _seqs(stream: Any) -> list[int]:
    return [envelope.seq async for envelope in stream]


def test_cached_index_notices_a_run_deleted_and_rewritten_elsewhere(url: str) -> None:
    run_id = RunId.new()

    async def scenario() -> tuple[list[EventEnvelope], list[EventEnvelope]]:
        async with eventstore.open_store(url) as first, eventstore.open_store(url) as second:
            await first.append_batch(deltas(run_id, 2))
            assert len(await first.list_after(run_id)) == 2  # first now caches the file
            assert await second.delete_run(run_id) == 2
            rewritten = await second.append_batch(deltas(run_id, 4))
            return rewritten, await first.list_after(run_id)

    rewritten, seen_by_first = run(scenario())
    assert seen_by_first == rewritten


def test_delete_removes_the_run_files(url: str, directory: Path) -> None:
    run_id = RunId.new()

    async def scenario() -> int:
        async with eventstore.open_store(url) as store:
            await store.append_batch(deltas(run_id, 2))
            return await store.delete_run(run_id)

    assert run(scenario()) == 2
    assert list(directory.iterdir()) == []


# -- URL, options, errors -------------------------------------------------------------


def test_url_opens_a_jsonl_store_with_its_options(directory: Path) -> None:
    store = eventstore.open_store(f"jsonl://{directory}?fsync=false", max_event_bytes=4096)
    assert isinstance(store, JsonlEventStore)
    assert (store.directory, store.fsync, store.max_event_bytes) == (str(directory), False, 4096)
    assert repr(store) == f"<JsonlEventStore jsonl://{directory}>"


@pytest.mark.parametrize(
    ("bad_url", "message"),
    [
        ("jsonl://somehost/var/events", "name a local directory"),
        ("jsonl://", "name a local directory"),
        ("jsonl:///tmp/x?fsync=perhaps", "option 'fsync'"),
        ("jsonl:///tmp/x?compress=yes", "unknown option 'compress'"),
    ],
)
def test_url_errors_are_configuration_errors(bad_url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        eventstore.open_store(bad_url)


def test_url_credentials_never_reach_the_message() -> None:
    with pytest.raises(ConfigurationError) as caught:
        eventstore.open_store("jsonl://admin:hunter2@/var/events")
    assert "hunter2" not in str(caught.value)


def test_open_without_create_dir_needs_an_existing_directory(directory: Path) -> None:
    store = eventstore.open_store(f"jsonl://{directory}", create_dir=False)
    with pytest.raises(ConfigurationError, match="does not exist"):
        run(store.open())
    assert not directory.exists()


def test_open_on_a_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "a-file"
    path.write_text("")
    with pytest.raises(ConfigurationError, match="not a directory"):
        run(eventstore.open_store(f"jsonl://{path}").open())


def test_vanished_directory_is_backend_unavailable_with_cause(url: str, directory: Path) -> None:
    async def scenario() -> None:
        async with eventstore.open_store(url) as store:
            shutil.rmtree(directory)
            await store.append(TextDelta(run_id=RunId.new(), delta="x"))

    with pytest.raises(BackendUnavailableError, match=r"^jsonl: append in .* ENOENT") as caught:
        run(scenario())
    assert isinstance(caught.value.__cause__, FileNotFoundError)


# -- registration ---------------------------------------------------------------------


def test_plugin_is_registered_with_the_store_capabilities() -> None:
    backend = eventstore.backend.default_registry().backends["jsonl"]
    assert backend.spec.schemes == ("jsonl",)
    assert backend.spec.capabilities == CAPABILITIES == JsonlEventStore.capabilities
    assert backend.distribution == "eventstore-jsonl"


def test_subscriber_does_not_spin_after_another_process_deletes_the_run(tmp_path: Path) -> None:
    """A cached index of a deleted run must not keep reporting news (a busy loop)."""
    url = f"jsonl://{tmp_path}"

    async def body() -> int:
        run_id = RunId.new()
        reader = eventstore.open_store(url)
        assert isinstance(reader, JsonlEventStore)
        async with reader, eventstore.open_store(url) as writer:
            await writer.append_batch([TextDelta(run_id=run_id, delta=str(i)) for i in range(5)])
            assert await reader.last_seq(run_id) == 5  # the reader caches the run's index
            await writer.delete_run(run_id)
            calls = 0
            original = reader._list_after

            async def counting(run: RunId, after: int, limit: int) -> list[EventEnvelope]:
                nonlocal calls
                calls += 1
                return await original(run, after, limit)

            reader._list_after = counting  # type: ignore[method-assign]
            stream = reader.subscribe(run_id, 3)
            task = asyncio.ensure_future(anext(aiter(stream)))
            await asyncio.sleep(0.5)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return calls

    # Polling backs off to 100 ms: a handful of reads, not thousands.
    assert asyncio.run(body()) < 30


# -- large files, damaged and restored directories ---------------------------------------


def test_short_reads_neither_hide_events_nor_let_an_append_truncate_them(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Linux returns at most ~2 GiB from one read. A reader that took one short read
    # for the whole file took the rest for a torn tail, and the next append cut it
    # off. Here every read is short and the chunks are tiny, to the same effect.
    from eventstore_jsonl import _index

    run_id = RunId.new()
    run(append_and_read(url, run_id, 40))
    real_pread = _index.os.pread
    monkeypatch.setattr(_index, "_CHUNK", 333)
    monkeypatch.setattr(_index.os, "pread", lambda fd, n, at: real_pread(fd, min(n, 100), at))

    async def scenario() -> tuple[int, EventEnvelope, list[EventEnvelope]]:
        async with eventstore.open_store(url) as store:  # a fresh index
            last = await store.last_seq(run_id)
            appended = await store.append(TextDelta(run_id=run_id, delta="after"))
            return last, appended, await store.list_after(run_id, None, 100)

    last, appended, stored = run(scenario())
    assert last == 40
    assert appended.seq == 41
    assert [e.seq for e in stored] == list(range(1, 42))


def test_one_damaged_run_does_not_break_listing_the_others(url: str, directory: Path) -> None:
    damaged, intact = RunId.new(), RunId.new()
    session = SessionId.new()
    run(append_and_read(url, intact, 2))

    async def start_damaged() -> None:
        async with eventstore.open_store(url) as store:
            await store.append(
                RunStarted(run_id=damaged, session_id=session, provider="p", model="m")
            )
            await store.append(TextDelta(run_id=damaged, delta="x"))

    run(start_damaged())
    path = directory / f"{damaged}.jsonl"
    first, _ = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(first + b"garbage\n")

    async def listing() -> tuple[list[RunId], list[RunId]]:
        async with eventstore.open_store(url) as store:  # nothing cached
            every = [info.run_id for info in await store.list_runs()]
            mine = [info.run_id for info in await store.list_runs(session_id=session)]
            return every, mine

    every, mine = run(listing())
    assert sorted(every) == sorted([damaged, intact])
    assert mine == [damaged]  # the session of its last line that decodes


def test_a_run_restored_without_its_lock_file_is_still_read(url: str, directory: Path) -> None:
    run_id = RunId.new()
    stored = run(append_and_read(url, run_id, 3))
    (directory / f"{run_id}.lock").unlink()

    async def scenario() -> tuple[int, list[EventEnvelope], list[RunId], list[EventEnvelope]]:
        async with eventstore.open_store(url) as store:
            last = await store.last_seq(run_id)
            page = await store.list_after(run_id)
            runs = [info.run_id for info in await store.list_runs()]
            stream = store.subscribe(run_id)
            followed = [await anext(stream) for _ in range(3)]
            await stream.aclose()  # type: ignore[attr-defined]
            return last, page, runs, followed

    last, page, runs, followed = run(scenario())
    assert last == 3
    assert page == stored == followed
    assert runs == [run_id]
    assert (directory / f"{run_id}.lock").exists()


def test_an_append_replacing_a_torn_tail_of_its_own_size_wakes_other_subscribers(
    url: str, directory: Path
) -> None:
    run_id = RunId.new()
    path = directory / f"{run_id}.jsonl"

    async def scenario() -> list[int]:
        async with eventstore.open_store(url) as reader, eventstore.open_store(url) as writer:
            await writer.append(TextDelta(run_id=run_id, delta="aaaa"))
            line_length = path.stat().st_size
            stream = reader.subscribe(run_id, 1)
            waiting = asyncio.ensure_future(anext(stream))
            # A writer died mid-line, leaving exactly as many bytes as the next
            # line will have; the reader has looked at the file since.
            with path.open("ab") as torn:
                torn.write(b"x" * line_length)
            await asyncio.sleep(0.3)
            appended = await writer.append(TextDelta(run_id=run_id, delta="bbbb"))
            assert path.stat().st_size == 2 * line_length  # as long as with the torn tail
            envelope = await asyncio.wait_for(waiting, 2)
            await stream.aclose()  # type: ignore[attr-defined]
            return [appended.seq, envelope.seq]

    assert run(scenario()) == [2, 2]


def test_a_run_deleted_by_another_store_ends_its_subscribers_with_run_deleted(url: str) -> None:
    run_id = RunId.new()

    async def scenario() -> None:
        async with eventstore.open_store(url) as reader, eventstore.open_store(url) as writer:
            await writer.append_batch(deltas(run_id, 2))
            stream = reader.subscribe(run_id)
            assert [(await anext(stream)).seq for _ in range(2)] == [1, 2]
            waiting = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(0.1)
            await writer.delete_run(run_id)
            with pytest.raises(eventstore.RunDeletedError):
                await asyncio.wait_for(waiting, 5)

    run(scenario())


def test_last_seqs_sees_other_stores_appends_and_deletes_with_a_stat_per_unchanged_run(
    url: str,
) -> None:
    first, second, unknown = RunId.new(), RunId.new(), RunId.new()

    async def scenario() -> list[dict[RunId, int]]:
        async with eventstore.open_store(url) as reader, eventstore.open_store(url) as writer:
            assert isinstance(reader, JsonlEventStore)
            await writer.append_batch(deltas(first, 2))
            await writer.append_batch(deltas(second, 3))
            seen = [await reader._last_seqs([first, second, unknown])]
            await writer.append(TextDelta(run_id=first, delta="more"))
            await writer.delete_run(second)
            seen.append(await reader._last_seqs([first, second, unknown]))
            return seen

    assert run(scenario()) == [
        {first: 2, second: 3, unknown: 0},
        {first: 3, second: 0, unknown: 0},
    ]


def test_idle_subscribers_to_more_runs_than_the_cache_holds_do_not_reread_files(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eventstore_jsonl import _index

    monkeypatch.setattr(_index, "MAX_CACHED_RUNS", 1)
    runs = [RunId.new() for _ in range(3)]
    fresh_indexes: list[int] = []
    real_init = _index.RunIndex.__init__

    def counting_init(self: _index.RunIndex, inode: int) -> None:
        fresh_indexes.append(inode)
        real_init(self, inode)

    async def scenario() -> int:
        async with eventstore.open_store(url) as writer:
            for run_id in runs:
                await writer.append(TextDelta(run_id=run_id, delta="x"))
        async with eventstore.open_store(url) as reader:
            streams = [reader.subscribe(run_id, 1) for run_id in runs]
            waiting = [asyncio.ensure_future(anext(s)) for s in streams]
            await asyncio.sleep(0.3)  # every subscriber has looked and is polling
            monkeypatch.setattr(_index.RunIndex, "__init__", counting_init)
            await asyncio.sleep(0.5)  # several polls each, nothing written
            for task in waiting:
                task.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)
            return len(fresh_indexes)

    assert run(scenario()) == 0


# -- the backdoor -----------------------------------------------------------------------


def _backdoor(store: eventstore.EventStore) -> eventstore.backend.Backdoor:
    backdoor = store.backdoor()
    assert backdoor is not None
    return backdoor


def test_backdoor_remove_leaves_a_hole_and_every_other_line_as_it_was(
    url: str, directory: Path
) -> None:
    run_id, path = new_run_file(url, directory, 3)
    first, _, third = path.read_bytes().splitlines(keepends=True)

    async def scenario() -> tuple[list[int], int]:
        async with eventstore.open_store(url) as store:
            assert len(await store.list_after(run_id)) == 3  # the store caches the file
            await _backdoor(store).remove(run_id, 2)
            with pytest.raises(CorruptEventError, match="expected seq 2"):
                await store.list_after(run_id)
            return await _backdoor(store).raw_seqs(run_id), await store.last_seq(run_id)

    assert run(scenario()) == ([1, 3], 2)
    assert path.read_bytes() == first + third


def test_backdoor_remove_of_a_batch_end_keeps_the_lines_before_it_complete(
    url: str, directory: Path
) -> None:
    run_id = RunId.new()
    stored = run(append_and_read(url, run_id, 3))  # one batch of three lines

    async def scenario() -> list[EventEnvelope]:
        async with eventstore.open_store(url) as store:
            await _backdoor(store).remove(run_id, 3)
            return await store.list_after(run_id)

    assert run(scenario()) == stored[:2]
    assert (directory / f"{run_id}.jsonl").read_bytes().endswith(b"}\n")


def test_backdoor_replace_changes_one_line_in_place_and_the_next_read_sees_it(
    url: str, directory: Path
) -> None:
    run_id, other = RunId.new(), RunId.new()
    foreign = run(append_and_read(url, other, 1))[0]
    run(append_and_read(url, run_id, 3))
    path = directory / f"{run_id}.jsonl"
    first, _, third = path.read_bytes().splitlines(keepends=True)
    text = foreign.model_dump_json()

    async def scenario() -> list[int]:
        async with eventstore.open_store(url) as store, eventstore.open_store(url) as reader:
            assert len(await reader.list_after(run_id)) == 3  # the reader caches the file
            await _backdoor(store).replace(run_id, 2, text)
            for each in (store, reader):
                with pytest.raises(CorruptEventError, match="seq 2"):
                    await each.list_after(run_id)
            assert [e.seq for e in await reader.list_after(run_id, 2)] == [3]
            return await _backdoor(store).raw_seqs(run_id)

    assert run(scenario()) == [1, 1, 3]
    assert path.read_bytes() == first + text.encode() + b" \n" + third


def test_backdoor_edits_of_a_missing_seq_raise_key_error(url: str, directory: Path) -> None:
    run_id = RunId.new()
    run(append_and_read(url, run_id, 2))

    async def scenario() -> None:
        async with eventstore.open_store(url) as store:
            backdoor = _backdoor(store)
            for missing_run, seq in ((run_id, 3), (run_id, 0), (RunId.new(), 1)):
                with pytest.raises(KeyError):
                    await backdoor.remove(missing_run, seq)
                with pytest.raises(KeyError):
                    await backdoor.replace(missing_run, seq, "{}")
                with pytest.raises(KeyError):
                    await backdoor.corrupt(missing_run, seq)

    run(scenario())
    assert sorted(p.name for p in directory.iterdir()) == [f"{run_id}.jsonl", f"{run_id}.lock"]
