"""One asyncpg connection: transactions that never wait on it broken, abandoning it.

Also TCP keepalive on its socket.

asyncpg answers a cancelled or timed-out call by sending the server a cancel request
and making every later use of that connection (its ``ROLLBACK``, the pool's release)
wait until the server acknowledges it: forever, if the server is frozen. So a
connection whose call did not end with an answer from the server is *abandoned*
(its socket closed at once; the server rolls back what it had open) instead of being
rolled back or returned to the pool.
"""

from __future__ import annotations

__all__ = ["Transaction", "abandon", "keeps_connection", "set_keepalive"]

import contextlib
import socket
from types import TracebackType
from typing import Any

import asyncpg

from eventstore import EventStoreError

from ._base import is_unavailable

#: The statements of a transaction; the same text as asyncpg's ``Connection.transaction``.
BEGIN = "BEGIN ISOLATION LEVEL READ COMMITTED;"
COMMIT = "COMMIT;"
ROLLBACK = "ROLLBACK;"


def keeps_connection(exc: BaseException) -> bool:
    """Whether a connection is still usable after a call on it raised ``exc``.

    Only when the server answered (an SQL error) or the store itself refused
    something (an :class:`EventStoreError` raised between statements). A
    cancellation, a timeout, a lost connection or any other surprise leaves the
    protocol in a state nobody should wait on.
    """
    return isinstance(exc, (asyncpg.PostgresError, EventStoreError)) and not is_unavailable(exc)


def abandon(conn: Any) -> None:
    """Close ``conn``'s socket now, without waiting for the server.

    A pooled connection is then replaced by the pool instead of reused. Calling it on
    a connection that asyncpg has already closed and handed back to the pool (its
    connection was lost) does nothing.
    """
    with contextlib.suppress(asyncpg.InterfaceError):
        conn.terminate()


class Transaction:
    """``async with Transaction(conn):`` a ``READ COMMITTED`` transaction.

    Like ``conn.transaction(isolation="read_committed")`` with one difference: on an
    error after which the connection cannot be trusted (:func:`keeps_connection`)
    it abandons the connection instead of sending ``ROLLBACK`` (which would wait for
    a server that may never answer); the server rolls the transaction back when the
    socket closes.
    """

    __slots__ = ("_conn",)

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def __aenter__(self) -> None:
        await self._conn.execute(BEGIN)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self._conn.execute(COMMIT)
        elif keeps_connection(exc):
            await self._conn.execute(ROLLBACK)
        else:
            abandon(self._conn)


def set_keepalive(conn: Any, idle_s: int) -> None:
    """Turn on TCP keepalive on ``conn``'s socket: probe after ``idle_s`` s of silence.

    Three unanswered probes, ``idle_s / 3`` apart (at least 1 s), close the
    connection, so a connection whose peer vanished without a word (a dropped NAT
    entry, a crashed host) is noticed while idle. 0 leaves the socket alone.
    Connections over a Unix socket have no TCP to configure.
    """
    if idle_s <= 0:
        return
    transport = getattr(conn, "_transport", None)
    sock = None if transport is None else transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (
            ("TCP_KEEPIDLE", idle_s),
            ("TCP_KEEPINTVL", max(1, idle_s // 3)),
            ("TCP_KEEPCNT", 3),
        ):
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
