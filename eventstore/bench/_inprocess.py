"""An in-process raw baseline: JSON strings in a dict of lists, nothing else.

It is the floor under the ``memory://`` store: the same work (store the encoded
event with the next seq, read pages back and decode them) with no validation, no
envelopes and no event models. The ratio to it is the cost of the store's API.
"""

from __future__ import annotations

__all__ = ["ListBaseline", "inprocess_baselines"]

import json

from .._ids import RunId
from ._baseline import RawBaseline


class ListBaseline:
    """A :class:`RawBaseline` keeping each run's ``(seq, event JSON)`` in a list."""

    name = "raw dict of lists"

    def __init__(self) -> None:
        self._runs: dict[RunId, list[tuple[int, str]]] = {}

    async def open(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """Drop everything stored."""
        self._runs.clear()

    async def append_one(self, run_id: RunId, event_json: str) -> None:
        """Append with the next seq."""
        log = self._runs.setdefault(run_id, [])
        log.append((len(log) + 1, event_json))

    async def append_many(self, run_id: RunId, events_json: list[str]) -> None:
        """Append a batch with consecutive seqs."""
        log = self._runs.setdefault(run_id, [])
        first = len(log) + 1
        log.extend((first + i, event) for i, event in enumerate(events_json))

    async def read_page(self, run_id: RunId, after_seq: int, limit: int) -> int:
        """Decode up to ``limit`` stored events after ``after_seq``."""
        page = self._runs.get(run_id, [])[after_seq : after_seq + limit]
        for _seq, event_json in page:
            json.loads(event_json)
        return len(page)


def inprocess_baselines(url: str) -> list[RawBaseline]:
    """The baselines of ``memory://`` (``url`` is not needed: nothing is shared)."""
    return [ListBaseline()]
