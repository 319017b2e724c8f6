"""The events the scenarios write: a realistic mix, built before any timing starts.

Building and validating pydantic events is the caller's cost, not the store's, so
every scenario builds its events first and times only the store calls.
"""

from __future__ import annotations

__all__ = ["iter_workload_events", "workload_events", "workload_json"]

import itertools
from collections.abc import Callable, Iterator
from typing import Final

from .._events import (
    AgentEvent,
    ModelStarted,
    Success,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStarted,
    ToolExecutionFinished,
    ToolExecutionStarted,
    UsageRecorded,
    encode_event,
)
from .._ids import RunId

_Maker = Callable[[RunId, int], AgentEvent]

# One agent-loop iteration as a real run streams it: mostly text deltas, one tool
# call and a usage record. Payloads are around 100-300 bytes of JSON, like real ones.
_CYCLE: Final[tuple[_Maker, ...]] = (
    lambda r, i: ModelStarted(run_id=r, provider="acme", model="acme-large-2", iteration=i),
    *[lambda r, i: TextDelta(run_id=r, delta=f"Streaming chunk {i} of the answer, word by word. ")]
    * 8,
    lambda r, i: ToolCallStarted(run_id=r, call_id=f"call_{i}", tool_name="search_docs"),
    lambda r, i: ToolCallDelta(run_id=r, call_id=f"call_{i}", delta='{"query": "event sourcing'),
    lambda r, i: ToolCallCompleted(
        run_id=r,
        call=ToolCall(id=f"call_{i}", name="search_docs", arguments={"query": "event sourcing"}),
    ),
    lambda r, i: ToolExecutionStarted(run_id=r, call_id=f"call_{i}", tool_name="search_docs"),
    lambda r, i: ToolExecutionFinished(
        run_id=r,
        call_id=f"call_{i}",
        tool_name="search_docs",
        result=Success(output={"hits": 3, "top": "docs/concepts.md"}),
        duration_ms=42,
    ),
    lambda r, i: UsageRecorded(
        run_id=r, usage=TokenUsage(input_tokens=1200, output_tokens=300, total_tokens=1500)
    ),
)


def iter_workload_events(run_id: RunId) -> Iterator[AgentEvent]:
    """An endless stream of realistic events of ``run_id``, built one at a time."""
    for i in itertools.count():
        for make in _CYCLE:
            yield make(run_id, i)


def workload_events(run_id: RunId, count: int) -> list[AgentEvent]:
    """``count`` realistic events of ``run_id``."""
    return list(itertools.islice(iter_workload_events(run_id), count))


def workload_json(run_id: RunId, count: int) -> list[str]:
    """The same events as :func:`workload_events`, encoded once, for raw baselines."""
    return [encode_event(event) for event in workload_events(run_id, count)]
