"""The command client's lean connection class (``eventstore_redis._connection``)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from _redis_support import run
from eventstore_redis import RedisEventStore
from eventstore_redis._connection import lean_connection_class, pack
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection

_ARGS = st.lists(
    st.one_of(st.text(), st.binary(), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    max_size=8,
)


@given(name=st.sampled_from(["SET", "EVALSHA", "XRANGE"]), args=_ARGS)
def test_pack_matches_redis_py(name: str, args: list[str | bytes | int]) -> None:
    expected = b"".join(Connection().pack_command(name, *args))
    assert pack((name, *args)) == expected


@pytest.mark.parametrize(
    "args",
    [
        ("SCRIPT LOAD", "return 1"),  # redis-py splits the command's words
        ("SET", "k", 1.5),
        ("SET", "k", True),
        ("SET", "k", memoryview(b"v")),
    ],
)
def test_pack_leaves_other_arguments_to_redis_py(args: tuple[Any, ...]) -> None:
    assert pack(args) is None


def test_a_lean_class_is_made_once_per_redis_py_class() -> None:
    for base in (Connection, SSLConnection, UnixDomainSocketConnection):
        lean = lean_connection_class(base)
        assert issubclass(lean, base)
        assert lean_connection_class(base) is lean
        assert lean_connection_class(lean) is lean


def _lean_client(url: str) -> Redis:
    client = Redis.from_url(url, socket_timeout=5)
    pool = client.connection_pool
    pool.connection_class = lean_connection_class(pool.connection_class)
    return client


def test_commands_round_trip_through_the_lean_connection(
    redis_server_url: str, prefix: str
) -> None:
    big = "é" * 300_000  # 600 kB: more than a socket buffer takes at once

    async def body() -> list[Any]:
        client = _lean_client(redis_server_url)
        try:
            await client.set(f"{prefix}big", big)
            await client.script_load("return 1")  # "SCRIPT LOAD": redis-py's packer
            await client.set(f"{prefix}float", 1.5)
            return [
                await client.get(f"{prefix}big"),
                await client.get(f"{prefix}float"),
                await client.incrby(f"{prefix}n", -(2**62)),
            ]
        finally:
            await client.aclose()

    assert run(body()) == [big.encode(), b"1.5", -(2**62)]


def test_a_killed_connection_raises_redis_connection_error_then_recovers(
    redis_server_url: str, prefix: str
) -> None:
    async def body() -> tuple[type[BaseException], object]:
        client = _lean_client(redis_server_url)
        no_retry = Redis.from_url(redis_server_url)
        try:
            await client.set(f"{prefix}k", "v")
            pool = client.connection_pool
            conn = await pool.get_connection()  # type: ignore[no-untyped-call]
            try:
                await conn.send_command("CLIENT", "ID")
                client_id = await conn.read_response()
                # Killed from the server's side, then used.
                await no_retry.client_kill_filter(_id=client_id)
                with pytest.raises(redis.ConnectionError) as caught:  # noqa: PT012
                    # Either the send sees the closed transport or the read sees EOF.
                    await conn.send_command("GET", f"{prefix}k")
                    await conn.read_response()
            finally:
                await pool.release(conn)
            return caught.type, await client.get(f"{prefix}k")
        finally:
            await client.aclose()
            await no_retry.aclose()

    error, value = run(body())
    assert issubclass(error, redis.ConnectionError)
    assert value == b"v"


def test_the_store_command_client_uses_the_lean_connection(
    make_store: Any,
) -> None:
    async def body() -> str:
        store: RedisEventStore = make_store()
        async with store:
            commands = store._clients.commands
            assert isinstance(commands, Redis)
            return commands.connection_pool.connection_class.__name__

    assert run(body()) == "LeanConnection"
