"""A TCP proxy in front of a Redis server that can lose the reply to one command.

Armed with a marker (bytes of the command, e.g. a script's SHA), it forwards the
next command holding the marker to the server, waits for the server's reply, and
cuts both connections instead of forwarding it: the command ran, and the client sees
its connection die, the lost reply a retry has to get right.
"""

from __future__ import annotations

import asyncio
import contextlib


class LostReplyProxy:
    """Listens on 127.0.0.1, an ephemeral port, and forwards to ``host:port``."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self.marker = b""
        self.armed = 0  # how many of the next commands with the marker lose their reply
        self.cuts = 0  # how many did
        self.port = 0

    async def __aenter__(self) -> LostReplyProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*self._target)
        losing = False

        def cut() -> None:
            client_w.transport.abort()
            server_w.transport.abort()

        async def upstream() -> None:
            nonlocal losing
            with contextlib.suppress(OSError):
                while data := await client_r.read(65536):
                    if self.armed and self.marker and self.marker in data:
                        self.armed -= 1
                        losing = True  # before sending: the reply must not slip through
                    server_w.write(data)
                    await server_w.drain()
            cut()

        async def downstream() -> None:
            with contextlib.suppress(OSError):
                while data := await server_r.read(65536):
                    if losing:
                        # The server ran the command and replied: drop the reply.
                        self.cuts += 1
                        break
                    client_w.write(data)
                    await client_w.drain()
            cut()

        await asyncio.gather(upstream(), downstream())
