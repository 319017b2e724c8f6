r"""Raw redis-py baselines for the benchmark harness (``benchmark_baselines`` of the spec).

Each does the work of one scenario with the bare driver, so the harness can report
the store's speed as a ratio in the same run:

* :class:`RawScriptBaseline`: a plain loop of ``EVALSHA`` of the store's own append
  script (S1's target: the store within 0.8x of it), and ``XRANGE`` plus
  ``json.loads`` (S5).
* :class:`ReferenceDesignBaseline`: behest's algorithm, ``GET`` session, ``INCR``,
  ``XADD *``, three round trips (S1: the store at least 2x it).
* :class:`RawPipelinedXaddBaseline`: a ``MULTI`` pipeline of ``XADD``\ s with ids from
  a client-side counter (S4), and ``XRANGE`` plus ``json.loads`` (S5).

Every baseline keeps its keys under its own random prefix and deletes them on close.
"""

from __future__ import annotations

__all__ = [
    "RawPipelinedXaddBaseline",
    "RawScriptBaseline",
    "ReferenceDesignBaseline",
    "baselines",
]

import json
import uuid
from datetime import UTC, datetime
from typing import cast

from redis.asyncio import Redis

from eventstore import EventId, RunId
from eventstore.backend import StoreURL
from eventstore.bench import RawBaseline

from ._options import KeyLayout
from ._scripts import APPEND_SCRIPT, Script


def _client(url: str) -> Redis:
    parsed = StoreURL.parse(url)
    if parsed.scheme.endswith("+cluster"):
        raise NotImplementedError("the raw baselines run against a standalone server")
    return Redis.from_url(parsed.without_query)


class _RawBase:
    name = "raw redis-py"

    def __init__(self, url: str) -> None:
        self._url = url
        self._prefix = f"esbench:{uuid.uuid4().hex[:10]}:"
        self.keys = KeyLayout(self._prefix)
        self._redis: Redis | None = None

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            raise RuntimeError(f"{self.name} baseline is not open")
        return self._redis

    async def open(self) -> None:
        """Connect."""
        self._redis = _client(self._url)
        await self._redis.ping()

    async def close(self) -> None:
        """Delete the baseline's keys and disconnect."""
        client, self._redis = self._redis, None
        if client is None:
            return
        keys = [key async for key in client.scan_iter(match=f"{self._prefix}*", count=1000)]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start : start + 500])
        await client.aclose()

    async def read_page(self, run_id: RunId, after_seq: int, limit: int) -> int:
        """One exact XRANGE of the native layout, each entry JSON-decoded."""
        # redis-py's XRANGE as a user would call it, reply callback included.
        entries = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            await self.redis.xrange(self.keys.log(run_id), min=f"{after_seq}-1", count=limit),
        )
        for _, fields in entries:
            json.loads(fields[b"e"])
        return len(entries)


class RawScriptBaseline(_RawBase):
    """The store's append script called in a plain loop, arguments prepared up front."""

    name = "raw EVALSHA of the append script"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._script = Script(APPEND_SCRIPT)

    async def open(self) -> None:
        """Connect and load the script."""
        await super().open()
        await self._script.load(self.redis)

    async def append_one(self, run_id: RunId, event_json: str) -> None:
        """One EVALSHA for one event."""
        await self.append_many(run_id, [event_json])

    async def append_many(self, run_id: RunId, events_json: list[str]) -> None:
        """One EVALSHA for the whole batch."""
        run = str(run_id)
        args: list[str | int] = ["", run, "0", self.keys.session_prefix]
        for event_json in events_json:
            args += [str(EventId.new()), "", event_json]
        keys = [
            self.keys.log(run_id),
            self.keys.ids(run_id),
            self.keys.meta(run_id),
            self.keys.runs,
        ]
        await self._script(self.redis, keys, args)


class ReferenceDesignBaseline(_RawBase):
    """behest's append: GET the session, INCR the seq, XADD with a time-based id."""

    name = "reference design (GET, INCR, XADD *)"

    async def append_one(self, run_id: RunId, event_json: str) -> None:
        """Three round trips, as the reference store makes."""
        base = f"{self._prefix}run:{run_id}"
        session = await self.redis.get(f"{base}:session")
        seq = await self.redis.incr(f"{base}:seq")
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        if isinstance(session, bytes):
            session = session.decode()
        sid = "null" if session is None else f'"{session}"'
        envelope = (
            f'{{"event_id":"{EventId.new()}","seq":{seq},"run_id":"{run_id}",'
            f'"session_id":{sid},"event":{event_json},"emitted_at":"{stamp}"}}'
        )
        await self.redis.xadd(base, {"data": envelope}, maxlen=10_000, approximate=True)

    async def append_many(self, run_id: RunId, events_json: list[str]) -> None:
        """The reference design has no batch append."""
        raise NotImplementedError("the reference design has no batch append")

    async def read_page(self, run_id: RunId, after_seq: int, limit: int) -> int:
        """Its paging is wrong (seqs used as stream ids), so it is no baseline."""
        raise NotImplementedError("the reference design cannot page by seq")


class RawPipelinedXaddBaseline(_RawBase):
    """XADDs with ids from a client-side counter, one MULTI pipeline per batch."""

    name = "raw pipelined XADD"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._last: dict[RunId, int] = {}

    async def append_one(self, run_id: RunId, event_json: str) -> None:
        """Not a baseline for single appends: concurrent ones would race the counter."""
        raise NotImplementedError("the pipelined XADD baseline is for batches (S4)")

    async def append_many(self, run_id: RunId, events_json: list[str]) -> None:
        """One MULTI/EXEC pipeline of XADDs (no checks, seqs counted here)."""
        last = self._last.get(run_id, 0)
        self._last[run_id] = last + len(events_json)
        key = self.keys.log(run_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            for offset, event_json in enumerate(events_json, 1):
                pipe.xadd(key, {"e": event_json}, id=f"{last + offset}-0")
            await pipe.execute()

    async def read_page(self, run_id: RunId, after_seq: int, limit: int) -> int:
        """Not a read baseline: its entries hold bare event JSON, not envelopes.

        Decoding them is less work than the store's reads, so the ratio would not
        compare the same work; the script baseline stores the very envelopes the
        store does and is the read (S5) baseline.
        """
        raise NotImplementedError("its entries are bare events, not the store's envelopes")


def baselines(url: str) -> list[RawBaseline]:
    """The raw baselines for ``url`` (a standalone server; none for a cluster)."""
    if StoreURL.parse(url).scheme.endswith("+cluster"):
        return []
    return [RawScriptBaseline(url), ReferenceDesignBaseline(url), RawPipelinedXaddBaseline(url)]
