"""Building redis-py clients from a store URL, with timeouts and retries chosen on purpose.

redis-py 8 defaults to a 5 s socket timeout and ten retries of any command after a
connection error or a timeout. For this store:

* Commands (appends, reads) get ``socket_timeout`` and ``retries`` from the options.
  Re-sending an append is safe because every append carries its event id: a retry
  of an append that did commit finds its id and returns the stored envelope.
* Blocking reads (``XREAD BLOCK`` of a live subscription) use their own client and
  pool, whose socket timeout is the block time plus ``socket_timeout`` (so a read is
  never cut off while the server legitimately waits) and which never retries: a
  wake-up is only a hint, the subscriber re-reads through ``list_after``.
"""

from __future__ import annotations

__all__ = [
    "Client",
    "Clients",
    "Entry",
    "connect",
    "cancel_requests",
    "deliver_swallowed_cancel",
    "field_value",
    "is_unavailable",
    "xrange",
    "xrange_all",
    "zrangebylex",
]

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, cast

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ConnectionError,
    MasterDownError,
    ReadOnlyError,
    RedisClusterException,
    TimeoutError,
    TryAgainError,
)

from ._connection import lean_connection_class
from ._options import RedisOptions, RedisTarget
from ._pool import WaitingConnectionPool

#: Errors that mean "the server cannot be reached or is not serving right now".
_UNAVAILABLE = (
    ConnectionError,
    TimeoutError,
    BusyLoadingError,
    ClusterDownError,
    MasterDownError,
    TryAgainError,
    ReadOnlyError,
    RedisClusterException,
    OSError,
)


Client: TypeAlias = Redis | RedisCluster
#: A stream entry as the server sends it: its id and a flat ``[field, value, ...]`` list.
Entry: TypeAlias = tuple[bytes, list[bytes]]


def field_value(fields: Sequence[bytes], name: bytes) -> bytes | None:
    """The value of ``name`` in an entry's flat field list, ``None`` if it is absent.

    A field given twice (``XADD k * e x e y``) has its last value, as in redis-py's dict.
    """
    for index in range(len(fields) // 2 * 2 - 2, -1, -2):
        if fields[index] == name:
            return fields[index + 1]
    return None


def _unparsed(response: Any, **_: Any) -> Any:
    return response


def cancel_requests() -> int:
    """How many cancellations of the current task are pending (``Task.cancelling``)."""
    task = asyncio.current_task()
    return 0 if task is None else task.cancelling()


def deliver_swallowed_cancel(before: int) -> None:
    """Raise ``CancelledError`` if this task was cancelled during a command but never saw it.

    redis-py sends each command inside ``asyncio.wait_for`` when a socket timeout is
    set, and before Python 3.12 ``wait_for`` drops a cancellation that arrives as the
    send completes: the task goes on with the cancel request pending (a cancelled
    ``subscribe`` would then run forever). Call it after each command with
    :func:`cancel_requests` from before the command: only a cancellation that arrived
    during the command is delivered, so cleanup code that runs after a cancellation
    was caught (``except CancelledError: await store.append(...)``) is left alone.
    """
    if cancel_requests() > before:
        raise asyncio.CancelledError


async def xrange(client: Client, key: str, start: str, count: int) -> list[Entry]:
    """``XRANGE key start + COUNT count`` as the server's reply, on a client from :func:`connect`.

    The clients of :func:`connect` leave ``XRANGE`` replies as hiredis parsed them:
    redis-py's reply callback would turn every entry's fields into a dict, about a
    microsecond per entry spent on data the decoder then reads once.
    """
    before = cancel_requests()
    reply = await client.execute_command("XRANGE", key, start, "+", "COUNT", count)
    deliver_swallowed_cancel(before)
    return cast("list[Entry]", reply)


async def xrange_all(client: Client, key: str, page_size: int = 1_000) -> list[Entry]:
    """Every entry of the stream ``key``, read ``page_size`` at a time, in stream order."""
    out: list[Entry] = []
    start = "-"
    while True:
        page = await xrange(client, key, start, page_size)
        out.extend(page)
        if len(page) < page_size:
            return out
        start = f"({page[-1][0].decode()}"


async def zrangebylex(client: Client, key: str, start: str, count: int) -> list[bytes]:
    """``ZRANGEBYLEX key start + LIMIT 0 count``, typed."""
    before = cancel_requests()
    reply = await client.execute_command("ZRANGEBYLEX", key, start, "+", "LIMIT", 0, count)
    deliver_swallowed_cancel(before)
    return cast("list[bytes]", reply)


def is_unavailable(exc: BaseException) -> bool:
    """True for errors that say the server is unreachable rather than the command bad."""
    return isinstance(exc, _UNAVAILABLE)


@dataclass(frozen=True, slots=True)
class Clients:
    """The store's two clients: one for commands, one for blocking reads."""

    commands: Client
    blocking: Client
    cluster: bool


def _common(options: RedisOptions, *, tls: bool) -> dict[str, Any]:
    common: dict[str, Any] = {
        "socket_connect_timeout": options.connect_timeout,
        "decode_responses": False,
        "client_name": options.client_name,
        "max_connections": options.max_connections,
    }
    if tls:
        # The server certificate is always verified; these only say against what.
        common["ssl_cert_reqs"] = "required"
        common["ssl_check_hostname"] = options.tls_check_hostname
        if options.tls_ca_file is not None:
            common["ssl_ca_certs"] = options.tls_ca_file
        if options.tls_cert_file is not None:
            common["ssl_certfile"] = options.tls_cert_file
        if options.tls_key_file is not None:
            common["ssl_keyfile"] = options.tls_key_file
    return common


def _raw_xrange(client: Client) -> Client:
    client.set_response_callback("XRANGE", _unparsed)
    return client


def connect(target: RedisTarget) -> Clients:
    """Build (not yet connect) the command and blocking clients for ``target``."""
    options, tls = target.options, target.tls
    driver_url = target.driver_url
    block_timeout = options.block_ms / 1000 + options.socket_timeout
    command_retry = Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.5), retries=options.retries)
    no_retry = Retry(NoBackoff(), retries=0)
    if target.cluster:
        commands: Client = RedisCluster.from_url(
            driver_url,
            socket_timeout=options.socket_timeout,
            retry=command_retry,
            **_common(options, tls=tls),
        )
        blocking: Client = RedisCluster.from_url(
            driver_url, socket_timeout=block_timeout, retry=no_retry, **_common(options, tls=tls)
        )
        return Clients(_raw_xrange(commands), blocking, cluster=True)
    extra: dict[str, Any] = {} if options.db is None else {"db": options.db}
    # A caller finding every connection in use waits for one (up to the timeout)
    # instead of failing at once with "Too many connections" (see _pool).
    command_pool = WaitingConnectionPool.from_url(
        driver_url,
        wait_timeout=options.connect_timeout + options.socket_timeout,
        socket_timeout=options.socket_timeout,
        retry=command_retry,
        **_common(options, tls=tls),
        **extra,
    )
    # Only the command client: its appends and pages are the hot path (see
    # _connection). The pool creates connections lazily, so none exists yet.
    command_pool.connection_class = lean_connection_class(command_pool.connection_class)
    commands = Redis.from_pool(command_pool)
    blocking = Redis.from_pool(
        WaitingConnectionPool.from_url(
            driver_url,
            wait_timeout=block_timeout + options.connect_timeout,
            socket_timeout=block_timeout,
            retry=no_retry,
            **_common(options, tls=tls),
            **extra,
        )
    )
    return Clients(_raw_xrange(commands), blocking, cluster=False)
