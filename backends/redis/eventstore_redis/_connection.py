"""redis-py connection classes with a leaner send path, for the store's command client.

An append is one ``EVALSHA``, so the client's own cost per command is a large part
of its latency. Measured here (``benchmarks/``), redis-py spends about 40 µs of an
append's 210 µs in two places that this store does not need:

* ``send_packed_command`` wraps every write in ``asyncio.wait_for`` (a new task per
  command) so that a write blocked on a full socket buffer times out. A write that
  fits in the buffer cannot block: this class writes and only waits, with the same
  timeout, when the transport actually holds unsent bytes. On Python 3.11 this also
  avoids ``wait_for``'s lost-cancellation race on the send side.
* ``pack_command`` encodes argument by argument through the encoder. The store
  sends ``str``, ``bytes`` and ``int`` arguments; those are packed in one join, and
  any other argument (or a non-UTF-8 encoder) goes through redis-py's own packer.

A connection that the server closed while it sat idle is connected again before the
write, as redis-py's pool does when it hands a connection out, so a connection kept
between calls (see :mod:`._batcher`) is no worse off than a pooled one. Everything
else, connecting, health checks, reading replies with the read timeout, retries and
the pool, stays redis-py's. The classes are built from whatever class
redis-py chose for the URL (TCP, TLS or Unix socket).
"""

from __future__ import annotations

__all__ = ["lean_connection_class", "pack"]

import asyncio
from collections.abc import Iterable
from typing import Any, Final, cast

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def pack(args: tuple[Any, ...]) -> bytes | None:
    """One RESP command for ``args`` of ``str``, ``bytes`` and ``int``, else ``None``.

    A command name that is not one plain word (``"SCRIPT LOAD"``, empty, with
    whitespace) is left to redis-py, which splits it into the command's words.
    """
    first = args[0]
    if type(first) not in (str, bytes) or first.split() != [first]:
        return None
    out = [b"*%d\r\n" % len(args)]
    append = out.append
    for arg in args:
        kind = type(arg)
        if kind is str:
            data = arg.encode()
        elif kind is bytes:
            data = arg
        elif kind is int:
            data = b"%d" % arg
        else:
            return None
        append(b"$%d\r\n" % len(data))
        append(data)
        append(b"\r\n")
    return b"".join(out)


# Spellings of the encoder's encoding (redis-py's default is "utf-8") that pack() may
# serve; any other goes through redis-py's packer, which is right for all of them.
_UTF8: Final = frozenset({"utf-8", "utf8", "UTF-8", "UTF8"})


class _LeanSend:
    """The mixin: see the module docstring. Only for ``AbstractConnection`` subclasses."""

    def pack_command(self, *args: Any) -> list[bytes]:
        this = cast("AbstractConnection", self)
        encoder = this.encoder
        if encoder.encoding in _UTF8 and encoder.encoding_errors == "strict":
            packed = pack(args)
            if packed is not None:
                return [packed]
        result: list[bytes] = super().pack_command(*args)  # type: ignore[misc]
        return result

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        this = cast("AbstractConnection", self)
        reader: asyncio.StreamReader | None = getattr(this, "_reader", None)
        if reader is not None and reader.at_eof():
            # The server closed the connection while it was idle (timeout, CLIENT
            # KILL): connect again, as the pool does when it hands one out.
            await this.disconnect()
        writer: asyncio.StreamWriter | None = getattr(this, "_writer", None)
        if (
            writer is None
            or not this.is_connected
            or (check_health and this.health_check_interval)
            or not isinstance(command, list)
        ):
            # Connecting, health checks and unusual arguments: redis-py's own path.
            await super().send_packed_command(command, check_health)  # type: ignore[misc]
            return
        try:
            if writer.transport.is_closing():
                raise ConnectionResetError("the connection was closed")
            writer.writelines(command)
            if writer.transport.get_write_buffer_size():
                # The kernel did not take it all: wait for the buffer like redis-py
                # does, with its timeout.
                await asyncio.wait_for(writer.drain(), this.socket_timeout)
        except BaseException as exc:
            # A partly written command leaves the connection unusable; the errors are
            # redis-py's, so its retry logic recognizes them.
            await this.disconnect(nowait=True)
            if isinstance(exc, TimeoutError):
                raise RedisTimeoutError("Timeout writing to socket") from None
            if isinstance(exc, OSError):
                raise RedisConnectionError(f"Error while writing to socket: {exc}") from exc
            raise


_CLASSES: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def lean_connection_class(base: type[AbstractConnection]) -> type[AbstractConnection]:
    """``base`` (a redis-py connection class) with the lean send path mixed in."""
    if issubclass(base, _LeanSend):
        return base
    lean = _CLASSES.get(base)
    if lean is None:
        lean = _CLASSES[base] = cast(
            "type[AbstractConnection]",
            type(f"Lean{base.__name__}", (_LeanSend, base), {"__module__": __name__}),
        )
    return lean
