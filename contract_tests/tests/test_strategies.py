"""The public strategies produce valid events of every variant that survive JSON."""

from __future__ import annotations

from eventstore_contract import strategies
from hypothesis import given, settings

from eventstore import RunId, RunStarted, UnknownEvent
from eventstore.events import EVENT_TYPES, decode_event, encode_event

_RUN = RunId.new()


@settings(max_examples=200, deadline=None)
@given(strategies.events(_RUN))
def test_events_round_trip_through_json(event: object) -> None:
    assert event.run_id == _RUN  # type: ignore[attr-defined]
    assert decode_event(encode_event(event)) == event  # type: ignore[arg-type]


def test_every_variant_has_a_strategy() -> None:
    names = {cls.__name__ for cls in EVENT_TYPES}
    found: set[str] = set()

    @settings(max_examples=400, deadline=None)
    @given(strategies.events())
    def collect(event: object) -> None:
        found.add(type(event).__name__)

    collect()
    assert names | {"UnknownEvent"} == found


@settings(max_examples=50, deadline=None)
@given(strategies.unknown_events(_RUN))
def test_unknown_events_keep_their_payload(event: UnknownEvent) -> None:
    decoded = decode_event(encode_event(event))
    assert isinstance(decoded, UnknownEvent)
    assert decoded == event
    assert decoded.run_id == _RUN


@settings(max_examples=50, deadline=None)
@given(strategies.runs(_RUN))
def test_runs_start_with_run_started_and_end_at_most_once(run: list[object]) -> None:
    assert isinstance(run[0], RunStarted)
    terminal = [i for i, e in enumerate(run) if e.is_terminal]  # type: ignore[attr-defined]
    assert terminal in ([], [len(run) - 1])
