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
import math
from typing import Any, Final

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._client import cancel_requests, deliver_swallowed_cancel
from ._scripts import Script

_Call = tuple[list[str], list[str | int], "asyncio.Future[Any]"]

#: Calls that make a pipeline go out at once, without waiting for more.
_FLUSH_AT: Final = 16
#: Pipelines in flight at once, each on a connection of its own.
_DEPTH: Final = 4


class ScriptBatcher:
    """Runs one script for many concurrent callers, pipelining the calls that overlap."""

    __slots__ = (
        "_active",
        "_client",
        "_closed",
        "_flush_scheduled",
        "_idle",
        "_in_flight",
        "_own",
        "_queue",
        "_script",
        "_tasks",
    )

    def __init__(self, client: Redis, script: Script) -> None:
        self._client = client
        self._script = script
        self._queue: list[_Call] = []
        self._in_flight = False  # a lone call is running
        self._active = 0  # pipelines in flight
        self._flush_scheduled = False
        self._closed = False
        # The connection of lone calls, kept between them: at most one lone call is in
        # flight, and a pool checkout and release cost about 35 µs per call here.
        self._own: AbstractConnection | None = None
        # Pipelines' connections not in use, likewise kept.
        self._idle: list[AbstractConnection] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, keys: list[str], args: list[str | int]) -> Any:
        """The script's reply for ``keys`` and ``args``."""
        if not (self._in_flight or self._active or self._queue):
            self._in_flight = True
            try:
                return await self._direct(keys, args)
            finally:
                self._in_flight = False
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
        """Send the queued calls as a pipeline, unless ``_DEPTH`` are in flight.

        A pipeline that completes calls this again, so nothing waits for long.
        """
        if not self._queue or self._active >= _DEPTH:
            return
        calls, self._queue = self._queue, []
        self._active += 1
        task = asyncio.create_task(self._send(calls))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, calls: list[_Call]) -> None:
        try:
            try:
                replies = await self._pipeline(calls)
            except BaseException as exc:
                for _, _, future in calls:
                    if future.done():
                        continue
                    if isinstance(exc, asyncio.CancelledError):
                        future.cancel()
                    else:
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            for (_, _, future), reply in zip(calls, replies, strict=True):
                if future.done():
                    continue  # its caller was cancelled; the script ran anyway
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        finally:
            self._active -= 1
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
        client = self._client
        before = cancel_requests()
        conn = self._own
        if conn is None:
            conn = self._own = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        packed = conn.pack_command("EVALSHA", self._script.sha, len(keys), *keys, *args)

        async def attempt() -> Any:
            await conn.send_packed_command(packed)
            return await conn.read_response()

        async def failed(error: Exception) -> None:
            await conn.disconnect()

        # A connection whose reply was not read (error, cancellation) is disconnected
        # by redis-py, and connects again on its next use.
        try:
            reply = await conn.retry.call_with_retry(attempt, failed)
        except NoScriptError:
            await self._script.load(client)
            reply = await conn.retry.call_with_retry(attempt, failed)
        deliver_swallowed_cancel(before)
        return reply

    async def aclose(self) -> None:
        """Give the batcher's connections back to the pool (before the client closes)."""
        self._closed = True
        held = [self._own, *self._idle]
        self._own, self._idle = None, []
        for conn in held:
            if conn is not None:
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
            if self._closed:
                await pool.release(conn)
            else:
                self._idle.append(conn)

    async def _pipeline_on(self, conn: AbstractConnection, calls: list[_Call]) -> list[Any]:
        sha = self._script.sha
        packed = conn.pack_commands(
            [("EVALSHA", sha, len(keys), *keys, *args) for keys, args, _ in calls]
        )

        async def attempt() -> list[Any]:
            await conn.send_packed_command(packed)
            out: list[Any] = []
            # One read timeout for the whole pipeline rather than one per reply (each
            # costs a timeout context, about 3 µs); math.inf turns off redis-py's.
            try:
                async with asyncio.timeout(conn.socket_timeout):
                    for _ in calls:
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
        if any(isinstance(reply, NoScriptError) for reply in replies):
            # The server lost its scripts (restart, SCRIPT FLUSH): nothing of those
            # calls ran. Load and run them again.
            await self._script.load(self._client)
            for index, reply in enumerate(replies):
                if isinstance(reply, NoScriptError):
                    keys, args, _ = calls[index]
                    replies[index] = await self._script(self._client, keys, args)
        return replies
