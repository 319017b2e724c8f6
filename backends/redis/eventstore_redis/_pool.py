"""A connection pool whose callers wait for a free connection instead of failing.

redis-py's asyncio ``ConnectionPool`` raises "Too many connections" as soon as every
connection is in use, so a burst of more concurrent calls than ``max_connections``
fails part-way. Its ``BlockingConnectionPool`` waits instead, but pays for a
condition variable and a timeout task on every checkout, which cost the store about
5% of its page reads. This pool takes the plain pool's path while a connection is
free and nobody is waiting; otherwise callers queue, first come first served: each
released connection wakes the oldest waiter, and newcomers queue behind it.
"""

from __future__ import annotations

__all__ = ["WaitingConnectionPool"]

import asyncio
import collections
import contextlib
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio.connection import AbstractConnection, ConnectionPool


def _exhausted(exc: Exception) -> bool:
    # redis-py 8 raises MaxConnectionsError, 5.x a plain ConnectionError; both say so.
    return isinstance(exc, redis_errors.ConnectionError) and "Too many connections" in str(exc)


class WaitingConnectionPool(ConnectionPool):
    """``ConnectionPool`` that waits up to ``wait_timeout`` seconds for a connection."""

    def __init__(self, *, wait_timeout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wait_timeout = wait_timeout
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._woken = 0  # waiters woken that have not taken their turn yet
        self._refusing = False
        # Checkouts in progress and connections handed out, for drain().
        self._taking = 0
        self._out: set[int] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def refuse_waiters(self) -> None:
        """From now on fail every checkout, waiting callers included (the store closes).

        Otherwise a caller still waiting when the store closes would open a new
        connection on the closed pool, which nobody would close.
        """
        self._refusing = True
        while self._waiters:
            self._wake_one()

    async def drain(self, seconds: float) -> None:
        """Wait up to ``seconds`` for the connections in use to come back.

        Closing disconnects even connections in use, and a call in flight would then
        reconnect (redis-py connects lazily, and retries), opening a connection after
        the close.
        """
        if not self._idle.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._idle.wait()

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        """A connection; if all are in use, the next one released (or a timeout)."""
        self._check_refusing()
        if not self._waiters and not self._woken:
            try:
                return await self._take(args, kwargs)
            except redis_errors.ConnectionError as exc:
                if not _exhausted(exc):
                    raise
        return await self._wait_for_turn(args, kwargs)

    async def release(self, connection: AbstractConnection) -> None:
        """Return ``connection`` and wake the oldest caller waiting for one."""
        await super().release(connection)
        self._out.discard(id(connection))
        self._note_idle()
        self._wake_one()

    async def _take(self, args: Any, kwargs: Any) -> AbstractConnection:
        # redis-py leaves get_connection untyped.
        self._taking += 1
        self._idle.clear()
        try:
            connection: AbstractConnection = await super().get_connection(  # type: ignore[no-untyped-call]
                *args, **kwargs
            )
            self._out.add(id(connection))
        finally:
            self._taking -= 1
            self._note_idle()
        return connection

    def _note_idle(self) -> None:
        if not self._taking and not self._out:
            self._idle.set()

    async def _wait_for_turn(self, args: Any, kwargs: Any) -> AbstractConnection:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise redis_errors.ConnectionError(
                    f"no connection free within {self.wait_timeout:g} s: all "
                    f"{self.max_connections} of the pool stayed in use"
                )
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            woken = False
            try:
                await asyncio.wait([waiter], timeout=remaining)
                woken = waiter.done()
            finally:
                if woken:
                    self._woken -= 1
                elif waiter.done() and not waiter.cancelled():
                    # Woken, then cancelled before its turn: the turn passes on.
                    self._woken -= 1
                    self._wake_one()
                else:
                    waiter.cancel()  # release() skips it
            if not woken:
                continue  # timed out: the deadline check above raises
            self._check_refusing()
            try:
                return await self._take(args, kwargs)
            except redis_errors.ConnectionError as exc:
                if not _exhausted(exc):
                    raise

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._woken += 1
                waiter.set_result(None)
                return

    def _check_refusing(self) -> None:
        if self._refusing:
            raise redis_errors.ConnectionError("the store is closing: no new connection")
