"""What the SQLite and PostgreSQL stores share: engine, schema, list_runs, errors.

SQLAlchemy owns the URL, the dialect, the connection pool and the schema (DDL,
version checks, migrations) and answers the cold paths through Core. The hot paths
(append, list_after) are in the dialect modules and bypass it (see the docs).
"""

from __future__ import annotations

__all__ = ["SQLBackdoor", "SQLEventStore", "create_engine", "is_unavailable"]

import asyncio
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Self

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from eventstore import (
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    EventStoreError,
    RunId,
    RunInfo,
    SessionId,
)
from eventstore.backend import Backdoor, Capability, EventStore, StoreURL, redact_text

from ._codec import join_time
from ._options import SQLTarget, resolve
from ._schema import SCHEMA_VERSION, Tables, apply_migrations, current_version
from ._worker import is_locked_error
from .plugin import CAPABILITIES

#: Execution option marking a SQLAlchemy connection whose transactions write.
WRITE_OPTION = "eventstore_writes"


def _sqlite_connection_setup(engine: AsyncEngine, target: SQLTarget) -> None:
    opts = target.options

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Turn off the driver's implicit transactions; "begin" below sends
        # BEGIN IMMEDIATE for writing transactions, which takes the write lock up
        # front (a deferred BEGIN would fail, not wait, when a read must later
        # become a write), and a plain BEGIN for reads.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(opts.busy_timeout_ms)}")
        cursor.execute(f"PRAGMA synchronous={opts.synchronous}")
        # The first connection to a new file makes it WAL, before any table exists.
        cursor.execute("PRAGMA journal_mode")
        if cursor.fetchone()[0] != "wal":
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        writes = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def create_engine(target: SQLTarget) -> AsyncEngine:
    """The SQLAlchemy async engine for ``target``, configured for the store."""
    opts = target.options
    if target.dialect == "sqlite":
        # NullPool: this engine serves only cold paths; holding no connection between
        # calls keeps file handles and locks out of the way of other processes.
        engine = create_async_engine(target.engine_url, poolclass=NullPool)
        _sqlite_connection_setup(engine, target)
        return engine
    # Cold paths only (schema, list_runs): the hot paths have their own pool.
    return create_async_engine(
        target.engine_url,
        pool_size=1,
        max_overflow=min(opts.pool_size, 4),
        pool_pre_ping=opts.pool_pre_ping,
        connect_args={"timeout": opts.connect_timeout_s, "command_timeout": opts.command_timeout_s},
    )


class SQLEventStore(EventStore):
    """Base of the SQLite and PostgreSQL stores; use :func:`eventstore.open_store`."""

    capabilities: ClassVar[frozenset[Capability]] = CAPABILITIES
    dialect: ClassVar[str] = ""

    def __init__(self, target: SQLTarget) -> None:
        super().__init__(max_event_bytes=target.options.max_event_bytes)
        self._target = target
        self._tables = Tables.build(target.options.table_prefix, target.dialect)
        self._engine: AsyncEngine | None = None

    @classmethod
    def from_url(cls, url: str | StoreURL, **options: Any) -> Self:
        """Build an unopened store from its URL; options from the query or keywords.

        The registry passes the URL parsed already (a :class:`StoreURL`), which is
        used as it is.
        """
        target = resolve(url, options, backend=cls.backend_name)
        if target.dialect != cls.dialect:
            raise ConfigurationError(
                f"{cls.backend_name} store cannot serve {target.store_url.redacted!r}"
            )
        return cls(target)

    def describe(self) -> str:
        """The redacted URL and the table prefix."""
        return f"{self._target.store_url.redacted} (tables {self._tables.prefix}*)"

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy engine (only while open)."""
        if self._engine is None:
            self._require_open()
            raise AssertionError("engine missing while open")
        return self._engine

    async def _open_engine(self, *, prepare_schema: bool = True) -> None:
        """Create the engine and, unless told not to, check or create the schema.

        The version is read first without the write lock, so opening a database
        that is current never waits for other writers.
        """
        self._engine = create_engine(self._target)
        if not prepare_schema:
            return
        where = f"{self.backend_name} store {self._target.store_url.redacted!r}"
        try:
            version = await self._write_retrying(self._read_version, where)
            if version == SCHEMA_VERSION:
                return
            if not self._target.options.migrate_on_open:
                raise ConfigurationError(
                    f"{where}: schema version {version} is older than {SCHEMA_VERSION}; "
                    "run `eventstore migrate URL` or open with migrate_on_open=true"
                )
            await self._write_retrying(self._migrate, where)
        except BaseException:
            await self._close_engine()
            raise

    async def _read_version(self, where: str) -> int:
        async with self.engine.connect() as conn:
            return await current_version(conn, self._tables, where)

    async def _migrate(self, where: str) -> list[str]:
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(**{WRITE_OPTION: True})
            async with conn.begin():
                return await apply_migrations(conn, self._tables, where)

    async def _write_retrying(self, action: Any, *args: Any) -> Any:
        """Run a cold-path write, retrying SQLite's ``database is locked``."""
        deadline = asyncio.get_running_loop().time() + self._target.options.lock_timeout_s
        delay = 0.005
        while True:
            try:
                return await action(*args)
            except sa.exc.OperationalError as exc:
                now = asyncio.get_running_loop().time()
                if not is_locked_error(exc.orig or exc) or now + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    async def _close_engine(self, within: float | None = None) -> None:
        """Dispose of the engine, closing its idle connections within ``within`` s.

        Connections still closing then are aborted (a server that stopped answering
        would keep a graceful close waiting).
        """
        engine, self._engine = self._engine, None
        if engine is None:
            return
        try:
            await asyncio.wait_for(engine.dispose(), within)
        except TimeoutError:
            # The close under way was cancelled, which aborted its connection; any
            # other idle one is dropped without a goodbye (closed when collected).
            await engine.dispose(close=False)

    async def migrate(self) -> list[str]:
        """Apply pending migrations now; return the steps applied (none if current)."""
        where = f"{self.backend_name} store {self._target.store_url.redacted!r}"
        try:
            # A current schema needs no write lock: read the version first.
            if await self._write_retrying(self._read_version, where) == SCHEMA_VERSION:
                return []
            result: list[str] = await self._write_retrying(self._migrate, where)
        except EventStoreError:
            raise
        except Exception as exc:
            raise self._named_error(exc, "migrate") from exc
        return result

    async def _list_runs(
        self, session_id: SessionId | None, limit: int, after: RunId | None
    ) -> list[RunInfo]:
        query = self._list_runs_query(session_id, limit, after)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return run_infos(row._mapping for row in rows)

    def _list_runs_query(
        self, session_id: SessionId | None, limit: int, after: RunId | None
    ) -> sa.Select[Any]:
        """The ``list_runs`` query; its rows are read by :func:`run_infos`."""
        runs, events = self._tables.runs, self._tables.events

        def by_seq(column: sa.ColumnClause[Any], last: bool) -> Any:
            # The run's first or last event's column: one primary-key probe.
            order = events.c.seq.desc() if last else events.c.seq
            return (
                sa.select(column)
                .where(events.c.run_id == runs.c.run_id)
                .order_by(order)
                .limit(1)
                .scalar_subquery()
            )

        last_seq = by_seq(events.c.seq, True)
        query = (
            sa.select(
                runs.c.run_id,
                runs.c.session_id,
                last_seq.label("last_seq"),
                by_seq(events.c.emitted_us, False).label("first_emitted_us"),
                by_seq(events.c.emitted_ns, False).label("first_emitted_ns"),
                by_seq(events.c.emitted_us, True).label("last_emitted_us"),
                by_seq(events.c.emitted_ns, True).label("last_emitted_ns"),
            )
            .where(last_seq.is_not(None))
            .order_by(runs.c.run_id)
            .limit(limit)
        )
        if session_id is not None:
            query = query.where(runs.c.session_id == str(session_id))
        if after is not None:
            query = query.where(runs.c.run_id > str(after))
        return query

    def _translate_error(self, exc: Exception, operation: str) -> EventStoreError:
        original: BaseException = exc
        if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None:
            original = exc.orig
        text = redact_text(f"{type(original).__name__}: {original}")
        if "another operation (2) is in progress" in text:
            # asyncpg's words for a call on a connection that had received an error
            # while idle: the server ending it (pg_terminate_backend, a shutdown).
            text += " (the server had ended this connection while it was idle)"
        if isinstance(original, TimeoutError) and self.dialect == "postgresql":
            opts = self._target.options
            text = (
                f"{text.rstrip(': ')}: the server did not answer in time "
                f"(connect_timeout_s={opts.connect_timeout_s:g}, "
                f"command_timeout_s={opts.command_timeout_s:g}); the connection was "
                "abandoned. A write may or may not have been stored: retry it with "
                "the same event id"
            )
        # The base class's error boundary names the backend.
        message = f"{operation} failed ({self.describe()}): {text}"
        if is_unavailable(exc) or is_unavailable(original):
            return BackendUnavailableError(message)
        return BackendError(message)

    def _named_error(self, exc: Exception, operation: str) -> EventStoreError:
        """:meth:`_translate_error` for calls outside the store's error boundary."""
        error = self._translate_error(exc, operation)
        error.backend = self.backend_name
        return error

    def backdoor(self) -> Backdoor:
        """Raw access to the tables, for the conformance suite."""
        return SQLBackdoor(self)


#: What :meth:`SQLBackdoor.corrupt` stores: text that is not an envelope.
_DAMAGED = '{"not an envelope'


class SQLBackdoor:
    """Raw access to the events table through SQLAlchemy Core, for tests only.

    Off the store's hot paths (the writer thread, the asyncpg pool) on purpose: it
    reads and writes the rows as another client of the database would.
    """

    def __init__(self, store: SQLEventStore) -> None:
        self._store = store

    async def corrupt(self, run_id: RunId, seq: int) -> None:
        """Overwrite the entry at ``seq`` with undecodable text."""
        await self.replace(run_id, seq, _DAMAGED)

    async def raw_seqs(self, run_id: RunId) -> list[int]:
        """The run's stored seqs in key order, without decoding anything."""
        events = self._store._tables.events
        query = sa.select(events.c.seq).where(events.c.run_id == str(run_id))
        async with self._store.engine.connect() as conn:
            return list((await conn.execute(query.order_by(events.c.seq))).scalars())

    async def remove(self, run_id: RunId, seq: int) -> None:
        """Delete the row at ``seq``, leaving the run's other rows and counter alone."""
        events = self._store._tables.events
        await self._change(run_id, seq, sa.delete(events).where(*self._at(run_id, seq)))

    async def replace(self, run_id: RunId, seq: int, envelope_json: str) -> None:
        """Overwrite the envelope text of the row at ``seq``; its key columns stay."""
        events = self._store._tables.events
        statement = sa.update(events).where(*self._at(run_id, seq)).values(envelope=envelope_json)
        await self._change(run_id, seq, statement)

    def _at(self, run_id: RunId, seq: int) -> tuple[sa.ColumnElement[bool], ...]:
        events = self._store._tables.events
        return events.c.run_id == str(run_id), events.c.seq == seq

    async def _change(self, run_id: RunId, seq: int, statement: sa.Executable) -> None:
        async def write() -> int:
            async with self._store.engine.connect() as conn:
                conn = await conn.execution_options(**{WRITE_OPTION: True})
                async with conn.begin():
                    return int((await conn.execute(statement)).rowcount)

        if not await self._store._write_retrying(write):
            raise KeyError(f"run {run_id} has no seq {seq}")


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached or is locked up."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, (OSError, TimeoutError, ConnectionError)):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return is_locked_error(exc) or "unable to open" in str(exc)
    module = type(exc).__module__
    if module.startswith("asyncpg"):
        import asyncpg

        return isinstance(
            exc,
            (
                asyncpg.exceptions.ConnectionDoesNotExistError,
                asyncpg.exceptions.InterfaceError,
                asyncpg.exceptions.CannotConnectNowError,
                asyncpg.exceptions.TooManyConnectionsError,
                asyncpg.exceptions.AdminShutdownError,
                asyncpg.exceptions.ConnectionFailureError,
                # What asyncpg raises on a connection whose server process was
                # terminated while it sat idle in the pool.
                asyncpg.exceptions.InternalClientError,
            ),
        )
    return False


def run_infos(rows: Iterable[Mapping[str, Any]]) -> list[RunInfo]:
    """``RunInfo`` values from the rows of ``_list_runs_query``."""
    return [
        RunInfo(
            run_id=RunId.parse(row["run_id"]),
            session_id=None if row["session_id"] is None else SessionId.parse(row["session_id"]),
            last_seq=row["last_seq"],
            first_emitted_at=join_time(row["first_emitted_us"], row["first_emitted_ns"]),
            last_emitted_at=join_time(row["last_emitted_us"], row["last_emitted_ns"]),
        )
        for row in rows
    ]
