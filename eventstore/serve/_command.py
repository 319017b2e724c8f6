"""``eventstore serve``: run the app under uvicorn."""

from __future__ import annotations

__all__ = ["serve_command"]

import asyncio
import socket
from collections.abc import Callable, Sequence

import uvicorn

from .._plugins import open_store
from ._app import create_app
from ._hosts import hosts_for_bind

#: Seconds uvicorn waits for responses still running at shutdown before cancelling
#: them. Streams end as soon as shutdown begins, so this only bounds stragglers.
SHUTDOWN_GRACE_SECONDS = 5


class _Server(uvicorn.Server):
    """uvicorn, ending open event streams as soon as shutdown begins.

    A live stream never finishes on its own; without this, uvicorn would wait out
    its grace period and then cancel each stream mid-response.
    """

    def __init__(self, config: uvicorn.Config, close_streams: Callable[[], None]) -> None:
        super().__init__(config)
        self._close_streams = close_streams

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._close_streams()
        await super().shutdown(sockets)


async def _check_reachable(url: str) -> None:
    async with open_store(url):
        pass


def serve_command(
    url: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    allowed_hosts: Sequence[str] | None = None,
) -> None:
    """Serve the store at ``url`` over HTTP until interrupted (blocks).

    Binds to loopback by default: the app has no authentication of its own.
    ``allowed_hosts`` (the ``Host`` names served) defaults to the loopback names
    plus ``host`` itself, or any name when ``host`` is a wildcard address. The
    store is opened once before the server starts, so an unreachable backend or a
    bad option is reported as an :class:`~eventstore.EventStoreError` (one line from
    the CLI) rather than as uvicorn's startup traceback.
    """
    asyncio.run(_check_reachable(url))
    app = create_app(
        url, allowed_hosts=hosts_for_bind(host) if allowed_hosts is None else allowed_hosts
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    _Server(config, app.state.close_streams).run()
