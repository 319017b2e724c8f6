"""Event model validation: bad input is rejected with ValueErrors that say what."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError
from whenever import Instant

import eventstore as es
import eventstore.events as es_events

RUN = es.RunId.new()


def test_ids_are_uuid7_subclasses_equal_to_plain_uuids() -> None:
    run_id = es.RunId.new()
    assert run_id.version == 7
    assert isinstance(run_id, uuid.UUID)
    plain = uuid.UUID(str(run_id))
    assert run_id == plain and hash(run_id) == hash(plain)
    assert es.RunId.parse(str(run_id)) == run_id
    assert type(es.RunId.parse(plain)) is es.RunId
    assert str(run_id) == str(run_id).lower()
    assert repr(run_id) == f"RunId('{run_id}')"


def test_ids_are_time_ordered() -> None:
    ids = [es.EventId.new() for _ in range(100)]
    assert ids == sorted(ids)


def test_id_parse_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="RunId must be a UUID"):
        es.RunId.parse("not-a-uuid")
    with pytest.raises(ValueError, match="RunId must be a UUID"):
        es.RunId.parse(42)  # type: ignore[arg-type]


def test_naive_datetime_is_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        es.TextDelta(run_id=RUN, delta="x", timestamp=datetime(2026, 1, 1))


def test_aware_datetime_is_taken_as_its_instant() -> None:
    plus_two = timezone(timedelta(hours=2))
    event = es.TextDelta(run_id=RUN, delta="x", timestamp=datetime(2026, 1, 1, 2, tzinfo=plus_two))
    assert event.timestamp == Instant.from_utc(2026, 1, 1)
    assert (
        json.loads(es_events.encode_event(event))["TextDelta"]["timestamp"]
        == "2026-01-01T00:00:00Z"
    )


def test_timestamp_defaults_to_now_to_the_nanosecond() -> None:
    before = Instant.now()
    events = [es.RunCancelled(run_id=RUN) for _ in range(20)]
    assert before <= events[0].timestamp <= events[-1].timestamp <= Instant.now()
    # The system clock here has nanoseconds: not every default time is a whole microsecond.
    assert any(e.timestamp.timestamp(unit="nanosecond") % 1000 for e in events)


def test_a_missing_timestamp_is_refused_in_json_as_serde_refuses_it() -> None:
    with pytest.raises(ValidationError, match="missing field 'timestamp'"):
        es_events.decode_event(f'{{"RunCancelled": {{"run_id": "{RUN}"}}}}')


@pytest.mark.parametrize(
    ("cls", "fields", "field"),
    [
        (es.ContextBuilt, {"message_count": "3"}, "message_count"),
        (es.ContextBuilt, {"message_count": -1}, "message_count"),
        (es.ContextBuilt, {"message_count": True}, "message_count"),
        (es.TextDelta, {"delta": 5}, "delta"),
        (es.RunStarted, {"session_id": "nope", "provider": "p", "model": "m"}, "session_id"),
        (
            es.ToolExecutionFinished,
            {"call_id": "c", "tool_name": "t", "result": {"Maybe": {}}, "duration_ms": 1},
            "result",
        ),
        (es.RunCompleted, {"finish_reason": 5, "iterations": 1}, "finish_reason"),
        (es.ContextBuilt, {"message_count": 2**64}, "message_count"),
        (es.CompactionCircuitOpened, {"consecutive_failures": 2**32}, "consecutive_failures"),
    ],
)
def test_wrong_types_are_rejected_naming_the_field(
    cls: type[es.TextDelta], fields: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        cls(run_id=RUN, **fields)
    assert isinstance(info.value, ValueError)
    assert field in str(info.value)


def test_events_are_immutable() -> None:
    event = es.TextDelta(run_id=RUN, delta="x")
    with pytest.raises(ValidationError):
        event.delta = "y"  # type: ignore[misc]


def test_decode_event_rejects_malformed_json_shapes() -> None:
    with pytest.raises(ValueError, match="exactly one key"):
        es_events.decode_event('{"TextDelta": {}, "RunCancelled": {}}')
    with pytest.raises(ValueError, match="should be an object"):
        es_events.decode_event("[]")
    with pytest.raises(ValueError, match="exactly one key"):
        es_events.decode_event("{}")
    with pytest.raises(ValueError, match="run_id"):
        es_events.decode_event(
            '{"TextDelta": {"run_id": "x", "delta": "d", "timestamp": "2026-01-01T00:00:00Z"}}'
        )


def test_unknown_variant_keeps_payload_and_is_written_back_unchanged() -> None:
    raw = {
        "BrandNew": {
            "run_id": str(RUN),
            "weird": {"nested": [1, None, "x"]},
            "timestamp": "2026-01-01T00:00:00Z",
        }
    }
    event = es_events.decode_event(json.dumps(raw))
    assert isinstance(event, es.UnknownEvent)
    assert event.run_id == RUN
    assert event.timestamp == Instant.from_utc(2026, 1, 1)
    assert json.loads(es_events.encode_event(event)) == raw


def test_unknown_event_without_run_id_cannot_name_its_run() -> None:
    event = es.UnknownEvent(name="X", payload={"a": 1})
    with pytest.raises(ValueError, match="no string run_id"):
        _ = event.run_id


def test_newer_fields_of_known_variants_survive_a_round_trip() -> None:
    raw = {
        "TextDelta": {
            "run_id": str(RUN),
            "delta": "d",
            "timestamp": "2026-01-01T00:00:00Z",
            "added_in_v9": 1,
        }
    }
    assert json.loads(es_events.encode_event(es_events.decode_event(json.dumps(raw)))) == raw


def test_terminal_variants() -> None:
    terminal = {cls.__name__ for cls in es_events.EVENT_TYPES if cls.is_terminal}
    assert terminal == {"RunCompleted", "RunFailed", "RunCancelled"}


def test_finish_reason_accepts_plain_strings_and_unknown_objects() -> None:
    event = es.RunCompleted(run_id=RUN, finish_reason="tool_calls", iterations=2)  # type: ignore[arg-type]
    assert event.finish_reason is es.FinishReason.TOOL_CALLS
    odd = es.RunCompleted(run_id=RUN, finish_reason={"unknown": "odd"}, iterations=2)  # type: ignore[arg-type]
    assert odd.finish_reason == es.UnknownFinishReason(unknown="odd")


def test_a_finish_reason_newer_than_this_version_is_kept_as_written() -> None:
    # The Rust enum is non_exhaustive: a newer runtime may write a reason unknown here.
    line = (
        f'{{"RunCompleted":{{"run_id":"{RUN}","finish_reason":"max_tokens","iterations":1,'
        f'"timestamp":"2026-01-01T00:00:00Z"}}}}'
    )
    event = es_events.decode_event(line)
    assert isinstance(event, es.RunCompleted) and event.finish_reason == "max_tokens"
    assert es_events.encode_event(event) == line

    async def store_it() -> None:
        async with es.open_store("memory://") as store:
            await store.append(event)
            (stored,) = await store.list_after(RUN)
            assert es_events.encode_event(stored.event) == line

    asyncio.run(store_it())
    # Built in Python, a string outside the enum is a typo (serde would refuse it).
    with pytest.raises(ValidationError, match="unknown finish reason 'stopp'"):
        es.RunCompleted(run_id=RUN, finish_reason="stopp", iterations=1)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_json_numbers_serde_refuses_are_refused_when_read(token: str) -> None:
    # pydantic reads these (as nan or inf) and would write them back as null.
    for line in (
        f'{{"ToolCallCompleted":{{"run_id":"{RUN}","call":{{"id":"c","name":"n",'
        f'"arguments":{{"x":[{token}]}}}},"timestamp":"2026-01-01T00:00:00Z"}}}}',
        f'{{"RunCancelled":{{"run_id":"{RUN}","timestamp":"2026-01-01T00:00:00Z","x":{token}}}}}',
        f'{{"Novel":{{"run_id":"{RUN}","x":{{"y":{token}}}}}}}',
    ):
        with pytest.raises(ValidationError):
            es_events.decode_event(line)


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (1e16, "1e16"),
        (1.5e300, "1.5e300"),
        (1e-7, "1e-7"),
        (12345678901234567.0, "1.2345678901234568e16"),
        (1e15, "1000000000000000.0"),
        (0.1, "0.1"),
        (-0.0, "-0.0"),
        (5e-324, "5e-324"),
    ],
)
def test_floats_are_written_as_serde_writes_them(value: float, written: str) -> None:
    event = es.ToolCallCompleted(
        run_id=RUN,
        call=es.ToolCall(id="c", name="n", arguments={"x": value, "s": "1e+16"}),
        timestamp=Instant.from_utc(2026, 1, 1),
    )
    assert es_events.encode_event(event) == (
        f'{{"ToolCallCompleted":{{"run_id":"{RUN}","call":{{"id":"c","name":"n",'
        f'"arguments":{{"x":{written},"s":"1e+16"}}}},"timestamp":"2026-01-01T00:00:00Z"}}}}'
    )


def test_optional_counts_are_written_as_null_and_timestamp_last() -> None:
    usage = es.TokenUsage(input_tokens=1, output_tokens=2, total_tokens=3)
    event = es.UsageRecorded(run_id=RUN, usage=usage, timestamp=Instant.from_utc(2026, 1, 1))
    assert es_events.encode_event(event) == (
        f'{{"UsageRecorded":{{"run_id":"{RUN}","usage":{{"input_tokens":1,"output_tokens":2,'
        '"total_tokens":3,"cache_creation_input_tokens":null,"cache_read_input_tokens":null,'
        '"cached_input_tokens":null},"timestamp":"2026-01-01T00:00:00Z"}}'
    )
    for cls in es_events.EVENT_TYPES:
        assert list(cls.model_fields)[-1] == "timestamp", cls.__name__
        assert next(iter(cls.model_fields)) == "run_id", cls.__name__


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_floats_are_rejected_since_json_cannot_carry_them(value: float) -> None:
    with pytest.raises(ValidationError):
        es.Success(output={"x": [value]})
    with pytest.raises(ValidationError):
        es.ToolCall(id="c", name="n", arguments=value)
    with pytest.raises(ValidationError):
        es.UnknownEvent(name="Novel", payload={"run_id": str(RUN), "x": value})


def test_unknown_event_cannot_impersonate_a_known_variant() -> None:
    with pytest.raises(ValidationError, match="known event variant"):
        es.UnknownEvent(name="RunStarted", payload={"run_id": str(RUN)})


# ------------------------------------------------------------------ the range of times

LATEST = es_events.LATEST_TIME
EARLIEST = es_events.EARLIEST_TIME
MINUS_FIVE = timezone(timedelta(hours=-5))
PLUS_FIVE = timezone(timedelta(hours=5))


@pytest.mark.parametrize(
    "moment",
    [datetime.max.replace(tzinfo=MINUS_FIVE), datetime.min.replace(tzinfo=PLUS_FIVE)],
)
def test_a_time_outside_years_1_to_9999_utc_is_refused_when_the_event_is_built(
    moment: datetime,
) -> None:
    with pytest.raises(ValidationError, match="out of range") as info:
        es.TextDelta(run_id=RUN, delta="x", timestamp=moment)
    assert "timestamp" in str(info.value)


def test_the_extreme_times_in_range_are_kept_exactly() -> None:
    assert str(LATEST) == "9999-12-31T23:59:59.999999999Z"
    for moment, instant in (
        (LATEST, LATEST),
        (EARLIEST, EARLIEST),
        (datetime.max.replace(tzinfo=PLUS_FIVE), LATEST.subtract(hours=5, nanoseconds=999)),
        (datetime.min.replace(tzinfo=MINUS_FIVE), EARLIEST.add(hours=5)),
    ):
        event = es.TextDelta(run_id=RUN, delta="x", timestamp=moment)
        assert event.timestamp == instant
        assert es_events.decode_event(es_events.encode_event(event)) == event


@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59.999999-05:00", "0001-01-01T00:00:00+05:00"])
def test_json_times_outside_the_range_are_refused_when_read(stamp: str) -> None:
    event = f'{{"TextDelta": {{"run_id": "{RUN}", "delta": "d", "timestamp": "{stamp}"}}}}'
    with pytest.raises(ValidationError, match="timestamp"):
        es_events.decode_event(event)
    good = es.TextDelta(run_id=RUN, delta="d")
    envelope = (
        f'{{"event_id": "{es.EventId.new()}", "seq": 1, "run_id": "{RUN}", "session_id": null, '
        f'"event": {es_events.encode_event(good)}, "emitted_at": "{stamp}"}}'
    )
    with pytest.raises(ValidationError, match="emitted_at"):
        es.EventEnvelope.model_validate_json(envelope)


def test_an_unknown_events_time_outside_the_range_is_none_not_an_overflow() -> None:
    for stamp in ("9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "2026-01-01T00:00:00"):
        assert es.UnknownEvent(name="Later", payload={"timestamp": stamp}).timestamp is None
    event = es.UnknownEvent(name="Later", payload={"timestamp": "9999-12-31T23:59:59+05:00"})
    assert event.timestamp == Instant.from_utc(9999, 12, 31, 18, 59, 59)


@pytest.mark.parametrize(
    ("moment", "message"),
    [
        (datetime.max.replace(tzinfo=MINUS_FIVE), "must be a whenever.Instant"),
        (datetime(2026, 1, 1, tzinfo=UTC), "must be a whenever.Instant"),
        (datetime(2026, 1, 1), "must be a whenever.Instant"),
        ("2026-01-01T00:00:00Z", "must be a whenever.Instant"),
    ],
)
def test_an_unvalidated_time_outside_the_range_is_refused_at_append(
    moment: object, message: str, tmp_path: Path
) -> None:
    # model_construct and model_copy(update=...) skip validation; the store does not.
    constructed = es.TextDelta.model_construct(run_id=RUN, delta="x", timestamp=moment)
    copied = es.TextDelta(run_id=RUN, delta="x").model_copy(update={"timestamp": moment})
    with pytest.raises(es.InvalidArgumentError, match=message):
        es_events.encode_event(constructed)

    async def append(url: str) -> None:
        async with es.open_store(url) as store:
            for event in (constructed, copied):
                with pytest.raises(es.InvalidArgumentError, match=message):
                    await store.append(event)
                with pytest.raises(es.InvalidArgumentError, match=message):
                    await store.append_batch([event])
            assert await store.last_seq(RUN) == 0

    for url in ("memory://", f"sqlite+aiosqlite:///{tmp_path / 'events.db'}"):
        asyncio.run(append(url))


def test_the_extreme_times_are_stored_read_listed_and_summarized(tmp_path: Path) -> None:
    # The conversions the backends make (microseconds since the epoch in SQL) and the
    # CLI timeline's durations stay in range at both ends.
    from eventstore._cli._timeline import digest, timeline_table

    async def body(url: str) -> None:
        run_id = es.RunId.new()
        events: list[es.AgentEvent] = [
            es.RunStarted(
                run_id=run_id,
                session_id=es.SessionId.new(),
                provider="p",
                model="m",
                timestamp=EARLIEST,
            ),
            es.ToolExecutionStarted(run_id=run_id, call_id="c", tool_name="t", timestamp=EARLIEST),
            es.ToolExecutionFinished(
                run_id=run_id,
                call_id="c",
                tool_name="t",
                result=es.Success(output=1),
                duration_ms=1,
                timestamp=LATEST,
            ),
            es.RunCompleted(run_id=run_id, finish_reason="stop", iterations=1, timestamp=LATEST),
        ]
        async with es.open_store(url) as store:
            await store.append_batch(events)
            page = await store.list_after(run_id, 0, 10)
            assert [e.event for e in page] == events
            assert [
                e.event async for e in store.subscribe(run_id, 0, until_terminal=True)
            ] == events
            (info,) = [r for r in await store.list_runs() if r.run_id == run_id]
            assert info.last_seq == 4
        assert timeline_table([page], "run") is not None
        assert digest(page).tool_calls[0][4] == (LATEST - EARLIEST).total("seconds")

    for url in ("memory://", f"sqlite+aiosqlite:///{tmp_path / 'events.db'}"):
        asyncio.run(body(url))
