"""Helpers shared by the SQL backend's tests: the PostgreSQL test server and URLs."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any, NoReturn

import asyncpg
import pytest
from sqlalchemy.engine import make_url

#: Environment variable naming the PostgreSQL server (and database) tests may use.
POSTGRES_ENV = "EVENTSTORE_TEST_POSTGRES_URL"
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
#: Set by CI: a missing service fails the tests instead of skipping them.
REQUIRE_ENV = "EVENTSTORE_REQUIRE_SERVICES"


def unavailable(reason: str) -> NoReturn:
    """Skip (printing why), or fail when services are required."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} (and {REQUIRE_ENV}=1)", pytrace=False)
    print(f"SKIP PostgreSQL tests: {reason}")
    pytest.skip(reason)


def connect_kwargs(url: str) -> dict[str, Any]:
    """asyncpg.connect arguments for a SQLAlchemy-style URL."""
    parsed = make_url(url)
    return {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": parsed.username,
        "password": parsed.password,
        "database": parsed.database,
    }


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(**connect_kwargs(url), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database(server_url: str) -> str:
    """Create a database for this test session; return its URL (asyncpg driver)."""
    name = f"es_sqltest_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        unavailable(f"PostgreSQL at {make_url(server_url).render_as_string()} unreachable: {exc}")
    return (
        make_url(server_url)
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )


def drop_database(server_url: str, database_url: str) -> None:
    """Drop a database made by :func:`create_database`, closing its connections."""
    name = make_url(database_url).database
    asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def drop_prefix(database_url: str, prefix: str) -> None:
    """Drop the tables of one store prefix."""
    tables = ", ".join(f'"{prefix}{t}"' for t in ("events", "runs", "schema_version"))
    asyncio.run(_admin(database_url, f"DROP TABLE IF EXISTS {tables}"))


def with_options(url: str, **options: object) -> str:
    """``url`` with query options appended."""
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"
