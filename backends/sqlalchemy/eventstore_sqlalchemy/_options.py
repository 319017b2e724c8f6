"""Options of SQL stores and the mapping of store URLs onto SQLAlchemy URLs."""

from __future__ import annotations

__all__ = ["SQLOptions", "SQLTarget", "resolve"]

from dataclasses import dataclass
from typing import Any, Final, Literal

import sqlalchemy
from pydantic import Field
from sqlalchemy.engine import URL, make_url

from eventstore import ConfigurationError
from eventstore.backend import StoreOptions, StoreURL, parse_options

#: The SQLAlchemy async driver of each dialect. Which schemes reach this package is
#: declared once, by the backend specs in :mod:`.plugin`; a scheme names its dialect
#: before any ``+driver``.
DRIVERS: Final = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


class SQLOptions(StoreOptions):
    """Options of ``sqlite://`` and ``postgresql://`` stores (URL query or keywords).

    Options that only concern one database are accepted, and ignored, by the other,
    so one option set can be moved between them.
    """

    table_prefix: str = Field(
        default="eventstore_",
        pattern=r"^[a-z_][a-z0-9_]{0,30}$",
        description="Prefix of every table name, so several apps can share a database.",
    )
    migrate_on_open: bool = Field(
        default=True,
        description="Apply pending schema migrations when the store opens; if false, an "
        "out-of-date schema raises ConfigurationError (run `eventstore migrate URL`).",
    )
    synchronous: Literal["off", "normal", "full", "extra"] = Field(
        default="full",
        description="SQLite: PRAGMA synchronous. 'full' survives power loss; 'normal' "
        "survives a killed process (WAL mode) and is faster.",
    )
    busy_timeout_ms: int = Field(
        default=2000,
        ge=0,
        # SQLite takes a 32-bit int; a larger value would silently mean no wait at all.
        le=2_147_483_647,
        description="SQLite: how long one attempt waits for the lock.",
    )
    lock_timeout_s: float = Field(
        default=60.0,
        gt=0,
        allow_inf_nan=False,
        description="SQLite: how long a write keeps retrying a locked database before "
        "failing with BackendUnavailableError.",
    )
    group_commit_max: int = Field(
        default=256, ge=1, le=10_000, description="SQLite: most appends committed together."
    )
    pool_size: int = Field(default=10, ge=1, le=1000, description="PostgreSQL: pool size.")
    pool_pre_ping: bool = Field(
        default=True,
        description="PostgreSQL: test a pooled connection before use, so a connection "
        "lost while idle is replaced instead of failing the next call.",
    )
    connect_timeout_s: float = Field(
        default=10.0,
        gt=0,
        allow_inf_nan=False,
        description="PostgreSQL: timeout of one connection attempt.",
    )
    command_timeout_s: float = Field(
        default=30.0,
        gt=0,
        allow_inf_nan=False,
        description="PostgreSQL: how long one statement waits for the server's reply "
        "before its connection is abandoned and the call fails with "
        "BackendUnavailableError (not retried).",
    )
    close_timeout_s: float = Field(
        default=10.0,
        ge=0,
        allow_inf_nan=False,
        description="PostgreSQL: how long close() lets accepted appends finish and "
        "connections close gracefully before it terminates them.",
    )
    tcp_keepalive_s: int = Field(
        default=15,
        ge=0,
        le=32_767,
        description="PostgreSQL: TCP keepalive of the store's connections: probe a "
        "connection silent this long, drop it after 3 unanswered probes; 0 = off.",
    )


@dataclass(frozen=True)
class SQLTarget:
    """A parsed store URL: what to show, what SQLAlchemy connects to, and the options."""

    store_url: StoreURL
    engine_url: URL
    dialect: Literal["sqlite", "postgresql"]
    options: SQLOptions

    @property
    def sqlite_path(self) -> str:
        """The SQLite database file (only for SQLite targets)."""
        return self.engine_url.database or ""


def resolve(url: str | StoreURL, overrides: dict[str, Any], *, backend: str) -> SQLTarget:
    """Parse ``url`` (unless it is parsed already) and ``overrides`` into a :class:`SQLTarget`.

    Raises :class:`ConfigurationError` for a scheme of no dialect this package
    serves, a database it cannot use (SQLite ``:memory:``) or a bad option.
    """
    parsed = StoreURL.parse(url)
    driver = DRIVERS.get(parsed.scheme.partition("+")[0])
    if driver is None:
        raise ConfigurationError(
            f"{backend} store {parsed.redacted!r}: scheme {parsed.scheme!r} is not served "
            "by eventstore-sqlalchemy (sqlite:// and postgresql:// URLs are)"
        )
    options = parse_options(SQLOptions, parsed, overrides, backend=backend)
    try:
        engine_url = make_url(parsed.without_query).set(drivername=driver)
    except sqlalchemy.exc.ArgumentError as exc:
        raise ConfigurationError(f"{backend} store {parsed.redacted!r}: {exc}") from None
    dialect: Literal["sqlite", "postgresql"] = (
        "sqlite" if driver.startswith("sqlite") else "postgresql"
    )
    if dialect == "sqlite":
        database = engine_url.database or ""
        if database in ("", ":memory:") or database.startswith("file::memory:"):
            # Each connection to ':memory:' is a different database, and the store uses
            # several connections; a shared StaticPool would serialize everything.
            raise ConfigurationError(
                f"{backend} store {parsed.redacted!r}: an in-memory SQLite database is not "
                "supported; give a file path (sqlite:///events.db) or use memory://"
            )
        if database.lower().startswith("file:"):
            # SQLAlchemy would open the literal name and sqlite3 the URI's file: two
            # different databases behind one store.
            raise ConfigurationError(
                f"{backend} store {parsed.redacted!r}: SQLite 'file:' URIs are not "
                "supported; give a plain file path (sqlite:///events.db)"
            )
    elif not (engine_url.database or "").strip("/"):
        # libpq and asyncpg would connect to the database named after the user (often
        # `postgres`, the server's maintenance database) and the store would quietly
        # create its tables there.
        raise ConfigurationError(
            f"{backend} store {parsed.redacted!r}: a database name is required "
            "(postgresql://user@host:5432/DATABASE); without one the server's default "
            "database (the one named after the user) would be used, and the store "
            "would create its tables there"
        )
    return SQLTarget(parsed, engine_url, dialect, options)
