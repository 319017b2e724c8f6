"""What the native and the legacy Redis stores share: connections and error mapping."""

from __future__ import annotations

__all__ = ["RedisStoreBase"]

from typing import ClassVar

from redis.asyncio import RedisCluster

from eventstore import BackendError, BackendUnavailableError, EventStoreError
from eventstore.backend import EventStore, redact_text
from eventstore.errors import StoreClosedError

from ._client import Clients, connect, is_unavailable
from ._codec import CorruptEntries
from ._options import RedisTarget
from ._pool import WaitingConnectionPool
from .plugin import BACKEND


class RedisStoreBase(EventStore):
    """Holds the target (URL and options) and the two redis-py clients of a Redis store."""

    backend_name: ClassVar[str] = BACKEND
    bound_to_event_loop: ClassVar[bool] = True  # redis-py connections belong to one loop
    #: What reads do with undecodable entries (set by each layout's store).
    _corrupt: CorruptEntries

    def __init__(self, target: RedisTarget) -> None:
        super().__init__(max_event_bytes=target.options.max_event_bytes)
        self._target = target
        self.options = target.options
        self._clients_or_none: Clients | None = None

    @property
    def _clients(self) -> Clients:
        clients = self._clients_or_none
        if clients is None:
            raise StoreClosedError(f"store {self.describe()} is not open")
        return clients

    @property
    def skipped_corrupt(self) -> int:
        """How many undecodable entries were skipped (only with ``skip_corrupt``)."""
        return self._corrupt.skipped

    def describe(self) -> str:
        """The redacted URL and the key prefix this store reads and writes."""
        return f"{self._target.url.redacted} prefix={self._prefix!r}"

    @property
    def _prefix(self) -> str:
        return self.options.prefix

    async def _do_open(self) -> None:
        clients = connect(self._target)
        self._clients_or_none = clients
        try:
            if isinstance(clients.commands, RedisCluster):
                await clients.commands.initialize()
            await clients.commands.ping()
        except BaseException:
            await self._release()
            raise

    async def _do_close(self) -> None:
        await self._release_surely(self._release())

    async def _release(self) -> None:
        clients, self._clients_or_none = self._clients_or_none, None
        if clients is not None:
            pools = [
                getattr(c, "connection_pool", None) for c in (clients.commands, clients.blocking)
            ]
            for pool in pools:
                if isinstance(pool, WaitingConnectionPool):
                    pool.refuse_waiters()
            # Reads in flight finish first: disconnected under them, they would
            # reconnect (retry policy) after the close. Blocking reads do not retry.
            if isinstance(pools[0], WaitingConnectionPool):
                await pools[0].drain(self.options.socket_timeout)
            try:
                await clients.blocking.aclose()
            finally:
                await clients.commands.aclose()

    def _translate_error(self, exc: Exception, operation: str) -> EventStoreError:
        # redis-py puts host and port in its messages, never the password, but the
        # text still goes through redact_text in case a URL ends up in one. The store's
        # error boundary puts the backend's name in front ("redis: ...").
        detail = f"{type(exc).__name__}: {redact_text(str(exc))}"
        if is_unavailable(exc):
            return BackendUnavailableError(
                f"{operation} failed ({self.describe()}), server unavailable: {detail}"
            )
        return BackendError(f"{operation} failed ({self.describe()}): {detail}")
