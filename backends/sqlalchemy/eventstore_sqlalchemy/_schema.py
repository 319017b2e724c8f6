"""The tables, the schema version and the migrations, as SQLAlchemy Core metadata.

Three tables, named with the store's prefix (default ``eventstore_``):

- ``events``: one row per event, primary key ``(run_id, seq)``, unique
  ``(run_id, event_id)`` for idempotency; ``envelope`` holds the envelope JSON text;
  ``session_id`` and the commit time repeat two of its fields for queries. The time
  is two integers, ``emitted_us`` (microseconds since the Unix epoch, UTC, rounded
  down) and ``emitted_ns`` (the nanoseconds within that microsecond, 0 to 999):
  nanoseconds since the epoch do not fit 64 bits for years 1 to 9999.
- ``runs``: one row per run with its current session, for ``list_runs``. On
  PostgreSQL it also holds ``last_seq``, the counter that appends lock and bump;
  SQLite locks the whole database for writing, so there the last seq is simply
  the run's highest ``seq`` and the row is written only when a run starts or
  changes session.
- ``schema_version``: one row per applied migration.

Migrations are applied under the database's write lock (SQLite ``BEGIN IMMEDIATE``,
PostgreSQL advisory transaction lock), so processes opening a new database at the
same time create it once. A new database goes through every step, so it ends up the
same as an old one brought up to date:

1. create the ``events`` and ``runs`` tables;
2. add ``events.emitted_ns`` (``SMALLINT NOT NULL DEFAULT 0``). Rows written before
   it hold times in whole microseconds, so 0 is their exact value. Adding a column
   with a constant default rewrites no row on either database.
"""

from __future__ import annotations

__all__ = ["SCHEMA_VERSION", "Tables", "apply_migrations", "current_version"]

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from eventstore import ConfigurationError

from ._codec import TYPE_COLUMN_WIDTH

#: The schema version this release writes and reads.
SCHEMA_VERSION: Final = 2

# Run and event ids are canonical lowercase UUID strings; comparing them bytewise
# orders them like the UUIDs. PostgreSQL's default collation might not, so its ids
# use the "C" collation.
_Id = sa.String(36).with_variant(sa.String(36, collation="C"), "postgresql")


@dataclass(frozen=True)
class Tables:
    """The store's tables for one table prefix."""

    prefix: str
    metadata: sa.MetaData
    events: sa.Table
    runs: sa.Table
    version: sa.Table

    @classmethod
    def build(cls, prefix: str, dialect: str, schema: int = SCHEMA_VERSION) -> Tables:
        """Table objects named ``<prefix>events`` and so on, for ``dialect``.

        ``schema`` is the schema version whose tables to describe: the current one,
        or an earlier one for the migration step that created them.
        """
        metadata = sa.MetaData()
        counter = dialect == "postgresql"
        since_v2 = [_emitted_ns()] if schema >= 2 else []
        events = sa.Table(
            f"{prefix}events",
            metadata,
            sa.Column("run_id", _Id, primary_key=True),
            sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("event_id", _Id, nullable=False),
            sa.Column("event_type", sa.String(TYPE_COLUMN_WIDTH), nullable=False),
            sa.Column("session_id", _Id, nullable=True),
            sa.Column("emitted_us", sa.BigInteger, nullable=False),
            sa.Column("envelope", sa.Text, nullable=False),
            *since_v2,
            sa.UniqueConstraint("run_id", "event_id", name=f"{prefix}events_event_id_key"),
            # SQLite: keep rows in the primary key's b-tree. A rowid table holds a
            # composite key in a second b-tree: one more page per append to the WAL.
            sqlite_with_rowid=False,
        )
        runs = sa.Table(
            f"{prefix}runs",
            metadata,
            sa.Column("run_id", _Id, primary_key=True),
            *([sa.Column("last_seq", sa.BigInteger, nullable=False)] if counter else []),
            sa.Column("session_id", _Id, nullable=True),
            sa.Index(f"{prefix}runs_session_idx", "session_id", "run_id"),
            sqlite_with_rowid=False,
        )
        version = sa.Table(
            f"{prefix}schema_version",
            metadata,
            sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("description", sa.String(200), nullable=False),
            sa.Column("applied_at", sa.String(40), nullable=False),
        )
        return cls(prefix, metadata, events, runs, version)

    @property
    def lock_key(self) -> int:
        """PostgreSQL advisory lock key guarding this prefix's migrations."""
        return zlib.crc32(f"eventstore:{self.prefix}".encode())


def _emitted_ns() -> sa.Column[int]:
    """``events.emitted_ns``: the commit time's nanoseconds within its microsecond."""
    return sa.Column("emitted_ns", sa.SmallInteger, nullable=False, server_default=sa.text("0"))


@dataclass(frozen=True)
class _Migration:
    version: int
    description: str
    apply: Callable[[sa.Connection, Tables], None]


def _create_v1(conn: sa.Connection, tables: Tables) -> None:
    # The tables as version 1 made them; later steps change them.
    v1 = Tables.build(tables.prefix, conn.dialect.name, schema=1)
    v1.metadata.create_all(conn, tables=[v1.events, v1.runs], checkfirst=True)


def _add_emitted_ns_v2(conn: sa.Connection, tables: Tables) -> None:
    # Not NULL with a constant default: existing rows read 0 (their times were
    # written in whole microseconds), and neither database rewrites the table.
    column = _emitted_ns()
    column_type = column.type.compile(dialect=conn.dialect)
    quote = conn.dialect.identifier_preparer
    if conn.dialect.name == "postgresql":
        # ALTER TABLE takes an ACCESS EXCLUSIVE lock, if only for a moment; queued
        # behind a long transaction on the table, it would queue every append and
        # read behind itself. Give up after a while instead: the open fails (and may
        # be retried) while the others go on.
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{_MIGRATION_LOCK_TIMEOUT}'")
    conn.exec_driver_sql(
        f"ALTER TABLE {quote.format_table(tables.events)} "
        f"ADD COLUMN {quote.quote(column.name)} {column_type} NOT NULL DEFAULT 0"
    )


#: How long a migration step waits for its table lock on PostgreSQL.
_MIGRATION_LOCK_TIMEOUT: Final = "10s"

_MIGRATIONS: Final = (
    _Migration(1, "create events and runs tables", _create_v1),
    _Migration(2, "add events.emitted_ns (nanoseconds of the commit time)", _add_emitted_ns_v2),
)


def _read_version(conn: sa.Connection, tables: Tables) -> int | None:
    """The highest applied version, ``None`` when the version table is missing."""
    if not sa.inspect(conn).has_table(tables.version.name):
        return None
    value = conn.execute(sa.select(sa.func.max(tables.version.c.version))).scalar()
    return int(value or 0)


def _check_not_newer(version: int, tables: Tables, where: str) -> None:
    if version > SCHEMA_VERSION:
        raise ConfigurationError(
            f"{where}: tables '{tables.prefix}*' have schema version {version}, newer than "
            f"{SCHEMA_VERSION} which this eventstore-sqlalchemy understands; upgrade it"
        )


async def current_version(conn: AsyncConnection, tables: Tables, where: str) -> int:
    """The schema version found (0 for none); ConfigurationError if it is too new."""
    version = await conn.run_sync(_read_version, tables) or 0
    _check_not_newer(version, tables, where)
    return version


def _migrate(conn: sa.Connection, tables: Tables, where: str) -> list[str]:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(tables.lock_key)))
    tables.metadata.create_all(conn, tables=[tables.version], checkfirst=True)
    version = _read_version(conn, tables) or 0
    _check_not_newer(version, tables, where)
    applied = []
    for step in _MIGRATIONS:
        if step.version <= version:
            continue
        step.apply(conn, tables)
        conn.execute(
            tables.version.insert().values(
                version=step.version,
                description=step.description,
                applied_at=datetime.now(UTC).isoformat(),
            )
        )
        applied.append(f"{tables.prefix}: {step.version} {step.description}")
    return applied


async def apply_migrations(conn: AsyncConnection, tables: Tables, where: str) -> list[str]:
    """Apply pending migrations in ``conn``'s transaction; return what was applied."""
    return await conn.run_sync(_migrate, tables, where)
