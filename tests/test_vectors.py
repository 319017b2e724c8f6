"""The golden vectors decode to the right classes and re-encode to the same JSON.

Two sets: ``data/*.jsonl`` were written by hand (compared parsed, and times by
instant: they write ``.200000Z`` where chrono writes ``.200Z``); ``data/serde/`` were
written by serde and chrono themselves, and must come back byte for byte (line by
line in ``test_rust_interop.py``, which needs no Rust for that; here, their times).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import eventstore as es
import eventstore.backend as es_backend
import eventstore.events as es_events

DATA = Path(__file__).parent / "data"
EVENT_LINES = (DATA / "agent_events.jsonl").read_text(encoding="utf-8").splitlines()
ENVELOPE_LINES = (DATA / "envelopes.jsonl").read_text(encoding="utf-8").splitlines()


SERDE = DATA / "serde"


def _serde_lines(name: str) -> list[str]:
    # Split on "\n" only: str.splitlines() also splits inside strings holding U+2028.
    text = (SERDE / name).read_text(encoding="utf-8")
    # A line starting "ERR" records what serde refused, not a value.
    return [line for line in text.split("\n") if line and not line.startswith("ERR")]


def _normalized(value: object, key: str = "") -> object:
    # The hand-written vectors omit None cache fields (serde writes null) and write
    # times with six digits (chrono writes the fewest of 0/3/6/9): compare modulo both.
    if isinstance(value, dict):
        return {k: _normalized(v, k) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    if key in ("timestamp", "emitted_at") and isinstance(value, str):
        return es_events.parse_time(value)
    return value


def test_serde_timestamps_keep_all_nine_digits() -> None:
    times = [es_events.decode_event(line).timestamp for line in _serde_lines("timestamps.jsonl")]
    assert any(t.timestamp(unit="nanosecond") % 1000 for t in times)
    for line, moment in zip(_serde_lines("timestamps.jsonl"), times, strict=True):
        assert f'"timestamp":"{es_events.format_time(moment)}"' in line


@pytest.mark.parametrize("line", EVENT_LINES, ids=lambda line: next(iter(json.loads(line))))
def test_every_vector_event_decodes_to_its_class_and_reencodes_equal(line: str) -> None:
    (tag,) = json.loads(line)
    event = es_events.decode_event(line)
    assert type(event).__name__ == tag
    assert event.event_type == tag
    assert _normalized(json.loads(es_events.encode_event(event))) == _normalized(json.loads(line))


def test_vectors_cover_every_known_variant() -> None:
    tags = {next(iter(json.loads(line))) for line in EVENT_LINES}
    assert tags == {cls.__name__ for cls in es_events.EVENT_TYPES}


def test_vector_details_decode_to_typed_values() -> None:
    events = [es_events.decode_event(line) for line in EVENT_LINES]
    finished = [e for e in events if isinstance(e, es.ToolExecutionFinished)]
    assert isinstance(finished[0].result, es.Success)
    assert finished[0].result.output == {"hits": ["a", "b"]}
    assert isinstance(finished[1].result, es.Failure)
    assert finished[1].result.error == "timeout after 30s"
    completed = [e for e in events if isinstance(e, es.RunCompleted)]
    assert completed[0].finish_reason is es.FinishReason.STOP
    assert completed[1].finish_reason == es.UnknownFinishReason(unknown="provider_specific")
    usage = [e for e in events if isinstance(e, es.UsageRecorded)]
    assert usage[0].usage.cached_input_tokens is None
    assert usage[1].usage.cached_input_tokens == 100
    assert [e.is_terminal for e in events].count(True) == 4
    assert isinstance(events[0], es.RunStarted)
    assert isinstance(events[0].run_id, es.RunId)
    assert isinstance(events[0].session_id, es.SessionId)


@pytest.mark.parametrize("line", ENVELOPE_LINES)
def test_envelope_vectors_round_trip(line: str) -> None:
    envelope = es_backend.decode_envelope(line)
    written = es_backend.encode_envelope(envelope)
    assert _normalized(json.loads(written)) == _normalized(json.loads(line))
    assert es_backend.decode_envelope(written) == envelope


def test_envelope_vectors_are_one_run_with_stamped_session() -> None:
    envelopes = [es_backend.decode_envelope(line) for line in ENVELOPE_LINES]
    assert [e.seq for e in envelopes] == [1, 2, 3, 4, 5, 6]
    assert len({e.run_id for e in envelopes}) == 1
    started = envelopes[0].event
    assert isinstance(started, es.RunStarted)
    assert all(e.session_id == started.session_id for e in envelopes)


def test_unknown_variant_envelope_round_trips_unchanged() -> None:
    text = (DATA / "unknown_variant_envelope.json").read_text(encoding="utf-8")
    envelope = es_backend.decode_envelope(text)
    assert isinstance(envelope.event, es.UnknownEvent)
    assert envelope.event.name == "SpeculativeFutureEvent"
    assert envelope.event.run_id == envelope.run_id
    assert not envelope.event.is_terminal
    assert _normalized(json.loads(es_backend.encode_envelope(envelope))) == _normalized(
        json.loads(text)
    )


def test_envelope_json_helper_matches_model_dump() -> None:
    for line in ENVELOPE_LINES:
        envelope = es_backend.decode_envelope(line)
        text = es_backend.envelope_json(
            event_id=envelope.event_id,
            seq=envelope.seq,
            run_id=envelope.run_id,
            session_id=envelope.session_id,
            event_json=es_events.encode_event(envelope.event),
            emitted_at=envelope.emitted_at,
        )
        assert text == es_backend.encode_envelope(envelope)
        assert json.loads(text) == json.loads(envelope.model_dump_json())
        assert es_backend.decode_envelope(text) == envelope
