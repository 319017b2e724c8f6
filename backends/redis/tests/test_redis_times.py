"""Times in the native layout: written as chrono writes them, kept to the nanosecond.

The append script formats ``emitted_at`` itself from the server's ``TIME``; it must
write exactly what serde writes for a ``DateTime<Utc>`` (chrono's RFC 3339 with ``Z``
and the fewest of 0, 3, 6 or 9 fraction digits), so that an envelope stored here is
byte for byte one behest could have written. Envelopes copied in from other stores
carry nanosecond times from year 1 to 9999, which reads and ``list_runs`` return with
every digit.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable

import redis
from _redis_support import command, entries, run
from eventstore_redis import RedisEventStore
from eventstore_redis._scripts import STAMP
from whenever import Instant

from eventstore import (
    EventEnvelope,
    EventId,
    RunId,
    RunInfo,
    RunStarted,
    SessionId,
    TextDelta,
)
from eventstore.events import EARLIEST_TIME, LATEST_TIME, format_time, parse_time

MakeStore = Callable[..., RedisEventStore]

# Only STAMP, over pairs of ARGV (seconds, microseconds): every stamp it writes.
_STAMPS_SCRIPT = (
    "local out = {}\n"
    "for i = 1, #ARGV, 2 do\n"
    "local sec, us = tonumber(ARGV[i]), tonumber(ARGV[i + 1])\n" + STAMP + "out[#out + 1] = stamp\n"
    "end\n"
    "return out\n"
)
# What the script may write: whole seconds, then 0, 3 or 6 fraction digits (TIME has
# microseconds), then "Z".
_SCRIPT_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6})?Z")


def _script_stamps(raw: redis.Redis, pairs: list[tuple[int, int]]) -> list[str]:
    args = [str(value) for pair in pairs for value in pair]
    reply = command(raw, "EVAL", _STAMPS_SCRIPT, 0, *args)
    return [stamp.decode() for stamp in reply]


def _chrono(seconds: int, micros: int) -> str:
    return format_time(Instant.from_timestamp(seconds * 1_000_000 + micros, unit="microsecond"))


def test_the_script_formats_times_as_chrono_does(raw: redis.Redis) -> None:
    earliest = EARLIEST_TIME.timestamp()
    latest = LATEST_TIME.timestamp()
    pairs = [
        (0, 0),  # no fraction
        (0, 1_000),  # .001
        (0, 120_000),  # .120, not .12 or .120000
        (0, 999_000),
        (0, 1),  # .000001
        (0, 100),  # .000100
        (0, 123_456),
        (0, 999_999),
        (1_709_164_800, 500_000),  # 2024-02-29 (leap day)
        (951_782_400, 0),  # 2000-02-29
        (1_767_225_599, 999_999),  # 2025-12-31T23:59:59.999999
        (1_767_225_600, 0),  # 2026-01-01
        (earliest, 0),  # 0001-01-01, zero-padded
        (earliest, 7_000),
        (latest, 999_999),  # 9999-12-31T23:59:59.999999
        (-1, 999_999),  # 1969-12-31T23:59:59.999999
        (-2_208_988_800, 0),  # 1900-01-01 (not a leap year)
    ]
    rng = random.Random(12)
    for _ in range(2_000):
        micros = rng.choice(
            (0, rng.randrange(1_000) * 1_000, rng.randrange(1_000_000), rng.randrange(1, 1_000))
        )
        pairs.append((rng.randint(earliest, latest), micros))
    stamps = _script_stamps(raw, pairs)
    assert stamps == [_chrono(seconds, micros) for seconds, micros in pairs]
    for stamp in stamps:
        assert _SCRIPT_STAMP.fullmatch(stamp), stamp
        assert format_time(parse_time(stamp)) == stamp
    assert stamps[:8] == [
        "1970-01-01T00:00:00Z",
        "1970-01-01T00:00:00.001Z",
        "1970-01-01T00:00:00.120Z",
        "1970-01-01T00:00:00.999Z",
        "1970-01-01T00:00:00.000001Z",
        "1970-01-01T00:00:00.000100Z",
        "1970-01-01T00:00:00.123456Z",
        "1970-01-01T00:00:00.999999Z",
    ]
    assert stamps[12] == "0001-01-01T00:00:00Z"
    assert stamps[14] == "9999-12-31T23:59:59.999999Z"


def test_appended_emitted_at_is_stored_as_chrono_writes_it(
    make_store: MakeStore, raw: redis.Redis
) -> None:
    async def body() -> tuple[RedisEventStore, RunId, list[EventEnvelope], list[EventEnvelope]]:
        run_id, session = RunId.new(), SessionId.new()
        async with make_store() as store:
            returned = [
                *await store.append_batch(
                    [
                        RunStarted(run_id=run_id, session_id=session, provider="a", model="m"),
                        TextDelta(run_id=run_id, delta="x"),
                    ]
                )
            ]
            for index in range(20):
                returned.append(await store.append(TextDelta(run_id=run_id, delta=str(index))))
            return store, run_id, returned, await store.list_after(run_id)

    store, run_id, returned, read = run(body())
    assert read == returned
    stored = [
        json.loads(fields[b"e"])["emitted_at"] for _, fields in entries(raw, store.keys.log(run_id))
    ]
    assert len(stored) == len(returned)
    for text, envelope in zip(stored, returned, strict=True):
        assert _SCRIPT_STAMP.fullmatch(text), text
        assert format_time(parse_time(text)) == text
        assert parse_time(text) == envelope.emitted_at
        assert format_time(envelope.emitted_at) == text
    # The batch's two envelopes share one commit time.
    assert stored[0] == stored[1]
    first_at, last_at = raw.hmget(store.keys.meta(run_id), "first_at", "last_at")
    assert (first_at, last_at) == (stored[0].encode(), stored[-1].encode())


def _envelopes(run_id: RunId, session: SessionId, times: list[str]) -> list[EventEnvelope]:
    """A run as another store (behest) wrote it: events and envelopes at ``times``."""
    out: list[EventEnvelope] = []
    for index, text in enumerate(times):
        moment = parse_time(text)
        event = (
            RunStarted(run_id=run_id, session_id=session, provider="a", model="m", timestamp=moment)
            if index == 0
            else TextDelta(run_id=run_id, delta=f"d{index}", timestamp=moment)
        )
        out.append(
            EventEnvelope(
                event_id=EventId.new(),
                seq=index + 1,
                run_id=run_id,
                session_id=session,
                event=event,
                emitted_at=moment,
            )
        )
    return out


def test_imported_nanosecond_times_and_extreme_years_keep_every_digit(
    make_store: MakeStore, raw: redis.Redis
) -> None:
    runs = {
        RunId.new(): [
            "0001-01-01T00:00:00.000000001Z",
            "2026-03-04T05:06:07.123456789Z",
            "9999-12-31T23:59:59.999999999Z",
        ],
        RunId.new(): ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00.100Z"],
        RunId.new(): ["9999-12-31T23:59:59.999999999Z"],
        RunId.new(): ["2026-01-01T00:00:00.000000010Z", "2026-01-01T00:00:00.999999999Z"],
    }
    session = SessionId.new()
    copied = {run_id: _envelopes(run_id, session, times) for run_id, times in runs.items()}
    assert copied[next(iter(runs))][-1].emitted_at == LATEST_TIME

    async def body() -> tuple[RedisEventStore, dict[RunId, list[EventEnvelope]], list[RunInfo]]:
        async with make_store() as store:
            for envelopes in copied.values():
                assert await store.import_envelopes(envelopes) == len(envelopes)
            read = {run_id: await store.list_after(run_id) for run_id in copied}
            return store, read, await store.list_runs()

    store, read, infos = run(body())
    assert read == copied
    assert infos == [
        RunInfo(
            run_id=run_id,
            session_id=session,
            last_seq=len(copied[run_id]),
            first_emitted_at=parse_time(runs[run_id][0]),
            last_emitted_at=parse_time(runs[run_id][-1]),
        )
        for run_id in sorted(runs)
    ]
    for info in infos:
        times = runs[info.run_id]
        assert info.first_emitted_at is not None and info.last_emitted_at is not None
        assert (format_time(info.first_emitted_at), format_time(info.last_emitted_at)) == (
            times[0],
            times[-1],
        )
        # Stored as the Rust runtime wrote them: the envelope's and the event's times,
        # and the meta's, every digit.
        for (_, fields), text in zip(entries(raw, store.keys.log(info.run_id)), times, strict=True):
            stored = json.loads(fields[b"e"])
            assert stored["emitted_at"] == text
            (body_,) = stored["event"].values()
            assert body_["timestamp"] == text
        meta = raw.hmget(store.keys.meta(info.run_id), "first_at", "last_at")
        assert meta == [times[0].encode(), times[-1].encode()]


def test_an_append_after_an_import_from_year_9999_continues_the_run(
    make_store: MakeStore,
) -> None:
    run_id, session = RunId.new(), SessionId.new()
    copied = _envelopes(run_id, session, ["9999-12-31T23:59:59.999999999Z"])

    async def body() -> tuple[EventEnvelope, list[RunInfo]]:
        async with make_store() as store:
            await store.import_envelopes(copied)
            appended = await store.append(TextDelta(run_id=run_id, delta="now"))
            assert await store.list_after(run_id) == [*copied, appended]
            return appended, await store.list_runs()

    appended, [info] = run(body())
    assert (info.first_emitted_at, info.last_emitted_at) == (LATEST_TIME, appended.emitted_at)
    assert appended.seq == 2 and appended.session_id == session
