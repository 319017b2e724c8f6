"""The checks the base class makes on what goes into and comes out of every backend.

They are the contract's rules written once, so that a backend that breaks one is
caught at run time as well as by the conformance suite:

- on write, nothing is acknowledged that the read path (ours, or serde's in the Rust
  runtime) could not decode to an equal event (:func:`check_decodable`);
- on read, a page must hold exactly the seqs ``after_seq+1, after_seq+2, ...`` of the
  requested run (:func:`check_page`);
- on an idempotent retry, the stored event must equal the one given
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
]

import itertools
import json
import re
from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Final

from ._errors import BackendError, CorruptEventError, IdempotencyConflictError, InvalidArgumentError

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

# An integer beyond the i64/u64 range has at least 19 digits; a run of digits that
# long (possibly inside a string) sends the event to the precise check.
_LONG_DIGITS: Final = re.compile(rb"\d{19,}")

_KEYS: Final = attrgetter("seq", "run_id.int", "event.run_id.int")


def check_decodable(data: bytes, event_type: str) -> None:
    """Refuse an event whose JSON ``data`` would not read back equal.

    Raises :class:`InvalidArgumentError` for nesting deeper than
    :data:`MAX_JSON_DEPTH` or an integer outside ``JSON_INT_MIN..JSON_INT_MAX``.
    """
    # Fast path: too few brackets to nest that deep, no digit run that long.
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH and not _LONG_DIGITS.search(data):
        return
    try:
        value = json.loads(data, parse_int=_bounded_int)
    except RecursionError:
        depth = None  # deeper than Python's own parser goes: far past the limit
    except _IntegerOutOfRange as exc:
        raise InvalidArgumentError(
            f"{event_type} event holds the integer {exc.shown}, outside the range JSON "
            f"readers keep exactly ({JSON_INT_MIN}..{JSON_INT_MAX}); store it as a string"
        ) from None
    else:
        depth = _depth(value)
        if depth <= MAX_JSON_DEPTH:
            return
    shown = "more than 1000" if depth is None else str(depth)
    raise InvalidArgumentError(
        f"{event_type} event nests {shown} levels of arrays and objects; at most "
        f"{MAX_JSON_DEPTH} can be stored and read back"
    )


class _IntegerOutOfRange(ValueError):
    def __init__(self, text: str) -> None:
        self.shown = text if len(text) <= 40 else f"{text[:20]}...({len(text)} digits)"
        super().__init__(self.shown)


def _bounded_int(text: str) -> int:
    # A long digit string is refused before int() would convert it (and before
    # Python's 4,300-digit conversion limit could raise something else).
    if len(text.lstrip("-")) > 20:
        raise _IntegerOutOfRange(text)
    value = int(text)
    if not JSON_INT_MIN <= value <= JSON_INT_MAX:
        raise _IntegerOutOfRange(text)
    return value


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        stack.extend((child, level) for child in children)
    return deepest


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
        # One C-level pass: (seq, envelope's run, event's run) of every envelope,
        # compared with what an exact page holds.
        found = list(map(_KEYS, page))
    except ValueError:  # an unknown event without a run_id
        found = []
    if gaps_possible:
        seqs = [key[0] for key in found]
        exact = (
            len(found) == len(page)
            and seqs[0] > after_seq
            and all(a < b for a, b in itertools.pairwise(seqs))
            and {key[1:] for key in found} == {(run, run)}
        )
    else:
        start = after_seq + 1
        exact = found == list(zip(range(start, start + len(page)), repeat(run), repeat(run)))
    if not exact:
        _raise_first_bad(run_id, after_seq, page, gaps_possible)


def _raise_first_bad(
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
        try:
            event_run: RunId | None = envelope.event.run_id
        except ValueError:
            event_run = None
        if event_run != run_id:
            reason = f"its {envelope.event.event_type} event names run {event_run}"
            raise CorruptEventError(run_id=run_id, position=f"seq {seq}", reason=reason)
        previous = seq


def check_retry(
    run_id: RunId, events: Sequence[PendingEvent], envelopes: Sequence[EventEnvelope]
) -> None:
    """Refuse a retry whose stored events differ from the ones given.

    ``envelopes`` is what a backend's ``_append`` returned for ``events``: new
    envelopes hold the given event objects themselves (the fast path), stored ones
    were read back and must be equal to be a retry of the same append.
    """
    if len(envelopes) != len(events):
        raise BackendError(
            f"run {run_id}: the backend returned {len(envelopes)} envelopes for an append "
            f"of {len(events)} events"
        )
    for pending, envelope in zip(events, envelopes, strict=True):
        if envelope.event is pending.event:
            continue
        if envelope.event_id != pending.event_id:
            raise CorruptEventError(
                run_id=run_id,
                position=f"seq {envelope.seq}",
                reason=(
                    f"the store returned event id {envelope.event_id} for an append "
                    f"of event id {pending.event_id}"
                ),
            )
        if envelope.event != pending.event:
            raise IdempotencyConflictError.different_event(
                run_id=run_id,
                event_id=pending.event_id,
                seq=envelope.seq,
                stored=envelope.event.event_type,
                given=pending.event.event_type,
            )
