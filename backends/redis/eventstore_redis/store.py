r"""The Redis Streams event store (native layout).

Append path: :meth:`RedisEventStore._append` sends the already encoded events to the
append script (:mod:`._scripts`) in one ``EVALSHA``; the script checks event ids and
``expected_seq``, assigns the seqs, stamps sessions and ``emitted_at`` (Redis
``TIME``), builds each envelope's JSON and ``XADD``\ s it with id ``<seq>-0``. The
client builds the returned envelopes from the script's reply without decoding.

Read path: one ``XRANGE <log> <after>-1 + COUNT <limit>``; the ids are the seqs.

Live subscribe: one shared blocking reader per store (:mod:`._reader`) follows every
waiting subscriber's stream with one ``XREAD`` and wakes them through the store's
notifier; another process's ``delete_run``, which adds no entry, is found by the
core's shared poller (one pipeline of ``HGET <meta> last`` for every waited run each
``block_ms``). A cluster store keeps one blocking ``XREAD`` per waiting subscriber.

Import path (``eventstore copy``): :meth:`RedisEventStore._import` stores the envelope
JSON the core built for each copied envelope (its ids, seq, session and time kept) with
the import script, in one ``EVALSHA`` guarded by the expected last seq.
"""

from __future__ import annotations

__all__ = ["RedisEventStore"]

import asyncio
import logging
import secrets
from collections.abc import Sequence
from typing import Any, ClassVar, Final

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import ResponseError
from whenever import Instant

from eventstore import (
    ConcurrencyError,
    ConfigurationError,
    CorruptEventError,
    IdempotencyConflictError,
    RunId,
    RunStarted,
    SessionId,
)
from eventstore.backend import (
    MAX_LIMIT,
    Backdoor,
    Capability,
    EventEnvelope,
    ImportBatch,
    PendingEvent,
    RunInfo,
    StoreURL,
    poll_delay,
    stamp,
)
from eventstore.errors import HistoryUnavailableError
from eventstore.events import format_time, parse_time

from ._backdoor import NativeBackdoor
from ._base import RedisStoreBase
from ._batcher import ScriptBatcher
from ._client import (
    cancel_requests,
    deliver_swallowed_cancel,
    is_unavailable,
    xrange,
    zrangebylex,
)
from ._codec import EntryDecoder, seq_of
from ._connection import lean_connection_class
from ._options import KeyLayout, RedisTarget, resolve
from ._reader import SharedReader
from ._scripts import (
    APPEND_ALL_STORED,
    APPEND_CONFLICT,
    APPEND_DAMAGED,
    APPEND_OK,
    APPEND_PARTIAL,
    APPEND_SCRIPT,
    DELETE_SCRIPT,
    IMPORT_CONFLICT,
    IMPORT_DAMAGED,
    IMPORT_ID_TAKEN,
    IMPORT_SCRIPT,
    STATE_SCRIPT,
    Script,
)
from .plugin import CAPABILITIES

_RECENT: Final = 1024
#: Runs per pipeline when the live subscribers' poller asks for their last seqs.
_LAST_SEQS_CHUNK: Final = 1000
_APPEND: Final = Script(APPEND_SCRIPT)
_DELETE: Final = Script(DELETE_SCRIPT)
_IMPORT: Final = Script(IMPORT_SCRIPT)
_STATE: Final = Script(STATE_SCRIPT)
#: Policies that never evict a key without a TTL (the store sets none on its data).
_SAFE_POLICIES: Final = ("noeviction", "volatile-")
#: Why a run's keys can go missing, appended to every such CorruptEventError.
_DAMAGE_CAUSE: Final = (
    "evicted by the server (maxmemory-policy such as allkeys-lru) or deleted; "
    "see 'Eviction' in the Redis backend's documentation"
)

logger = logging.getLogger("eventstore.redis")


class RedisEventStore(RedisStoreBase):
    """Event store on Redis Streams: one stream per run, one script call per append.

    Build it with :func:`eventstore.open_store` (``redis://``, ``rediss://``,
    ``unix://``, ``redis+cluster://``) or :meth:`from_url`. Durability is the
    server's: with ``appendonly yes`` and ``appendfsync always`` an acknowledged
    append survives a crash of the server.
    """

    capabilities: ClassVar[frozenset[Capability]] = CAPABILITIES

    def __init__(self, target: RedisTarget) -> None:
        super().__init__(target)
        options = target.options
        self.keys = KeyLayout(options.prefix)
        self._decoder = self._corrupt = EntryDecoder(
            skip_corrupt=options.skip_corrupt, retention=options.max_events_per_run is not None
        )
        # Skipped entries leave holes in a page: the base class then checks order only.
        self.gaps_possible = options.skip_corrupt
        self._cap = str(options.max_events_per_run or 0)
        self._closing: asyncio.Future[None] | None = None
        self._batcher: ScriptBatcher | None = None
        self._reader: SharedReader | None = None
        # Every append of a run formats the same key names: kept for recent runs.
        self._recent_keys: dict[RunId, list[str]] = {}
        # How long a delete's receipt outlives it (see DELETE_SCRIPT): longer than
        # redis-py's retries of the call can take, at least a minute.
        budget = (options.retries + 1) * (2 * options.socket_timeout + options.connect_timeout + 1)
        self._receipt_ms = str(int(max(60.0, budget) * 1000))

    @classmethod
    def from_url(cls, url: str | StoreURL, **options: Any) -> RedisStoreBase:
        """Build an unopened store from a Redis URL and options (see ``RedisOptions``).

        ``layout="legacy"`` returns a read-only store over runs written by behest's
        Redis store. The clients are made when the store opens.
        """
        target = resolve(url, options)
        if target.options.layout == "legacy":
            from ._legacy import LegacyRedisEventStore

            return LegacyRedisEventStore(target)
        return cls(target)

    def backdoor(self) -> Backdoor:
        """Raw stream access for the conformance suite."""
        return NativeBackdoor(self)

    async def _do_open(self) -> None:
        await super()._do_open()
        self._closing = asyncio.get_running_loop().create_future()
        commands = self._clients.commands
        try:
            await self._check_eviction_policy()
            await _APPEND.load(commands)
            await _DELETE.load(commands)
            await _IMPORT.load(commands)
            await _STATE.load(commands)
        except BaseException:
            # The clients are connected: a failed open (e.g. an ACL user without
            # SCRIPT rights) must not leave them behind, as close() will not run.
            await self._do_close()
            raise
        if isinstance(commands, Redis):
            # A cluster client pipelines per node with its own rules; there appends
            # go one call each.
            self._batcher = ScriptBatcher(commands, _APPEND)
            blocking = self._clients.blocking
            assert isinstance(blocking, Redis)
            # Only the entries' ids are used: leave the replies unparsed. The shared
            # read names every followed stream: pack it in one join (see _connection).
            blocking.set_response_callback("XREAD", _unparsed)
            pool = blocking.connection_pool
            pool.connection_class = lean_connection_class(pool.connection_class)
            # XREAD cannot span cluster slots: only a single server shares one reader.
            self._reader = SharedReader(
                blocking=blocking,
                commands=commands,
                prefix=self.keys.prefix,
                block_ms=self.options.block_ms,
                notify=self._notifier.notify,
            )

    async def _check_eviction_policy(self) -> None:
        """Refuse a server whose ``maxmemory-policy`` may evict the store's keys.

        Read from ``INFO memory`` (managed services that refuse ``CONFIG GET`` allow
        it), on every primary of a cluster. Eviction removes single keys of a run:
        acknowledged events are lost and the run is damaged. ``noeviction`` and the
        ``volatile-*`` policies (which evict only keys with a TTL; the store sets
        one only on delete receipts, see DELETE_SCRIPT) are safe. Runs once, at open.
        """
        commands = self._clients.commands
        policies: dict[str, str | None] = {}
        try:
            if isinstance(commands, RedisCluster):
                for node in commands.get_primaries():
                    info = await commands.info("memory", target_nodes=node)
                    policies[node.name] = _policy_of(info)
            else:
                policies[""] = _policy_of(await commands.info("memory"))
        except ResponseError as exc:  # INFO refused: an ACL without +info, a proxy
            logger.warning(
                "eventstore redis: %s: could not check the server's maxmemory-policy "
                "(INFO memory failed: %s); if it evicts keys (allkeys-lru, ...), "
                "acknowledged events can be lost: make sure it is noeviction",
                self.describe(),
                exc,
            )
            return
        unknown = [node for node, policy in policies.items() if policy is None]
        if unknown:
            logger.warning(
                "eventstore redis: %s: could not check the server's maxmemory-policy "
                "(INFO memory has no maxmemory_policy%s); if it evicts keys "
                "(allkeys-lru, ...), acknowledged events can be lost: make sure it is "
                "noeviction",
                self.describe(),
                f" on {', '.join(unknown)}" if unknown != [""] else "",
            )
        evicting = {
            node: policy
            for node, policy in policies.items()
            if policy is not None and not policy.startswith(_SAFE_POLICIES)
        }
        if not evicting:
            return
        where = ", ".join(
            f"{policy!r}" + (f" on {node}" if node else "") for node, policy in evicting.items()
        )
        if self.options.allow_eviction:
            logger.warning(
                "eventstore redis: %s: opened although the server's maxmemory-policy is "
                "%s (allow_eviction=true): keys evicted when memory is full lose "
                "acknowledged events, and reads and appends of a damaged run raise "
                "CorruptEventError",
                self.describe(),
                where,
            )
            return
        raise ConfigurationError(
            f"redis store {self.describe()}: the server's maxmemory-policy is {where}, "
            "which evicts keys when memory is full and would lose acknowledged events; "
            "set maxmemory-policy noeviction on the server (CONFIG SET maxmemory-policy "
            "noeviction, or the managed service's parameter group / configuration), "
            "or pass allow_eviction=true to accept the risk"
        )

    async def _do_close(self) -> None:
        if self._closing is not None and not self._closing.done():
            self._closing.set_result(None)
        # Subscribers waiting on the shared reader wake now and find the store closed.
        self._notifier.notify_all()
        batcher, self._batcher = self._batcher, None
        reader, self._reader = self._reader, None
        try:
            if reader is not None:
                await reader.aclose(grace=self.options.socket_timeout)
            if batcher is not None:
                # Appends in flight get one socket timeout to finish.
                await batcher.aclose(grace=self.options.socket_timeout)
        finally:
            await super()._do_close()  # closes the clients even if close() is cancelled

    def _run_keys(self, run_id: RunId) -> list[str]:
        keys = self._recent_keys.get(run_id)
        if keys is None:
            keys = [self.keys.log(run_id), self.keys.ids(run_id), self.keys.meta(run_id)]
            if not self._clients.cluster:
                keys.append(self.keys.runs)
            if len(self._recent_keys) >= _RECENT:
                self._recent_keys.clear()
            self._recent_keys[run_id] = keys
        return keys

    @property
    def _index_prefix(self) -> str:
        # In a cluster the index keys live in other slots than the run's keys, which a
        # script may not touch; the client maintains them after the script instead.
        return "" if self._clients.cluster else self.keys.session_prefix

    # -- writing -----------------------------------------------------------------

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        run = str(run_id)
        args: list[str | int] = [
            "" if expected_seq is None else expected_seq,
            run,
            self._cap,
            self._index_prefix,
        ]
        for pending in events:
            event = pending.event
            args.append(str(pending.event_id))
            args.append(str(event.session_id) if type(event) is RunStarted else "")
            args.append(pending.event_json)
        keys = self._run_keys(run_id)
        batcher = self._batcher
        if batcher is not None:
            reply = await batcher(keys, args)
        else:
            reply = await _APPEND(self._clients.commands, keys, args)
        status = reply[0]
        if status == APPEND_OK:
            return await self._committed(run_id, events, reply)
        if status == APPEND_ALL_STORED:
            stored = self._stored(run_id, reply[1::2], reply[2::2])
            if self._clients.cluster:
                # The retried append may follow one whose index update (other slots,
                # after the script) never ran; the index writes are idempotent.
                await self._repair_index(run_id, stored[-1].session_id)
            return stored
        if status == APPEND_PARTIAL:
            raise IdempotencyConflictError.partial_batch(
                run_id=run_id, stored=int(reply[1]), total=len(events)
            )
        if status == APPEND_CONFLICT:
            raise ConcurrencyError(
                run_id=run_id, expected_seq=expected_seq or 0, actual_seq=int(reply[1])
            )
        if status == APPEND_DAMAGED:
            raise self._damage(run_id, reply[1:], writing=True) or _unexplained(run_id)
        # APPEND_TRIMMED: the id is known but its entry is gone. Retention removes old
        # entries only, never all of them: without it, or with an empty stream, the
        # stream lost entries it should have.
        seq, first = int(reply[1]), reply[2]
        if self.options.max_events_per_run is None or first == b"0-0":
            await self._check_keys(run_id)
            raise CorruptEventError(
                run_id=run_id,
                position=f"seq {seq}",
                reason=f"the event id is recorded at seq {seq} but the stream has no "
                f"entry {seq}-0 ({_DAMAGE_CAUSE})",
            )
        raise HistoryUnavailableError(
            run_id=run_id, requested_after=seq - 1, first_available=seq_of(first)
        )

    def _damage(
        self, run_id: RunId, state: Sequence[Any], *, writing: bool
    ) -> CorruptEventError | None:
        """What is wrong with a run's keys; ``None`` when nothing is.

        ``state`` is ``{meta last or '', stream exists, id index exists, stream
        length}``: the scripts' "damaged" reply, or the state script's. A run has
        all three keys or none. With ``writing``, all three present means the first
        XADD failed: the meta's last seq is behind the stream.
        """
        raw_last, has_log, has_ids, length = state
        keys = self.keys
        log, ids, meta = keys.log(run_id), keys.ids(run_id), keys.meta(run_id)
        if not raw_last:
            present = []
            if has_log:
                present.append(f"its stream ({int(length)} entries)")
            if has_ids:
                present.append("its id index")
            if not present:
                return None  # no run at all
            return CorruptEventError(
                run_id=run_id,
                position=f"key {meta!r}",
                reason=f"the run's metadata is missing while {' and '.join(present)} "
                f"still exist{'s' if len(present) == 1 else ''} ({_DAMAGE_CAUSE})",
            )
        last = int(raw_last)
        missing = []
        if not has_log:
            missing.append((log, "its stream", "its events are lost"))
        if not has_ids:
            missing.append((ids, "its id index", "a retried append could be stored twice"))
        if missing:
            return CorruptEventError(
                run_id=run_id,
                position=f"key {missing[0][0]!r}",
                reason=" and ".join(what for _, what, _ in missing)
                + f" {'is' if len(missing) == 1 else 'are'} missing while the run's "
                f"metadata says its last seq is {last}: "
                + "; ".join(effect for _, _, effect in missing)
                + f" ({_DAMAGE_CAUSE})",
            )
        if writing:
            return CorruptEventError(
                run_id=run_id,
                position=f"key {meta!r}",
                reason=f"the run's metadata says its last seq is {last} but its stream "
                f"already holds a later entry ({int(length)} entries in all); "
                f"the metadata was lost and written again ({_DAMAGE_CAUSE})",
            )
        return None

    async def _state(self, run_id: RunId) -> list[Any]:
        """``{meta last or '', stream exists, id index exists, stream length}``, atomically."""
        result: list[Any] = await _STATE(self._clients.commands, self._run_keys(run_id)[:3], [])
        return result

    async def _check_keys(self, run_id: RunId) -> list[Any]:
        """The run's state; raises ``CorruptEventError`` if its keys are damaged."""
        state = await self._state(run_id)
        damage = self._damage(run_id, state, writing=False)
        if damage is not None:
            raise damage
        return state

    async def _committed(
        self, run_id: RunId, events: Sequence[PendingEvent], reply: list[Any]
    ) -> list[EventEnvelope]:
        # The script stored the envelopes; the same fields make the returned ones.
        last = int(reply[1])
        before = SessionId.parse(reply[4].decode()) if reply[4] else None
        stamped = stamp(
            run_id,
            events,
            last_seq=last,
            session_id=before,
            # The instant of the stamp the script wrote (from the server's TIME).
            emitted_at=Instant.from_timestamp(
                int(reply[2]) * 1_000_000 + int(reply[3]), unit="microsecond"
            ),
        )
        after = stamped.session_after
        if self._clients.cluster and (last == 0 or after != before):
            await self._index_in_cluster(run_id, last == 0, before, after)
        return stamped.envelopes()

    @staticmethod
    def _stored(run_id: RunId, seqs: list[int], data: list[bytes]) -> list[EventEnvelope]:
        # A retried append: decode what the script found, strictly (a retry must
        # return every envelope or fail, never skip one).
        strict = EntryDecoder(skip_corrupt=False, retention=False)
        out: list[EventEnvelope] = []
        for seq, envelope in zip(seqs, data, strict=True):
            out.extend(strict.decode(run_id, seq - 1, [(f"{seq}-0".encode(), [b"e", envelope])])[0])
        return out

    async def _import(self, batch: ImportBatch) -> None:
        run_id, envelopes, expected_seq = batch.run_id, batch.envelopes, batch.expected_seq
        after = batch.session_after
        args: list[str | int] = [
            expected_seq,
            str(run_id),
            self._cap,
            self._index_prefix,
            "" if after is None else str(after),
            format_time(envelopes[0].emitted_at),
            format_time(envelopes[-1].emitted_at),
        ]
        for envelope, text in zip(envelopes, batch.texts, strict=True):
            args.append(str(envelope.event_id))
            args.append(text)
        reply = await _IMPORT(self._clients.commands, self._run_keys(run_id), args)
        if reply[0] == IMPORT_CONFLICT:
            raise ConcurrencyError(
                run_id=run_id, expected_seq=expected_seq, actual_seq=int(reply[1])
            )
        if reply[0] == IMPORT_ID_TAKEN:
            raise IdempotencyConflictError.copied_id_taken(run_id=run_id)
        if reply[0] == IMPORT_DAMAGED:
            raise self._damage(run_id, reply[1:], writing=True) or _unexplained(run_id)
        before = SessionId.parse(reply[1].decode()) if reply[1] else None
        if self._clients.cluster and (expected_seq == 0 or after != before):
            await self._index_in_cluster(run_id, expected_seq == 0, before, after)

    async def _repair_index(self, run_id: RunId, session_id: SessionId | None) -> None:
        commands = self._clients.commands
        member = str(run_id)
        await commands.zadd(self.keys.runs, {member: 0})
        if session_id is not None:
            # A stale session entry is harmless: list_runs checks each run's session.
            await commands.zadd(self.keys.session(session_id), {member: 0})

    async def _index_in_cluster(
        self, run_id: RunId, created: bool, before: SessionId | None, after: SessionId | None
    ) -> None:
        # Not atomic with the append (other slots): a crash or lost connection in
        # between leaves a run that list_runs does not show until the caller retries
        # the append (which repairs the index, see _append); its events are safe.
        commands = self._clients.commands
        member = str(run_id)
        if created:
            await commands.zadd(self.keys.runs, {member: 0})
        if after != before:
            if before is not None:
                await commands.zrem(self.keys.session(before), member)
            if after is not None:
                await commands.zadd(self.keys.session(after), {member: 0})

    # -- reading -----------------------------------------------------------------

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        commands = self._clients.commands
        key = self.keys.log(run_id)
        out: list[EventEnvelope] = []
        cursor = after_seq
        while True:
            wanted = limit - len(out)
            # Ids are <seq>-0, so "<after>-1" is an exclusive start that needs no
            # client-side filtering (and works before Redis 6.2's "(" syntax).
            entries = await xrange(commands, key, f"{cursor}-1", wanted)
            if not entries and not out:
                # Nothing to read: a run that does not exist, one read to its end, or
                # one whose stream was evicted (its meta says it has events). One more
                # round trip, only for empty reads, tells them apart.
                await self._check_keys(run_id)
                return out
            page, cursor = self._decoder.decode(run_id, cursor, entries)
            out.extend(page)
            # Fewer envelopes than entries only when skip_corrupt dropped some: read on
            # so that a page is still full whenever enough events exist.
            if len(entries) < wanted or len(out) >= limit:
                return out

    async def _last_seq(self, run_id: RunId) -> int:
        # The meta's `last`, checked against the other keys: a run whose meta was
        # evicted while its stream was not must not read as empty.
        raw_last = (await self._check_keys(run_id))[0]
        return int(raw_last) if raw_last else 0

    async def _wait_for_append(self, run_id: RunId, after_seq: int, idle_rounds: int) -> None:
        closing = self._closing
        if closing is None or closing.done():
            return
        if self.options.skip_corrupt:
            # Entries after `after_seq` may exist and have been skipped as corrupt;
            # waiting from `after_seq` would return at once, every time, for ever. But
            # only skipped ones may be waited past: an entry appended since the
            # caller's last read (while its consumer was busy) must be read now.
            last = await self._last_seq(run_id)
            if last > after_seq:
                if await self._list_after(run_id, after_seq, min(last - after_seq, MAX_LIMIT)):
                    return
                after_seq = last
            if closing.done():
                return
        reader = self._reader
        if reader is None:
            await self._wait_alone(run_id, after_seq, idle_rounds, closing)
            return
        # Listen first: the reader (another process's append) and this store's own
        # appends, imports and deletes (the base class) both notify.
        woken = self._notifier.listen(run_id)
        follow = reader.follow(run_id, self.keys.log(run_id), after_seq)
        try:
            # Another process's delete_run adds no entry for the reader to see: the
            # core's shared poller looks at every waited run's meta in one pipeline
            # every block_ms (_poll_interval) and wakes the runs that went back.
            # No recheck: the reader reads from `after_seq`, so an append made
            # before this registration is reported anyway.
            with self._watch(run_id, after_seq, recheck=False):
                await woken.wait()
        finally:
            reader.unfollow(follow)
        if follow.error is not None:
            raise follow.error

    def _poll_interval(self, idle_rounds: int) -> float | None:
        # Only the shared reader's waits use the poller (a cluster store's blocking
        # reads time out after block_ms by themselves): for deletes, see above.
        return self.options.block_ms / 1000

    async def _last_seqs(self, run_ids: Sequence[RunId]) -> dict[RunId, int]:
        # The meta's `last` of every waited run, one pipeline per chunk. A damaged
        # run (meta evicted) reads as 0: its subscribers wake and their read reports it.
        if self._clients.cluster:
            return await super()._last_seqs(run_ids)
        commands = self._clients.commands
        out: dict[RunId, int] = {}
        for start in range(0, len(run_ids), _LAST_SEQS_CHUNK):
            chunk = run_ids[start : start + _LAST_SEQS_CHUNK]
            before = cancel_requests()
            async with commands.pipeline(transaction=False) as pipe:
                for run_id in chunk:
                    pipe.hget(self.keys.meta(run_id), "last")
                lasts: list[bytes | None] = await pipe.execute()
            deliver_swallowed_cancel(before)
            for run_id, last in zip(chunk, lasts, strict=True):
                out[run_id] = int(last) if last else 0
        return out

    async def _wait_alone(
        self, run_id: RunId, after_seq: int, idle_rounds: int, closing: asyncio.Future[None]
    ) -> None:
        """A blocking ``XREAD`` of this subscriber's stream alone (Redis Cluster)."""
        read = asyncio.ensure_future(
            self._clients.blocking.xread(
                {self.keys.log(run_id): f"{after_seq}-0"}, count=1, block=self.options.block_ms
            )
        )
        try:
            await asyncio.wait((read, closing), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not read.done():
                read.cancel()
        if read.done() and not read.cancelled() and (exc := read.exception()) is not None:
            if not is_unavailable(exc):
                raise exc
            # The wake-up is a hint: the caller re-reads through list_after, whose
            # retries decide whether the server is really gone. Back off meanwhile so
            # a failing blocking connection does not turn into a busy loop.
            await asyncio.sleep(poll_delay(idle_rounds))

    def open_connections(self) -> dict[str, int]:
        """The connections this store holds open now, by client (``eventstore bench`` S7).

        ``blocking`` are those of live subscriptions (one per reader shard on a single
        server, whatever the number of subscribers), ``commands`` the command pool's.
        """
        clients = self._clients_or_none
        if clients is None:
            return {}
        return {
            "commands": _connected(clients.commands),
            "blocking": _connected(clients.blocking),
        }

    # -- runs --------------------------------------------------------------------

    async def _list_runs(
        self, session_id: SessionId | None, limit: int, after: RunId | None
    ) -> list[RunInfo]:
        commands = self._clients.commands
        index = self.keys.runs if session_id is None else self.keys.session(session_id)
        start = "-" if after is None else f"({after}"
        out: list[RunInfo] = []
        while len(out) < limit:
            wanted = limit - len(out)
            members = await zrangebylex(commands, index, start, wanted)
            if not members:
                break
            before = cancel_requests()
            async with commands.pipeline(transaction=False) as pipe:
                for member in members:
                    pipe.hmget(
                        self.keys.meta(RunId.parse(member.decode())),
                        "last",
                        "session",
                        "first_at",
                        "last_at",
                    )
                metas: list[list[bytes | None]] = await pipe.execute()
            deliver_swallowed_cancel(before)
            for member, (last, session, first_at, last_at) in zip(members, metas, strict=True):
                info = _run_info(member, last, session, first_at, last_at)
                # An index entry without events is a run deleted or a cluster index
                # update racing a delete; it is not a run to show.
                if info is not None and (session_id is None or info.session_id == session_id):
                    out.append(info)
            if len(members) < wanted:
                break
            start = f"({members[-1].decode()}"
        return out

    async def _delete_run(self, run_id: RunId) -> int:
        # A receipt key per call (same slot as the run): a re-sent delete whose reply
        # was lost finds it and replies the first run's count (see DELETE_SCRIPT).
        run_keys = self._run_keys(run_id)
        receipt = f"{self.keys.prefix}{{{run_id}}}:deleted:{secrets.token_hex(8)}"
        reply = await _DELETE(
            self._clients.commands,
            [*run_keys[:3], receipt, *run_keys[3:]],
            [str(run_id), self._index_prefix, self._receipt_ms],
        )
        count, session = int(reply[0]), reply[1]
        if self._clients.cluster:
            commands = self._clients.commands
            await commands.zrem(self.keys.runs, str(run_id))
            if session:
                await commands.zrem(f"{self.keys.session_prefix}{session.decode()}", str(run_id))
        return count


def _connected(client: Any) -> int:
    """Connected connections of a standalone client's pool (a cluster's: of every node)."""
    pools = []
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        pools.append(pool)
    else:
        for node in getattr(client, "get_nodes", list)():
            # redis-py's cluster nodes keep their own connection lists.
            pools.append(node)
    count = 0
    for pool in pools:
        held = list(getattr(pool, "_available_connections", ())) + list(
            getattr(pool, "_in_use_connections", ()) or getattr(pool, "_connections", ())
        )
        count += sum(1 for connection in held if getattr(connection, "is_connected", False))
    return count


def _unparsed(response: Any, **_: Any) -> Any:
    return response


def _policy_of(info: Any) -> str | None:
    """``maxmemory_policy`` of an ``INFO memory`` reply (parsed by redis-py), if there."""
    policy = info.get("maxmemory_policy") if isinstance(info, dict) else None
    if isinstance(policy, bytes):
        policy = policy.decode()
    return policy if isinstance(policy, str) and policy else None


def _unexplained(run_id: RunId) -> CorruptEventError:
    # A "damaged" reply whose state shows no damage cannot happen; report it anyway.
    return CorruptEventError(
        run_id=run_id,
        position="run keys",
        reason=f"the script found them damaged ({_DAMAGE_CAUSE})",
    )


def _run_info(
    member: bytes,
    last: bytes | None,
    session: bytes | None,
    first: bytes | None,
    last_at: bytes | None,
) -> RunInfo | None:
    if last is None or int(last) == 0:
        return None
    try:
        return RunInfo(
            run_id=RunId.parse(member.decode()),
            session_id=None if session is None else SessionId.parse(session.decode()),
            last_seq=int(last),
            first_emitted_at=None if first is None else parse_time(first.decode()),
            last_emitted_at=None if last_at is None else parse_time(last_at.decode()),
        )
    except ValueError as exc:
        raise CorruptEventError(
            run_id=RunId.parse(member.decode()), position="run metadata", reason=str(exc)
        ) from exc
