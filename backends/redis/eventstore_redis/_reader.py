r"""One blocking reader per store that follows every live subscription's stream.

A live ``subscribe`` used to wait with its own ``XREAD BLOCK`` on the blocking client:
one connection per idle subscriber, so a few hundred subscribers (SSE streams of
``eventstore serve``) exhausted the pool and delayed everyone. Here a subscriber
*registers* its run's stream and the last seq it has seen (:meth:`SharedReader.follow`)
and waits on the store's in-process notifier; a reader task per shard loops::

    XREAD COUNT 64 BLOCK <block_ms> STREAMS <control> <log1> <log2> ... <cid> <id1> <id2> ...

over every followed stream and, for a stream with entries past what one of its
subscribers has seen, calls ``notify(run_id)``. Subscribers then re-read through
``list_after`` as before: a wake-up is only a hint.

* **Connections**: one per shard, a shard follows up to :data:`SHARD_KEYS` streams,
  so 1,000 subscribers use one blocking connection and 10,000 use five.
* **Changes while blocked**: when a stream must be added to the read in flight (a new
  subscription, or a subscriber behind the reader's cursor), the shard ``XADD``\ s to
  its own *control stream* (``<prefix>reader:<random>``, trimmed to one entry, deleted
  at close) on the command client, which ends the blocked ``XREAD`` at once. If that
  ``XADD`` is refused (an ACL without the key), the shard cancels its read instead
  (redis-py then drops the connection and the next read connects again).
* **Few changes**: a stream stays in the read for :data:`IDLE_GRACE` seconds after its
  last subscriber stopped waiting, so a subscriber that re-reads and waits again
  (every delivery) finds it still followed and costs no interruption.
* **Cursors**: each stream is read from the lowest seq a subscriber registered that
  the reader has not yet reported; a subscriber registering below it lowers it again
  (an entry it has not seen may have been reported while it was re-reading, or the
  run was deleted and written again).
* **Errors**: a connection error ends nothing: every waiting subscriber is woken (its
  re-read decides whether the server is gone) and the shard backs off, up to 1 s, so
  a failing connection is no busy loop. A command error (a key that is not a stream,
  a refused key) is traced to the streams that cause it by probing each without
  blocking; their subscribers receive the error, the others go on.

Redis Cluster does not allow one ``XREAD`` over keys in different slots: the cluster
store keeps a blocking read per subscriber (see ``RedisEventStore._wait_for_append``).
"""

from __future__ import annotations

__all__ = ["IDLE_GRACE", "SHARD_KEYS", "Follow", "SharedReader"]

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any, Final

from redis.exceptions import RedisError

from eventstore import RunId

from ._client import Client, is_unavailable
from ._codec import seq_of

logger = logging.getLogger("eventstore.redis")

#: Streams one shard (one connection) follows at most.
SHARD_KEYS: Final = 2000
#: Seconds a stream stays in the read after its last subscriber stopped waiting.
IDLE_GRACE: Final = 2.0
#: Entries per stream per ``XREAD`` reply (only their ids are used).
_COUNT: Final = 64
#: Longest back-off between failed reads, seconds.
_MAX_BACKOFF: Final = 1.0


class Follow:
    """One subscriber's registration: its run, stream key and last seq seen.

    ``error`` is set when the reader found that this stream cannot be read (the
    subscriber raises it).
    """

    __slots__ = ("error", "key", "run_id", "seq")

    def __init__(self, run_id: RunId, key: str, seq: int) -> None:
        self.run_id = run_id
        self.key = key
        self.seq = seq
        self.error: BaseException | None = None


class _Stream:
    __slots__ = ("cursor", "follows", "idle_since", "run_id")

    def __init__(self, run_id: RunId, cursor: int) -> None:
        self.run_id = run_id
        self.cursor = cursor  # the seq the next XREAD reads after
        self.follows: set[Follow] = set()
        self.idle_since = 0.0


class _Shard:
    """One reader task, one blocking connection (when reading), up to SHARD_KEYS streams."""

    def __init__(self, owner: SharedReader) -> None:
        self._owner = owner
        self.control = f"{owner.prefix}reader:{secrets.token_hex(8)}"
        self._control_id = "0-0"
        self.streams: dict[str, _Stream] = {}
        self._changed = asyncio.Event()
        self._reading = False  # an XREAD with the current snapshot is in flight
        self._wake_sent = False
        self._read: asyncio.Future[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self.used_control = False
        self._warned = False

    # -- registrations (called from subscribers, same event loop) -----------------

    def add(self, follow: Follow) -> None:
        stream = self.streams.get(follow.key)
        if stream is None:
            stream = self.streams[follow.key] = _Stream(follow.run_id, follow.seq)
            self._interrupt()
        elif follow.seq < stream.cursor:
            stream.cursor = follow.seq
            self._interrupt()
        stream.follows.add(follow)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def remove(self, follow: Follow) -> None:
        stream = self.streams.get(follow.key)
        if stream is not None and follow in stream.follows:
            stream.follows.discard(follow)
            if not stream.follows:
                stream.idle_since = asyncio.get_running_loop().time()

    def _interrupt(self) -> None:
        self._changed.set()
        if not self._reading or self._wake_sent:
            return  # the next read is built from the current registrations anyway
        self._wake_sent = True
        if self._owner.control_refused:
            if self._read is not None:
                self._read.cancel()
            return
        self.used_control = True
        self._owner.spawn(self._wake())

    async def _wake(self) -> None:
        try:
            await self._owner.commands.execute_command(
                "XADD", self.control, "MAXLEN", "1", "*", "w", "1"
            )
        except RedisError as exc:
            if is_unavailable(exc):
                return  # the blocked read fails too, and the loop backs off
            if not self._owner.control_refused:
                logger.warning(
                    "eventstore redis: XADD to the subscribers' control stream %r was "
                    "refused (%s); new subscriptions interrupt the shared blocking read "
                    "by reconnecting instead",
                    self.control,
                    exc,
                )
            self._owner.control_refused = True
            if self._read is not None:
                self._read.cancel()

    # -- the reader task ----------------------------------------------------------

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        owner = self._owner
        failures = 0
        while True:
            self._wake_sent = False
            self._changed.clear()
            now = loop.time()
            for key in [
                k
                for k, s in self.streams.items()
                if not s.follows and now - s.idle_since >= IDLE_GRACE
            ]:
                del self.streams[key]
            if not self.streams:
                await self._changed.wait()
                continue
            keys = list(self.streams)
            ids = [f"{self.streams[key].cursor}-0" for key in keys]
            args: list[str | int] = [
                "XREAD", "COUNT", _COUNT, "BLOCK", owner.block_ms, "STREAMS",
                self.control, *keys, self._control_id, *ids,
            ]  # fmt: skip
            self._reading = True
            self._read = read = asyncio.ensure_future(owner.blocking.execute_command(*args))
            try:
                reply = await read
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise  # the reader itself is cancelled (close)
                continue  # read cancelled to add a stream (control stream refused)
            except Exception as exc:
                failures += 1
                await self._failed(exc, keys, ids, failures)
                continue
            finally:
                self._reading = False
                self._read = None
            failures = 0
            if reply:
                try:
                    self._deliver(reply)
                except Exception:  # a reply of unexpected shape: wake all, go on
                    logger.exception("eventstore redis: unexpected XREAD reply")
                    self._notify_waiting()

    def _deliver(self, reply: Any) -> None:
        notify = self._owner.notify
        items = reply.items() if isinstance(reply, dict) else reply
        for raw_key, entries in items:
            if not entries:
                continue
            key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
            last_id = entries[-1][0]
            if key == self.control:
                self._control_id = last_id.decode() if isinstance(last_id, bytes) else last_id
                continue
            stream = self.streams.get(key)
            if stream is None:
                continue
            try:
                last = seq_of(last_id)
            except ValueError:
                last = stream.cursor + 1  # not a native id: wake, the re-read decides
            else:
                stream.cursor = max(stream.cursor, last)
            # Subscribers that have seen up to `last` already (they re-read after an
            # in-process wake-up before this reply came) need no second wake-up.
            if any(follow.seq < last for follow in stream.follows):
                notify(stream.run_id)

    async def _failed(self, exc: Exception, keys: list[str], ids: list[str], failures: int) -> None:
        if not is_unavailable(exc):
            culprits = await self._probe(keys, ids)
            if culprits:
                for key, error in culprits.items():
                    stream = self.streams.pop(key, None)
                    if stream is None:
                        continue
                    for follow in stream.follows:
                        follow.error = error
                    self._owner.notify(stream.run_id)
                return
            if not self._warned:
                self._warned = True
                logger.warning("eventstore redis: the subscribers' shared XREAD failed: %s", exc)
        # The wake-up is a hint: every waiting subscriber re-reads through list_after,
        # whose retries decide whether the server is really gone. Back off meanwhile
        # so that a failing blocking connection does not turn into a busy loop.
        self._notify_waiting()
        await asyncio.sleep(min(0.01 * 2.0 ** min(failures, 7), _MAX_BACKOFF))

    def _notify_waiting(self) -> None:
        for stream in self.streams.values():
            if stream.follows:
                self._owner.notify(stream.run_id)

    async def _probe(self, keys: list[str], ids: list[str]) -> dict[str, BaseException]:
        """The streams whose own non-blocking ``XREAD`` fails with a command error."""
        try:
            async with self._owner.blocking.pipeline(transaction=False) as pipe:
                for key, after in zip(keys, ids, strict=True):
                    pipe.execute_command("XREAD", "COUNT", 1, "STREAMS", key, after)
                results = await pipe.execute(raise_on_error=False)
        except Exception:
            return {}
        return {
            key: result
            for key, result in zip(keys, results, strict=True)
            if isinstance(result, Exception) and not is_unavailable(result)
        }


class SharedReader:
    """The store's live-subscription reader: shards of streams, one connection each."""

    def __init__(
        self,
        *,
        blocking: Client,
        commands: Client,
        prefix: str,
        block_ms: int,
        notify: Callable[[RunId], None],
    ) -> None:
        self.blocking = blocking
        self.commands = commands
        self.prefix = prefix
        self.block_ms = block_ms
        self.notify = notify
        self.control_refused = False
        self._shards: list[_Shard] = []
        self._where: dict[str, _Shard] = {}
        self._tasks: set[asyncio.Future[Any]] = set()

    @property
    def streams(self) -> int:
        """How many streams the reader follows now (idle ones in their grace included)."""
        return sum(len(shard.streams) for shard in self._shards)

    @property
    def shards(self) -> int:
        """How many reader tasks (each with at most one blocking connection) exist."""
        return len(self._shards)

    def follow(self, run_id: RunId, key: str, seq: int) -> Follow:
        """Register a subscriber that has seen ``key`` up to ``seq``; pair with :meth:`unfollow`.

        Call after ``notifier.listen(run_id)``: the reader notifies as soon as the
        stream holds an entry past ``seq``, possibly at once.
        """
        follow = Follow(run_id, key, seq)
        shard = self._where.get(key)
        if shard is None or key not in shard.streams:
            shard = self._shard_for_new_key()
            self._where[key] = shard
        shard.add(follow)
        return follow

    def unfollow(self, follow: Follow) -> None:
        """The subscriber stopped waiting (woken, timed out, cancelled)."""
        shard = self._where.get(follow.key)
        if shard is not None:
            shard.remove(follow)

    def _shard_for_new_key(self) -> _Shard:
        if len(self._where) > 2 * SHARD_KEYS * max(1, len(self._shards)):
            # Forget where keys no longer followed lived.
            self._where = {key: shard for key, shard in self._where.items() if key in shard.streams}
        for shard in self._shards:
            if len(shard.streams) < SHARD_KEYS:
                return shard
        shard = _Shard(self)
        self._shards.append(shard)
        return shard

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self, grace: float) -> None:
        """Stop every reader task, then delete the control streams (within ``grace`` s)."""
        shards, self._shards = self._shards, []
        self._where = {}
        for shard in shards:
            await shard.close()
        for task in list(self._tasks):
            task.cancel()
        controls = [shard.control for shard in shards if shard.used_control]
        if controls:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(grace):
                    await self.commands.execute_command("DEL", *controls)
