"""Stored bytes per event of the in-memory backend, measured with tracemalloc."""

from __future__ import annotations

__all__ = ["memory_bytes_per_event"]

import gc
import itertools
import tracemalloc

from .._ids import RunId
from ..memory import MemoryEventStore
from ._workload import iter_workload_events


async def memory_bytes_per_event(count: int = 10_000) -> float:
    """Bytes a ``memory://`` store retains per event after ``count`` appends.

    Events are built one at a time inside the traced section and only the store
    keeps them, so the figure covers everything an event costs once stored: the
    event model, its envelope and the store's indexes.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    was_tracing = tracemalloc.is_tracing()
    gc.collect()
    if not was_tracing:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store = MemoryEventStore()
        await store.open()
        run_id = RunId.new()
        for event in itertools.islice(iter_workload_events(run_id), count):
            await store.append(event)
        del event
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
        if await store.last_seq(run_id) != count:
            raise RuntimeError("memory store lost events while being measured")
        await store.close()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return retained / count
