"""The ACL rights docs/backends/redis.md documents, and a store exercise that needs them all."""

from __future__ import annotations

import asyncio

import redis
from _redis_support import command

import eventstore
from eventstore import RunCompleted, RunId, RunStarted, SessionId, TextDelta

#: Exactly what docs/backends/redis.md lists: connection setup and the eviction
#: policy check, the script calls, the reads, and the commands the scripts run (Redis
#: checks those against the ACL too).
COMMANDS = (
    "+ping +client|setname +info "
    "+script|load +evalsha "
    "+xrange +xread +hget +hmget +zrangebylex "
    "+time +xadd +xtrim +xlen +hset +hdel +del +zadd +zrem +exists +get +set"
)
#: What a cluster client needs on top: the slot map, the command table (redis-py
#: reads it to find the keys of a command) and ASKING (redirects during resharding).
CLUSTER_COMMANDS = "+cluster|slots +command +asking"
PASSWORD = "acl-Pa55-word"


def add_user(port: int, rights: str) -> None:
    """Create user ``agent`` limited to keys ``app:*`` and ``rights`` on one server."""
    admin = redis.Redis(port=port)
    try:
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
            *rights.split(),
        )
    finally:
        admin.close()


async def exercise(url: str) -> list[int]:
    """Every kind of store call: append, batch, subscribe, list, delete, import.

    Returns the seqs read back, then the one delivered live.
    """
    run_id, session = RunId.new(), SessionId.new()
    async with eventstore.open_store(url, block_ms=100) as store:
        await store.append(RunStarted(run_id=run_id, session_id=session, provider="a", model="m"))
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
