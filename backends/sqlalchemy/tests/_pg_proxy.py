"""TCP proxies in front of PostgreSQL, for fault tests on loopback.

:class:`LostAckProxy` can lose a COMMIT or its acknowledgement. Armed, it cuts both sides at the next ``COMMIT`` a client sends. By default it
forwards the COMMIT first and withholds the reply: the transaction is committed on
the server and the client sees its connection die, the lost acknowledgement a retry
has to get right. With ``drop_commit`` the COMMIT never arrives and the transaction
rolls back, which the client cannot tell apart from the first case.
:class:`BlackHoleProxy` can stop forwarding without closing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Self

# asyncpg ends a transaction with a simple query: 'Q', length, "COMMIT;", NUL.
_COMMIT = b"COMMIT;\x00"


class _LoopbackProxy:
    """Listens on 127.0.0.1, an ephemeral port, and serves each client with ``_serve``."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class LostAckProxy(_LoopbackProxy):
    """Forwards to ``host:port``, losing the COMMITs it is armed for."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.armed = 0  # how many of the next COMMITs lose their acknowledgement
        self.drop_commit = False  # lose the COMMIT itself instead
        self.cuts = 0  # how many did
        self.after_cut: asyncio.Event = asyncio.Event()  # set after each cut

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*self._target)
        held = asyncio.Event()

        def cut() -> None:
            client_w.transport.abort()
            server_w.transport.abort()

        async def upstream() -> None:
            with contextlib.suppress(OSError):
                while data := await client_r.read(65536):
                    losing = bool(self.armed) and _COMMIT in data
                    if losing:
                        self.armed -= 1
                        self.cuts += 1
                        held.set()  # before sending: the reply must not slip through
                    if losing and self.drop_commit:
                        break
                    server_w.write(data)
                    await server_w.drain()
                    if losing:
                        await asyncio.sleep(0.2)  # let the server commit
                        break
            cut()
            if held.is_set():
                self.after_cut.set()

        async def downstream() -> None:
            with contextlib.suppress(OSError):
                while data := await server_r.read(65536):
                    if held.is_set():
                        break
                    client_w.write(data)
                    await client_w.drain()
            if not held.is_set():
                cut()

        await asyncio.gather(upstream(), downstream())


class BlackHoleProxy(_LoopbackProxy):
    """A loopback TCP proxy that, once :attr:`swallowing`, forwards nothing more.

    Its sockets stay open and keep accepting bytes: to the client the connection
    looks alive and silent, like a network path that drops every packet.
    """

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.swallowing = False

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*self._target)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await reader.read(65536):
                    if not self.swallowing:
                        writer.write(data)
                        await writer.drain()
            if not self.swallowing:
                writer.close()

        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))
        for writer in (client_w, server_w):
            writer.transport.abort()
