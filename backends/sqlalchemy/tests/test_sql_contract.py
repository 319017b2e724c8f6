"""The conformance suite against SQLite (a file per test) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from eventstore_contract import StoreContract
from sqlalchemy.engine import make_url

import eventstore
from eventstore import EventStore


class TestSQLiteContract(StoreContract):
    @pytest.fixture
    def store_factory(self, sqlite_url: str) -> Callable[[], EventStore]:
        return lambda: eventstore.open_store(sqlite_url)

    @pytest.fixture
    def store_url(self, sqlite_url: str) -> str | None:
        return sqlite_url


def _with_password(url: str) -> str:
    # A password lets the suite check that no credential leaks; the local test
    # server trusts loopback connections and ignores it.
    parsed = make_url(url)
    if parsed.password is not None:
        return url
    return parsed.set(password="contract-secret").render_as_string(hide_password=False)


class TestPostgresContract(StoreContract):
    @pytest.fixture
    def store_factory(self, postgres_url: str) -> Callable[[], EventStore]:
        url = _with_password(postgres_url)
        return lambda: eventstore.open_store(url)

    @pytest.fixture
    def store_url(self, postgres_url: str) -> str | None:
        return _with_password(postgres_url)
