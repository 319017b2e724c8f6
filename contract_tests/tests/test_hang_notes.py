"""The time guard's notes: what a stalled subscription had delivered."""

from __future__ import annotations

from eventstore_contract._support import hang_notes, note_stalled_stream
from whenever import Instant

from eventstore import EventEnvelope, EventId, RunId, TextDelta
from eventstore.backend import new_envelope


def _envelopes(*seqs: int) -> list[EventEnvelope]:
    run_id = RunId.new()
    event = TextDelta(run_id=run_id, delta="x")
    return [
        new_envelope(
            event_id=EventId.new(),
            seq=seq,
            run_id=run_id,
            session_id=None,
            event=event,
            emitted_at=Instant.now(),
        )
        for seq in seqs
    ]


def test_notes_name_delivered_seqs_as_ranges() -> None:
    with hang_notes() as notes:
        note_stalled_stream(_envelopes(1, 2, 3, 5, 7, 8), 9)
        note_stalled_stream([], None)
    assert notes == [
        "a subscription had delivered 6 envelope(s) of the 9 awaited, seqs 1-3, 5, 7-8, "
        "and was waiting for the next",
        "a subscription had delivered 0 envelope(s), seqs none, and was waiting for the next",
    ]


def test_notes_outside_a_guarded_test_are_dropped() -> None:
    note_stalled_stream(_envelopes(1), 2)  # no collector: nothing to record, no error
    with hang_notes() as notes:
        pass
    assert notes == []
