"""Fixtures: a SQLite file per test, and a PostgreSQL database per session.

PostgreSQL comes from ``EVENTSTORE_TEST_POSTGRES_URL`` (default: the local server's
``test`` database); the session creates its own database there and drops it at the
end, and each test uses its own table prefix in it. Without a reachable server the
PostgreSQL tests skip, saying why, unless ``EVENTSTORE_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from _sql_support import (
    DEFAULT_POSTGRES,
    POSTGRES_ENV,
    create_database,
    drop_database,
    drop_prefix,
    with_options,
)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file for this test."""
    return f"sqlite+aiosqlite:///{tmp_path}/events.db"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL server URL the tests may create databases on."""
    return os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES


@pytest.fixture(scope="session")
def postgres_database(postgres_server: str) -> Iterator[str]:
    """A database of this test session, dropped afterwards."""
    url = create_database(postgres_server)
    yield url
    drop_database(postgres_server, url)


@pytest.fixture
def postgres_prefix(postgres_database: str) -> Iterator[str]:
    """A table prefix of this test; its tables are dropped afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    yield prefix
    drop_prefix(postgres_database, prefix)


@pytest.fixture
def postgres_url(postgres_database: str, postgres_prefix: str) -> str:
    """A store URL of this test: the session database with the test's prefix."""
    return with_options(postgres_database, table_prefix=postgres_prefix)
