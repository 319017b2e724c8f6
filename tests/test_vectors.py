"""The golden vectors written by the Rust runtime decode to the right classes and
re-encode to equal JSON (compared parsed, as serde's key order is not ours)."""

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


def _without_null_cache_fields(value: object) -> object:
    # The contract lets a None cache field be omitted or null; compare modulo that.
    if isinstance(value, dict):
        return {k: _without_null_cache_fields(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_null_cache_fields(v) for v in value]
    return value


@pytest.mark.parametrize("line", EVENT_LINES, ids=lambda line: next(iter(json.loads(line))))
def test_every_vector_event_decodes_to_its_class_and_reencodes_equal(line: str) -> None:
    (tag,) = json.loads(line)
    event = es_events.decode_event(line)
    assert type(event).__name__ == tag
    assert event.event_type == tag
    assert _without_null_cache_fields(json.loads(es_events.encode_event(event))) == json.loads(line)


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
    assert json.loads(envelope.model_dump_json()) == json.loads(line)
    assert es_backend.decode_envelope(envelope.model_dump_json()) == envelope


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
    assert json.loads(envelope.model_dump_json()) == json.loads(text)


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
        assert json.loads(text) == json.loads(envelope.model_dump_json())
        assert es_backend.decode_envelope(text) == envelope
