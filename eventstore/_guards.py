"""The checks the base class makes on what goes into and comes out of every backend.

They are the contract's rules written once, so that a backend that breaks one is
caught at run time as well as by the conformance suite:

- on write, nothing is acknowledged that the read path (ours, or serde's in the Rust
  runtime) could not decode to an equal event (:func:`check_decodable`);
- on read, a page must hold exactly the seqs ``after_seq+1, after_seq+2, ...`` of the
  requested run (:func:`check_page`);
- on an idempotent retry, the stored event must be the one given
  (:func:`check_retry`).

Each check has a fast path that costs a few C-level passes over data that is already
there; the precise (slower) work runs only when the fast path finds something odd.
"""

from __future__ import annotations

__all__ = [
    "JSON_INT_MAX",
    "JSON_INT_MIN",
    "MAX_JSON_DEPTH",
    "check_decodable",
    "check_page",
    "check_retry",
    "event_run_id",
]

import re
from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter, lt
from typing import TYPE_CHECKING, Final

from ._errors import BackendError, CorruptEventError, IdempotencyConflictError, InvalidArgumentError
from ._events import AgentEvent, UnknownEvent, encode_event_bytes

if TYPE_CHECKING:
    from ._envelope import EventEnvelope, PendingEvent
    from ._ids import RunId

#: Deepest nesting of arrays and objects in one event's JSON, the variant's tag object
#: counting as level 1. serde_json refuses documents nested deeper than 128 levels,
#: and the envelope adds one; 100 leaves room for both.
MAX_JSON_DEPTH: Final = 100
#: Smallest integer an event may hold anywhere: serde_json's ``Value`` keeps integers
#: only as ``i64`` or ``u64`` (a larger one becomes a float and loses digits).
JSON_INT_MIN: Final = -(1 << 63)
#: Largest integer an event may hold anywhere (``u64::MAX``).
JSON_INT_MAX: Final = (1 << 64) - 1

# An integer beyond the i64/u64 range has at least 19 digits. Digits are mapped to
# "0" and the run searched with bytes.find: ten times cheaper than a regex on large
# events, which every append pays.
_ZEROS: Final = bytes.maketrans(b"0123456789", b"0" * 10)
_LONG_RUN: Final = b"0" * 19
# A JSON string, escapes included (the unrolled form: no backtracking).
_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
# An integer token outside strings: digits not part of a float's fraction or exponent
# (Python writes floats with at most 17 significant digits, so 19 digits in a row
# outside a string are an integer).
_LONG_INT: Final = re.compile(rb"(?<![\d.eE+-])-?\d{19,}(?![\d.eE])")
_NOT_BRACKETS: Final = bytes(set(range(256)) - set(b"[]{}"))
_INNERMOST: Final = re.compile(rb"\[\]|\{\}")

_KEYS: Final = attrgetter("seq", "run_id.int", "event.run_id.int")


def check_decodable(data: bytes, event_type: str) -> None:
    """Refuse an event whose JSON ``data`` would not read back equal.

    Raises :class:`InvalidArgumentError` for nesting deeper than
    :data:`MAX_JSON_DEPTH`, an integer outside ``JSON_INT_MIN..JSON_INT_MAX``, or a
    NaN or infinity (only an event built without validation can hold one).
    """
    # Fast path: too few brackets to nest that deep, no digit run that long, no
    # non-finite float (written as a bare NaN or Infinity token).
    if (
        data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH
        and data.translate(_ZEROS).find(_LONG_RUN) == -1
        and b"NaN" not in data
        and b"Infinity" not in data
    ):
        return
    # Our own encoder wrote ``data``, so it is valid JSON (but for NaN and Infinity):
    # with the strings emptied, what is left are numbers, literals, punctuation and
    # the brackets.
    bare = _STRING.sub(b'""', data)
    if b"NaN" in bare or b"Infinity" in bare:
        raise InvalidArgumentError(
            f"{event_type} event holds a NaN or an infinite float, which JSON cannot carry "
            "(serde refuses it); build events with validation, not model_construct"
        )
    for match in _LONG_INT.finditer(bare):
        _check_integer(match.group(), event_type)
    depth = _depth(bare.translate(None, _NOT_BRACKETS))
    if depth > MAX_JSON_DEPTH:
        raise InvalidArgumentError(
            f"{event_type} event nests {depth} levels of arrays and objects; at most "
            f"{MAX_JSON_DEPTH} can be stored and read back"
        )


def _check_integer(token: bytes, event_type: str) -> None:
    # A long token is refused before int() converts it (Python refuses more than
    # 4,300 digits with a ValueError of its own).
    if len(token.lstrip(b"-")) <= 20 and JSON_INT_MIN <= int(token) <= JSON_INT_MAX:
        return
    text = token.decode()
    shown = text if len(text) <= 40 else f"{text[:20]}...({len(text)} digits)"
    raise InvalidArgumentError(
        f"{event_type} event holds the integer {shown}, outside the range JSON readers "
        f"keep exactly ({JSON_INT_MIN}..{JSON_INT_MAX}); store it as a string"
    )


def _depth(brackets: bytes) -> int:
    """Nesting depth of balanced brackets, counted up to ``MAX_JSON_DEPTH + 1``.

    Each pass removes the innermost pairs (one C-level regex substitution), so the
    cost is one pass per level and never more than ``MAX_JSON_DEPTH + 1`` passes.
    """
    depth = 0
    while brackets and depth <= MAX_JSON_DEPTH:
        # One substitution pass: pairs made adjacent by it wait for the next one.
        brackets = _INNERMOST.sub(b"", brackets)
        depth += 1
    return depth


def event_run_id(event: AgentEvent) -> RunId | None:
    """The run the event names; ``None`` for an unknown variant that names none.

    Every variant the runtime writes today has a ``run_id``; a future one without it
    is kept (an unknown variant is never an error), and checked against nothing.
    """
    try:
        return event.run_id
    except ValueError:
        if isinstance(event, UnknownEvent):
            return None
        raise


def check_page(
    run_id: RunId, after_seq: int, page: Sequence[EventEnvelope], *, gaps_possible: bool
) -> None:
    """Refuse a page that is not the run's next seqs after ``after_seq``, in order.

    A hole, a duplicate, disorder, or an envelope (or its event) of another run is
    corruption: :class:`CorruptEventError` naming the run and the seq. With
    ``gaps_possible`` (a backend that skips corrupt entries on request, or reads a
    legacy layout with holes) seqs need only increase from ``after_seq``.
    """
    if not page:
        return
    run = run_id.int
    try:
        # One C-level pass: (seq, envelope's run, event's run) of every envelope.
        found = list(map(_KEYS, page))
    except ValueError:  # an unknown event without a run_id: the careful path
        pass
    else:
        if gaps_possible:
            seqs = [key[0] for key in found]
            if (
                seqs[0] > after_seq
                and all(map(lt, seqs, seqs[1:]))
                and {key[1:] for key in found} == {(run, run)}
            ):
                return
        else:
            start = after_seq + 1
            if found == list(zip(range(start, start + len(page)), repeat(run), repeat(run))):
                return
    _check_each(run_id, after_seq, page, gaps_possible)


def _check_each(
    run_id: RunId, after_seq: int, page: Sequence[EventEnvelope], gaps_possible: bool
) -> None:
    previous = after_seq
    for envelope in page:
        seq = envelope.seq
        if gaps_possible:
            if seq <= previous:
                reason = f"seq {seq} follows seq {previous}: the page is out of order"
                raise CorruptEventError(run_id=run_id, position=f"seq {seq}", reason=reason)
        elif seq != previous + 1:
            kind = "a hole" if seq > previous + 1 else "a duplicate or disorder"
            reason = f"expected seq {previous + 1}, the store returned seq {seq} ({kind})"
            raise CorruptEventError(run_id=run_id, position=f"seq {previous + 1}", reason=reason)
        if envelope.run_id != run_id:
            reason = f"the envelope names run {envelope.run_id}"
            raise CorruptEventError(run_id=run_id, position=f"seq {seq}", reason=reason)
        named = event_run_id(envelope.event)
        if named is not None and named != run_id:
            reason = f"its {envelope.event.event_type} event names run {named}"
            raise CorruptEventError(run_id=run_id, position=f"seq {seq}", reason=reason)
        previous = seq


def check_retry(
    run_id: RunId, events: Sequence[PendingEvent], envelopes: Sequence[EventEnvelope]
) -> None:
    """Refuse a retry whose stored events are not the ones given.

    ``envelopes`` is what a backend's ``_append`` returned for ``events``: new
    envelopes hold the given event objects themselves (the fast path); stored ones
    were read back and must hold the same event, to the JSON: ``1``, ``1.0`` and
    ``true`` compare equal in Python but are three different values to a reader.
    """
    if len(envelopes) != len(events):
        raise BackendError(
            f"run {run_id}: the backend returned {len(envelopes)} envelopes for an append "
            f"of {len(events)} events"
        )
    for pending, envelope in zip(events, envelopes, strict=True):
        if envelope.event is pending.event:
            continue
        if envelope.event_id != pending.event_id or envelope.run_id != run_id:
            raise CorruptEventError(
                run_id=run_id,
                position=f"seq {envelope.seq}",
                reason=(
                    f"the store returned event id {envelope.event_id} of run "
                    f"{envelope.run_id} for an append of event id {pending.event_id}"
                ),
            )
        if (
            envelope.event != pending.event
            or encode_event_bytes(envelope.event).decode() != pending.event_json
        ):
            raise IdempotencyConflictError.different_event(
                run_id=run_id,
                event_id=pending.event_id,
                seq=envelope.seq,
                stored=envelope.event.event_type,
                given=pending.event.event_type,
            )
