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

Every baseline keeps its keys under the store's ``prefix`` plus ``esbench:<random>:``
and deletes them on close by name, with ``DEL``: the benchmark needs no right beyond
the ones docs/backends/redis.md lists for the store. A baseline that needs one more
(``INCR``, ``MULTI``/``EXEC``) and is refused it is skipped, with
:attr:`skip_reason <_RawBase.skip_reason>` naming the right to grant.
"""

from __future__ import annotations

__all__ = [
    "RawPipelinedXaddBaseline",
    "RawScriptBaseline",
    "ReferenceDesignBaseline",
    "baselines",
]

import contextlib
import json
import logging
import re
import uuid
from collections.abc import Iterator
from typing import Final, cast

from redis.asyncio import Redis
from redis.exceptions import NoPermissionError, RedisError
from whenever import Instant

from eventstore import BackendError, EventId, RunId
from eventstore.backend import StoreURL, redact_text
from eventstore.bench import RawBaseline
from eventstore.events import format_time

from ._options import KeyLayout, resolve
from ._scripts import APPEND_SCRIPT, Script

logger = logging.getLogger("eventstore.redis")

#: How redis-py words an ACL refusal of a command: "... to run the 'incrby' command".
_REFUSED_COMMAND: Final = re.compile(r"run the '([^']+)' command")
#: Keys per DEL when a baseline removes what it wrote.
_DELETE_CHUNK: Final = 500


def _refusal(exc: NoPermissionError) -> str:
    """Why a baseline is skipped: what the server refused and the right that is missing."""
    match = _REFUSED_COMMAND.search(str(exc))
    if match is None:  # a key outside the user's key patterns, a channel...
        return f"the server refused it to this user: {redact_text(str(exc))}"
    command = match.group(1)
    return f"the server refused {command.upper()} to this user (grant +{command})"


class _RawBase:
    """Connection, key bookkeeping and ACL refusals shared by the baselines.

    The keys live under the store's own ``prefix`` (plus ``esbench:<random>:``), so a
    user limited to that prefix may write them, and every key a baseline writes is
    remembered by name: :meth:`close` deletes exactly those with ``DEL``, which the
    store's documented ACL rights include (no ``SCAN``, no ``KEYS``). A command the
    server refuses for this user (``NoPermissionError``: e.g. ``INCR`` or ``MULTI``,
    which the store itself does not need) skips the baseline: its methods raise
    ``NotImplementedError`` and :attr:`skip_reason` says what to grant.
    """

    name = "raw redis-py"

    def __init__(self, url: str) -> None:
        target = resolve(url, {})
        if target.cluster:
            raise NotImplementedError("the raw baselines run against a standalone server")
        self._driver_url = target.driver_url
        self._db = target.options.db
        self._prefix = f"{target.options.prefix}esbench:{uuid.uuid4().hex[:10]}:"
        self.keys = KeyLayout(self._prefix)
        self._redis: Redis | None = None
        self._written: set[str] = set()
        #: Why the baseline measures nothing (a command refused for this user), or None.
        self.skip_reason: str | None = None

    @property
    def redis(self) -> Redis:
        """The connection; ``NotImplementedError`` once a command was refused."""
        if self.skip_reason is not None:
            raise NotImplementedError(self.skip_reason)
        if self._redis is None:
            raise RuntimeError(f"{self.name} baseline is not open")
        return self._redis

    def _writes(self, *keys: str) -> None:
        """Remember keys about to be written, so that :meth:`close` deletes them."""
        self._written.update(keys)

    @contextlib.contextmanager
    def _driver_errors(self, doing: str) -> Iterator[None]:
        """A refusal skips the baseline; any other driver error is a ``BackendError``."""
        try:
            yield
        except NoPermissionError as exc:
            self.skip_reason = self.skip_reason or _refusal(exc)
            raise NotImplementedError(self.skip_reason) from None
        except RedisError as exc:
            raise BackendError(
                f"redis: baseline {self.name!r}: {doing} failed: "
                f"{type(exc).__name__}: {redact_text(str(exc))}"
            ) from exc

    async def open(self) -> None:
        """Connect and check that the server lets this user run the baseline's commands.

        A refusal does not raise: the baseline is skipped (see :attr:`skip_reason`).
        """
        if self._db is None:
            self._redis = Redis.from_url(self._driver_url)
        else:  # ?db=N: the URL path has no number (resolve checks they agree)
            self._redis = Redis.from_url(self._driver_url, db=self._db)
        with contextlib.suppress(NotImplementedError), self._driver_errors("opening"):
            await self._redis.ping()
            await self._prepare(self._redis)

    async def _prepare(self, client: Redis) -> None:
        """Load what the baseline needs and try the commands the store does not need."""

    async def close(self) -> None:
        """Delete the keys the baseline wrote, by name, and disconnect."""
        client, self._redis = self._redis, None
        if client is None:
            return
        keys = sorted(self._written)
        try:
            for start in range(0, len(keys), _DELETE_CHUNK):
                await client.delete(*keys[start : start + _DELETE_CHUNK])
                self._written.difference_update(keys[start : start + _DELETE_CHUNK])
        except RedisError as exc:
            # Raising here would hide the figures of every scenario: warn instead.
            logger.warning(
                "benchmark baseline %r could not delete its %d keys under %r: %s: %s",
                self.name,
                len(self._written),
                self._prefix,
                type(exc).__name__,
                redact_text(str(exc)),
            )
        finally:
            await client.aclose()

    async def read_page(self, run_id: RunId, after_seq: int, limit: int) -> int:
        """One exact XRANGE of the native layout, each entry JSON-decoded."""
        # redis-py's XRANGE as a user would call it, reply callback included.
        with self._driver_errors("XRANGE"):
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

    async def _prepare(self, client: Redis) -> None:
        """Load the script (SCRIPT LOAD, a right the store needs too)."""
        await self._script.load(client)

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
        self._writes(*keys)
        with self._driver_errors("EVALSHA of the append script"):
            await self._script(self.redis, keys, args)


class ReferenceDesignBaseline(_RawBase):
    """behest's append: GET the session, INCR the seq, XADD with a time-based id."""

    name = "reference design (GET, INCR, XADD *)"

    async def _prepare(self, client: Redis) -> None:
        """Try INCR (redis-py sends INCRBY), which the store's ACL rights leave out."""
        probe = f"{self._prefix}probe"
        self._writes(probe)
        await client.incr(probe)

    async def append_one(self, run_id: RunId, event_json: str) -> None:
        """Three round trips, as the reference store makes."""
        base = f"{self._prefix}run:{run_id}"
        self._writes(base, f"{base}:seq")
        with self._driver_errors("the reference design's append"):
            session = await self.redis.get(f"{base}:session")
            seq = await self.redis.incr(f"{base}:seq")
            # As chrono writes Utc::now(), like the store (fewest of 0/3/6/9 digits).
            stamp = format_time(Instant.now())
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

    async def _prepare(self, client: Redis) -> None:
        """Try MULTI/EXEC (around an XLEN), which the store's ACL rights leave out."""
        async with client.pipeline(transaction=True) as pipe:
            pipe.xlen(f"{self._prefix}probe")
            await pipe.execute()

    async def append_one(self, run_id: RunId, event_json: str) -> None:
        """Not a baseline for single appends: concurrent ones would race the counter."""
        raise NotImplementedError("the pipelined XADD baseline is for batches (S4)")

    async def append_many(self, run_id: RunId, events_json: list[str]) -> None:
        """One MULTI/EXEC pipeline of XADDs (no checks, seqs counted here)."""
        last = self._last.get(run_id, 0)
        self._last[run_id] = last + len(events_json)
        key = self.keys.log(run_id)
        self._writes(key)
        with self._driver_errors("the pipelined XADDs"):
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
