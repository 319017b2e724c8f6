"""A connection pool whose callers wait for a free connection instead of failing.

redis-py's asyncio ``ConnectionPool`` raises "Too many connections" as soon as every
connection is in use, so a burst of more concurrent calls than ``max_connections``
fails part-way. Its ``BlockingConnectionPool`` waits instead, but pays for a
condition variable and a timeout task on every checkout, which cost the store about
5% of its page reads. This pool takes the plain pool's path while a connection is
free and only waits, for up to ``wait_timeout`` seconds, when none is.
"""

from __future__ import annotations

__all__ = ["WaitingConnectionPool"]

import asyncio
import collections
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio.connection import AbstractConnection, ConnectionPool

# redis-py >= 5.1 raises MaxConnectionsError; older ones a ConnectionError that says so.
_EXHAUSTED: type[Exception] = getattr(
    redis_errors, "MaxConnectionsError", redis_errors.ConnectionError
)
# While waiting, look again this often even without a wake-up (a safety net only).
_RECHECK_S = 0.05


def _exhausted(exc: Exception) -> bool:
    return isinstance(exc, _EXHAUSTED) and "Too many connections" in str(exc)


class WaitingConnectionPool(ConnectionPool):
    """``ConnectionPool`` that waits up to ``wait_timeout`` seconds for a connection."""

    def __init__(self, *, wait_timeout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wait_timeout = wait_timeout
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        """A connection; if all are in use, the next one released (or a timeout)."""
        deadline: float | None = None
        while True:
            try:
                # redis-py leaves get_connection untyped.
                connection: AbstractConnection = await super().get_connection(  # type: ignore[no-untyped-call]
                    *args, **kwargs
                )
                return connection
            except redis_errors.ConnectionError as exc:
                if not _exhausted(exc):
                    raise
            loop = asyncio.get_running_loop()
            if deadline is None:
                deadline = loop.time() + self.wait_timeout
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise redis_errors.ConnectionError(
                    f"no connection free within {self.wait_timeout:g} s: all "
                    f"{self.max_connections} of the pool stayed in use"
                )
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait([waiter], timeout=min(remaining, _RECHECK_S))
            finally:
                if not waiter.done():
                    waiter.cancel()

    async def release(self, connection: AbstractConnection) -> None:
        """Return ``connection`` and wake one caller waiting for one."""
        await super().release(connection)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break
