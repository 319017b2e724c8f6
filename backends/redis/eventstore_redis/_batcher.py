r"""Coalescing concurrent script calls into pipelines (automatic pipelining).

With many tasks appending at once, the client's per-command cost (an await, a pool
checkout, a socket write and read per call) limits throughput long before Redis
does. Calls that arrive while others are in flight queue up and go out together as
pipelines of ``EVALSHA`` commands: one write, one read of all replies. Each call is
still its own script run, so atomicity and results are per call.

Two things keep both processors busy, the client's (encoding events, building
envelopes) and the server's (running the scripts): a pipeline goes out as soon as
``_FLUSH_AT`` calls wait, without waiting for the rest, and up to ``_DEPTH``
pipelines are in flight at once, each on a connection the batcher keeps. So the
server runs one pipeline while the client prepares the next.

A lone call, with nothing else in flight, takes a short path of its own
(:meth:`ScriptBatcher._direct`), so sequential appends pay nothing for batching.

Re-sending a pipeline after a connection error is safe for the same reason a
retried append is: every append carries its event ids. Calls from one task are
sequential (each awaits its reply), so pipelines in flight together never reorder
one caller's appends.
"""

from __future__ import annotations

__all__ = ["ScriptBatcher"]

import asyncio
import functools
import math
from typing import Any, Final

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from eventstore.errors import StoreClosedError

from ._client import cancel_requests, deliver_swallowed_cancel
from ._scripts import Script

_Call = tuple[list[str], list[str | int], "asyncio.Future[Any]"]

#: Calls that make a pipeline go out at once, without waiting for more.
_FLUSH_AT: Final = 16
#: Most calls in one pipeline; more waiting calls go out in the next one.
_MAX_PIPELINE: Final = 256
#: Pipelines in flight at once, each on a connection of its own.
_DEPTH: Final = 4
#: Connections are kept between calls only in a pool at least this large, so that
#: the kept ones (one for lone calls, ``_DEPTH`` for pipelines) never starve reads
#: and other commands of connections.
_KEEP_FROM_POOL_SIZE: Final = 4 * (_DEPTH + 1)


class ScriptBatcher:
    """Runs one script for many concurrent callers, pipelining the calls that overlap."""

    __slots__ = (
        "_abandoned",
        "_active",
        "_client",
        "_closed",
        "_depth",
        "_direct_done",
        "_flush_scheduled",
        "_idle",
        "_keep",
        "_own",
        "_queue",
        "_script",
        "_tasks",
    )

    def __init__(self, client: Redis, script: Script) -> None:
        self._client = client
        self._script = script
        self._queue: list[_Call] = []
        self._active = 0  # pipelines in flight
        self._flush_scheduled = False
        self._closed = False
        # Set when close() stops waiting for calls in flight: their next attempt
        # raises StoreClosedError instead of reconnecting.
        self._abandoned = False
        # Set while no lone call is in flight (at most one is).
        self._direct_done = asyncio.Event()
        self._direct_done.set()
        # With a small pool, take connections for each call and give them back, and
        # send one pipeline at a time, as the pool would have it.
        size = client.connection_pool.max_connections
        self._keep = size >= _KEEP_FROM_POOL_SIZE
        self._depth = _DEPTH if self._keep else 1
        # The connection of lone calls, kept between them: a pool checkout and
        # release cost about 35 µs per call here.
        self._own: AbstractConnection | None = None
        # Pipelines' connections not in use, likewise kept.
        self._idle: list[AbstractConnection] = []
        self._tasks: set[asyncio.Task[list[Any]]] = set()

    async def __call__(self, keys: list[str], args: list[str | int]) -> Any:
        """The script's reply for ``keys`` and ``args``."""
        if self._closed:
            raise StoreClosedError("redis store is closed")
        if self._direct_done.is_set() and not (self._active or self._queue):
            self._direct_done.clear()
            try:
                return await self._direct(keys, args)
            finally:
                self._direct_done.set()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((keys, args, future))
        if len(self._queue) >= _FLUSH_AT:
            self._flush()
        elif not self._flush_scheduled:
            # Once the tasks that are ready have run, whatever they queued goes out.
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._scheduled_flush)
        return await future

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self._flush()

    def _flush(self) -> None:
        """Send queued calls as pipelines while fewer than ``_depth`` are in flight.

        A pipeline that completes calls this again, so nothing waits for long.
        Calls whose caller was cancelled while they waited are dropped.
        """
        while self._queue and self._active < self._depth and not self._closed:
            calls = [call for call in self._queue[:_MAX_PIPELINE] if not call[2].done()]
            del self._queue[:_MAX_PIPELINE]
            if not calls:
                continue
            self._active += 1
            task = asyncio.create_task(self._pipeline(calls))
            self._tasks.add(task)
            # The accounting is a done callback, not a finally: a task cancelled
            # before its first step never runs its body.
            task.add_done_callback(functools.partial(self._sent, calls))

    def _sent(self, calls: list[_Call], task: asyncio.Task[list[Any]]) -> None:
        self._tasks.discard(task)
        self._active -= 1
        if task.cancelled():
            # Only a shutdown cancels these tasks: settle every waiting caller and
            # start nothing new.
            for _, _, future in [*calls, *self._queue]:
                if not future.done():
                    future.cancel()
            self._queue = []
            return
        error = task.exception()
        replies = [error] * len(calls) if error is not None else task.result()
        for (_, _, future), reply in zip(calls, replies, strict=True):
            if future.done():
                continue  # its caller was cancelled; the script ran anyway
            if isinstance(reply, BaseException):
                future.set_exception(reply)
            else:
                future.set_result(reply)
        self._flush()

    async def _direct(self, keys: list[str], args: list[str | int]) -> Any:
        """One ``EVALSHA`` on the batcher's own connection, past redis-py's command layers.

        ``execute_command`` checks a connection out of the pool and back in, and wraps
        the command in observability hooks, reply callbacks and client-level
        bookkeeping: together about 45 µs of a 200 µs append here, of which an
        ``EVALSHA`` reply needs none. What matters is kept: the
        connection's own retry policy (the store's ``retries``: a lost connection or
        a timeout disconnects and sends again, safe since the script either ran
        nothing or stored event ids that the repeated call finds), and ``NOSCRIPT``
        loads the script and calls once more.
        """
        pool = self._client.connection_pool
        before = cancel_requests()
        conn = self._own
        if conn is None:
            conn = await pool.get_connection()  # type: ignore[no-untyped-call]
            if self._keep:
                self._own = conn
        packed = conn.pack_command("EVALSHA", self._script.sha, len(keys), *keys, *args)

        async def attempt() -> Any:
            self._check_abandoned()
            await conn.send_packed_command(packed)
            return await conn.read_response()

        async def failed(error: Exception) -> None:
            await conn.disconnect()

        # A connection whose reply was not read (error, cancellation) is disconnected
        # by redis-py, and connects again on its next use.
        try:
            try:
                reply = await conn.retry.call_with_retry(attempt, failed)
            except NoScriptError:
                # Loaded on this very connection: a small pool may have no other.
                await self._load_on(conn)
                reply = await conn.retry.call_with_retry(attempt, failed)
        finally:
            # close() leaves the kept connection to a call in flight.
            left_to_us = self._closed and self._own is conn
            if left_to_us:
                self._own = None
            if left_to_us or not self._keep:
                await pool.release(conn)
        deliver_swallowed_cancel(before)
        return reply

    def _check_abandoned(self) -> None:
        if self._abandoned:
            raise StoreClosedError("redis store closed while this append was in flight")

    async def _load_on(self, conn: AbstractConnection) -> None:
        """``SCRIPT LOAD`` on ``conn`` (after ``NOSCRIPT``: the server lost its scripts)."""
        self._check_abandoned()
        await conn.send_packed_command(conn.pack_command("SCRIPT", "LOAD", self._script.source))
        await conn.read_response()

    async def aclose(self, grace: float | None) -> None:
        """Stop taking calls, give those in flight up to ``grace`` seconds, release.

        Calls still queued fail with :class:`~eventstore.errors.StoreClosedError` and are
        never sent. Calls in flight get their reply if it comes within ``grace``
        (``None``: no limit); after that their next attempt fails with
        ``StoreClosedError`` instead of retrying, and an append that fails so may or
        may not be stored (a retry with the same event id tells). Waiting never
        cancels those calls, even if this close is cancelled. Call before the client
        closes.
        """
        self._closed = True
        queued, self._queue = self._queue, []
        for _, _, future in queued:
            if not future.done():
                future.set_exception(StoreClosedError("redis store is closed"))
        waiter: asyncio.Task[bool] | None = None
        try:
            waits: set[asyncio.Future[Any]] = set(self._tasks)
            if not self._direct_done.is_set():
                waiter = asyncio.ensure_future(self._direct_done.wait())
                waits.add(waiter)
            if waits:
                await asyncio.wait(waits, timeout=grace)
        finally:
            if waiter is not None:
                waiter.cancel()
            self._abandoned = True
            held, self._idle = self._idle, []
            if self._direct_done.is_set() and self._own is not None:
                held.append(self._own)
                self._own = None
            for conn in held:
                await self._client.connection_pool.release(conn)

    async def _pipeline(self, calls: list[_Call]) -> list[Any]:
        """The calls' ``EVALSHA`` commands in one write; their replies (or errors) in order.

        Like :meth:`_direct`, on a connection the batcher keeps and past redis-py's
        ``Pipeline`` object, with the connection's retry policy: a lost connection
        re-sends the whole pipeline, whose calls find their event ids if they ran.
        """
        pool = self._client.connection_pool
        conn = self._idle.pop() if self._idle else await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            return await self._pipeline_on(conn, calls)
        finally:
            if self._keep and not self._closed:
                self._idle.append(conn)
            else:
                await pool.release(conn)

    async def _pipeline_on(
        self, conn: AbstractConnection, calls: list[_Call], *, reload: bool = True
    ) -> list[Any]:
        sha = self._script.sha
        packed = conn.pack_commands(
            [("EVALSHA", sha, len(keys), *keys, *args) for keys, args, _ in calls]
        )

        async def attempt() -> list[Any]:
            self._check_abandoned()
            await conn.send_packed_command(packed)
            out: list[Any] = []
            # One timeout context for the pipeline rather than one per reply (each
            # costs about 3 µs; math.inf turns off redis-py's), moved on after each
            # reply: every reply still gets socket_timeout, as with redis-py.
            timeout = conn.socket_timeout
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(None) as deadline:
                    for _ in calls:
                        if timeout is not None:
                            deadline.reschedule(loop.time() + timeout)
                        try:
                            out.append(await conn.read_response(timeout=math.inf))
                        except ResponseError as error:  # that call's error; the rest go on
                            out.append(error)
            except TimeoutError:
                # redis-py disconnected the connection as the read was cut off; its
                # own error type is what the retry policy retries.
                raise RedisTimeoutError("Timeout reading a pipeline's replies") from None
            return out

        async def failed(error: Exception) -> None:
            await conn.disconnect()

        replies: list[Any] = await conn.retry.call_with_retry(attempt, failed)
        lost = [index for index, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if lost and reload:
            # The server lost its scripts (restart, SCRIPT FLUSH): nothing of those
            # calls ran. Load the script on this connection and run them again, each
            # with its own reply or error.
            await self._load_on(conn)
            again = await self._pipeline_on(conn, [calls[i] for i in lost], reload=False)
            for index, reply in zip(lost, again, strict=True):
                replies[index] = reply
        return replies
