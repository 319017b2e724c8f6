"""Rule 6 (round trip): nothing is acknowledged that cannot be read back equal.

An event whose JSON a reader could not decode to an equal event (nesting deeper than
:data:`~eventstore.events.MAX_JSON_DEPTH`, an integer outside the i64/u64 range JSON
readers keep exactly) is refused at append with ``InvalidArgumentError`` and stores
nothing; everything up to those limits reads back equal.
"""

from __future__ import annotations

__all__ = ["LimitTests"]

from typing import Any

import pytest

from eventstore import (
    EventStore,
    InvalidArgumentError,
    RunId,
    TextDelta,
    ToolCall,
    ToolCallCompleted,
    ToolCallStarted,
)
from eventstore.events import JSON_INT_MAX, JSON_INT_MIN, MAX_JSON_DEPTH

from .._harness import contract_test
from .._support import read_all

# Levels above the arguments value in a ToolCallCompleted's JSON: the variant tag
# object, the variant's fields, the call object.
_ABOVE_ARGUMENTS = 3


def _nested(levels: int) -> Any:
    value: Any = "deepest"
    for level in range(levels):
        value = [value] if level % 2 else {"k": value}
    return value


def _call(run_id: RunId, arguments: Any) -> ToolCallCompleted:
    return ToolCallCompleted(run_id=run_id, call=ToolCall(id="c", name="t", arguments=arguments))


class LimitTests:
    """Refused at append what cannot be read back; equal below the limits."""

    @contract_test
    async def test_round_trip_nesting_at_the_limit_reads_back_equal(
        self, store: EventStore
    ) -> None:
        run_id = RunId.new()
        event = _call(run_id, _nested(MAX_JSON_DEPTH - _ABOVE_ARGUMENTS))
        appended = await store.append(event)
        assert await read_all(store, run_id) == [appended]

    @contract_test
    @pytest.mark.parametrize("levels", [MAX_JSON_DEPTH - _ABOVE_ARGUMENTS + 1, 200])
    async def test_round_trip_nesting_past_the_limit_is_refused(
        self, store: EventStore, levels: int
    ) -> None:
        run_id = RunId.new()
        with pytest.raises(InvalidArgumentError, match="levels"):
            await store.append(_call(run_id, _nested(levels)))
        # An extra field sits one level higher than a call's arguments.
        with pytest.raises(InvalidArgumentError, match="levels"):
            await store.append(TextDelta(run_id=run_id, delta="x", extra=_nested(levels + 1)))
        assert await store.last_seq(run_id) == 0

    @contract_test
    async def test_round_trip_integers_at_the_limits_read_back_equal(
        self, store: EventStore
    ) -> None:
        run_id = RunId.new()
        edges = [JSON_INT_MIN, -(2**53) - 1, 2**53 + 1, 2**63 - 1, JSON_INT_MAX, 0, -1]
        appended = await store.append_batch(
            [
                _call(run_id, edges),
                TextDelta(run_id=run_id, delta="x", big=JSON_INT_MAX, small=JSON_INT_MIN),
            ]
        )
        stored = await read_all(store, run_id)
        assert stored == appended
        assert stored[0].event.call.arguments == edges  # type: ignore[union-attr]

    @contract_test
    @pytest.mark.parametrize(
        "number",
        [JSON_INT_MAX + 1, JSON_INT_MIN - 1, 10**30, -(10**4400)],
        ids=["u64-max-plus-1", "i64-min-minus-1", "30-digits", "4401-digits"],
    )
    async def test_round_trip_integers_past_the_limits_are_refused(
        self, store: EventStore, number: int
    ) -> None:
        run_id = RunId.new()
        with pytest.raises(InvalidArgumentError, match="integer"):
            await store.append(_call(run_id, {"n": number}))
        with pytest.raises(InvalidArgumentError, match="integer"):
            await store.append(TextDelta(run_id=run_id, delta="x", n=[number]))
        assert await store.last_seq(run_id) == 0

    @contract_test
    async def test_round_trip_long_digit_strings_are_not_integers(self, store: EventStore) -> None:
        run_id = RunId.new()
        digits = "9" * 5000
        appended = await store.append(_call(run_id, {"id": digits, "n": 1}))
        assert await read_all(store, run_id) == [appended]

    @contract_test
    async def test_round_trip_lone_surrogates_are_refused(self, store: EventStore) -> None:
        # A lone surrogate has no UTF-8 form: no reader could get it back, so the
        # event is refused at append (InvalidArgumentError), never stored altered.
        run_id = RunId.new()
        for event in (
            TextDelta(run_id=run_id, delta="\ud800"),
            TextDelta(run_id=run_id, delta="a\udfffb"),
            ToolCallStarted(run_id=run_id, call_id="\udc00", tool_name="t"),
            _call(run_id, {"k": "\ud83d"}),
            _call(run_id, {"\ud83d": 1}),
        ):
            with pytest.raises(InvalidArgumentError):
                await store.append(event)
        with pytest.raises(InvalidArgumentError):
            await store.append_batch(
                [TextDelta(run_id=run_id, delta="fine"), TextDelta(run_id=run_id, delta="\ud800")]
            )
        assert await store.last_seq(run_id) == 0
