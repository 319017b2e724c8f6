"""The PostgreSQL store: ``postgresql://`` and ``postgresql+asyncpg://``.

SQLAlchemy owns the URL, the dialect (it computes asyncpg's connection arguments),
the schema and the cold paths. The hot paths (append, reads, delete) run on an
asyncpg pool with hand-written SQL that asyncpg prepares once per connection:
checking a connection out of SQLAlchemy's pool costs a greenlet switch, a pre-ping
round trip and a reset round trip, which on a page read tripled the time.

Appends are committed in groups by the store's worker (:mod:`._pg_worker`; the
transaction is in :mod:`._pg_append`): concurrent appends of any runs share one
transaction of two statements, and at most ``pool_size`` groups are in flight.
Each run's counter row serializes its appenders across every client, so seqs have
no gap (a sequence would leave gaps on rollback).

A connection lost mid-call is discarded and the call retried on another one with
the same event ids, so an append whose acknowledgement was lost is stored once.

Every call is bounded: connecting by ``connect_timeout_s``, each statement by
``command_timeout_s`` (asyncpg's per-connection ``command_timeout``: a timer, no
extra round trip), ``close()`` by ``close_timeout_s``. A connection whose call timed
out, was cancelled or failed without an answer from the server is abandoned
(:mod:`._pg_conn`), never waited on: a frozen server cannot hold a caller.
"""

from __future__ import annotations

__all__ = ["PostgresEventStore"]

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, ClassVar, TypeVar

import asyncpg

from eventstore import (
    BackendUnavailableError,
    ConcurrencyError,
    EventEnvelope,
    IdempotencyConflictError,
    RunId,
    RunInfo,
    SessionId,
)
from eventstore.backend import ImportBatch, PendingEvent

from ._base import SQLEventStore, is_unavailable, run_infos
from ._codec import decode_rows, split_time, type_column
from ._options import SQLTarget
from ._pg_conn import Transaction, abandon, keeps_connection, set_keepalive
from ._pg_sql import Statements
from ._pg_worker import PostgresWorker

_T = TypeVar("_T")
#: How often a call is retried on a fresh connection after losing its connection.
_RETRIES = 3
#: Runs per statement when the live subscribers' poller asks for their last seqs.
_LAST_SEQS_CHUNK = 1000
#: Seconds between the poller's looks at every waited run while LISTEN works: only
#: for a notification lost without the listener's connection being reported lost.
_LISTENING_POLL_S = 1.0


async def _no_reset(_conn: asyncpg.Connection) -> None:
    """Replace asyncpg's reset query on release with nothing.

    Every call here ends its transaction, and pooled connections never LISTEN or
    change settings, so that extra round trip would reset nothing.
    """


class PostgresEventStore(SQLEventStore):
    """An event store in PostgreSQL tables, shared by any number of clients."""

    backend_name: ClassVar[str] = "postgresql"
    dialect: ClassVar[str] = "postgresql"
    bound_to_event_loop: ClassVar[bool] = True  # so do asyncpg's pool and listener

    def __init__(self, target: SQLTarget) -> None:
        super().__init__(target)
        self._sql = Statements(self._tables.prefix)
        opts = target.options
        self._writer = PostgresWorker(
            self._sql,
            connection=self._connection,
            with_retry=self._with_retry,
            committers=opts.pool_size,
            group_max=opts.group_commit_max,
        )
        self._listener: asyncpg.Connection | None = None
        self._pool: asyncpg.Pool | None = None
        self._connect_kwargs: dict[str, Any] = {}
        self._listener_lock = asyncio.Lock()

    # -- lifecycle -----------------------------------------------------------------

    async def _do_open(self) -> None:
        await self._open_engine()
        # SQLAlchemy's asyncpg dialect turns the URL into connection arguments; the
        # hot paths use them with asyncpg's own pool (see the module docstring).
        _args, kwargs = self.engine.dialect.create_connect_args(self.engine.url)
        opts = self._target.options
        self._connect_kwargs = {
            **kwargs,
            "timeout": opts.connect_timeout_s,
            # Every call on the connection waits at most this long for the server.
            "command_timeout": opts.command_timeout_s,
        }
        try:
            self._pool = await asyncpg.create_pool(
                min_size=1,
                max_size=opts.pool_size,
                reset=_no_reset,
                init=self._on_new_connection,
                **self._connect_kwargs,
            )
            self._writer.start()
            await self._ensure_listener()
        except BaseException:
            await self._do_close()
            raise

    async def _on_new_connection(self, conn: asyncpg.Connection) -> None:
        set_keepalive(conn, self._target.options.tcp_keepalive_s)

    async def _do_close(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._target.options.close_timeout_s
        try:
            # Appends already accepted finish before the pool closes: the ones being
            # committed and the ones still queued behind them, within close_timeout_s.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._writer.stop(), self._target.options.close_timeout_s)
        finally:
            # Runs to its end even if close() is cancelled (again).
            await self._release_surely(self._teardown(deadline))

    async def _teardown(self, deadline: float) -> None:
        """Release everything; whatever still waits at ``deadline`` is terminated."""
        loop = asyncio.get_running_loop()

        def remaining() -> float:
            return max(deadline - loop.time(), 0.0)

        # Appends are still pending here only if close() timed out or was cancelled
        # while waiting for them: queued ones are refused, ones in flight fail once
        # their connections are terminated.
        self._writer.abandon()
        # A listener connect in flight (a subscriber reconnecting) sees the store
        # closed when it finishes, and closes its connection itself.
        listener, self._listener = self._listener, None
        pool, self._pool = self._pool, None

        async def close_listener() -> None:
            if listener is not None and not listener.is_closed():
                try:
                    await asyncio.wait_for(listener.close(), remaining())
                except Exception:
                    abandon(listener)

        async def close_pool() -> None:
            if pool is not None:
                try:
                    await asyncio.wait_for(pool.close(), remaining())
                except Exception:
                    pool.terminate()
            # A committer still waiting here is connecting to a server that does not
            # answer: the pool is gone, so it is stopped too.
            self._writer.interrupt()

        # Side by side, each within the deadline: the pool may wait for appends in
        # flight while the idle connections of the listener and the engine close.
        await asyncio.gather(close_listener(), close_pool(), self._close_engine(remaining()))

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        pool = self._pool
        if pool is None:
            self._require_open()
            raise AssertionError("pool missing while open")
        async with pool.acquire() as conn:
            try:
                yield conn
            except BaseException as exc:
                if not keeps_connection(exc):
                    # Cancelled, timed out, lost or in an unknown state: closed now
                    # (so its release waits for nothing) and replaced by the pool.
                    abandon(conn)
                    if is_unavailable(exc):
                        # The idle ones probably died with this one (server restart,
                        # network cut): they are replaced on their next use too.
                        await pool.expire_connections()
                raise

    async def _with_retry(self, call: Callable[[asyncpg.Connection], Awaitable[_T]]) -> _T:
        """Run ``call`` on a pooled connection; on a lost connection, on a new one."""
        attempt = 0
        while True:
            try:
                async with self._connection() as conn:
                    return await call(conn)
            except Exception as exc:
                attempt += 1
                # A unique violation: a concurrent append stored one of these event
                # ids after our lookup; a deadlock: two callers locked runs in
                # different orders. Either way the retry settles it. A timeout is
                # not retried: it has used up the time the caller was promised.
                retryable = (is_unavailable(exc) and not isinstance(exc, TimeoutError)) or (
                    isinstance(exc, (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError))
                )
                if not retryable or attempt > _RETRIES:
                    raise
            await asyncio.sleep(0.01 * attempt)

    # -- appends, reads and deletes -------------------------------------------------

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        return await self._writer.run(run_id, events, expected_seq)

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        rows = await self._with_retry(
            lambda conn: conn.fetch(self._sql.list_after, str(run_id), after_seq, limit)
        )
        return decode_rows(run_id, rows)

    async def _last_seq(self, run_id: RunId) -> int:
        value = await self._with_retry(lambda conn: conn.fetchval(self._sql.last_seq, str(run_id)))
        return 0 if value is None else int(value)

    async def _list_runs(
        self, session_id: SessionId | None, limit: int, after: RunId | None
    ) -> list[RunInfo]:
        # Through the store's own pool, like every other read: a call cancelled on a
        # frozen server returns at once (its connection is abandoned), where the
        # engine's connection would wait out close_timeout_s to be given back.
        compiled = self._list_runs_query(session_id, limit, after).compile(
            dialect=self.engine.dialect, compile_kwargs={"render_postcompile": True}
        )
        sql = str(compiled)
        params = [compiled.params[name] for name in compiled.positiontup or ()]
        rows = await self._with_retry(lambda conn: conn.fetch(sql, *params))
        return run_infos(rows)

    async def _last_seqs(self, run_ids: Sequence[RunId]) -> dict[RunId, int]:
        runs = {str(run_id): run_id for run_id in run_ids}
        keys = list(runs)
        out: dict[RunId, int] = {}

        async def fetch(conn: asyncpg.Connection, chunk: list[str]) -> list[Any]:
            return list(await conn.fetch(self._sql.last_seqs, chunk))

        for start in range(0, len(keys), _LAST_SEQS_CHUNK):
            chunk = keys[start : start + _LAST_SEQS_CHUNK]
            rows = await self._with_retry(functools.partial(fetch, chunk=chunk))
            for run, last in rows:
                if run in runs:
                    out[runs[run]] = int(last)
        return out

    async def _import(self, batch: ImportBatch) -> None:
        run_id, envelopes, expected_seq = batch.run_id, batch.envelopes, batch.expected_seq
        run = str(run_id)
        sessions = [None if e.session_id is None else str(e.session_id) for e in envelopes]
        times = [split_time(e.emitted_at) for e in envelopes]

        async def store(conn: asyncpg.Connection) -> None:
            rows = await conn.fetch(self._sql.lock_one, run)
            last = rows[0][1]
            if last != expected_seq:
                raise ConcurrencyError(run_id=run_id, expected_seq=expected_seq, actual_seq=last)
            try:
                await conn.execute(
                    self._sql.import_rows,
                    run,
                    [e.seq for e in envelopes],
                    [str(e.event_id) for e in envelopes],
                    [type_column(e.event.event_type) for e in envelopes],
                    list(batch.texts),
                    sessions,
                    [micros for micros, _nanos in times],
                    envelopes[-1].seq,
                    sessions[-1],
                    self._sql.channel,
                    [nanos for _micros, nanos in times],
                )
            except asyncpg.UniqueViolationError as exc:
                raise IdempotencyConflictError.copied_id_taken(run_id=run_id) from exc

        await self._transact_once(store)

    async def _delete_run(self, run_id: RunId) -> int:
        async def delete(conn: asyncpg.Connection) -> int:
            run = str(run_id)
            await conn.execute(self._sql.delete_lock, run)
            removed = int(await conn.fetchval(self._sql.delete_events, run))
            await conn.execute(self._sql.delete_run, run, self._sql.channel)
            return removed

        return await self._transact_once(delete)

    async def _transact_once(self, body: Callable[[asyncpg.Connection], Awaitable[_T]]) -> _T:
        """Run ``body`` in one transaction, retried on a lost connection, in effect once.

        A retry after a lost COMMIT acknowledgement must not do the work again nor
        judge by what it finds (another client may have done the same meanwhile): it
        asks the server whether the earlier attempt's transaction committed, and if
        so returns that attempt's result.
        """
        unsure: list[tuple[int, _T]] = []  # (transaction id, result) awaiting COMMIT

        async def attempt(conn: asyncpg.Connection) -> _T:
            if unsure:
                xid, result = unsure.pop()
                if await self._committed(conn, xid):
                    return result
            async with Transaction(conn):
                xid = await conn.fetchval(self._sql.xid)
                result = await body(conn)
                unsure.append((xid, result))
            unsure.clear()
            return result

        return await self._with_retry(attempt)

    async def _committed(self, conn: asyncpg.Connection, xid: int) -> bool:
        """Whether transaction ``xid``, whose COMMIT's reply was lost, committed.

        Its server process may not have noticed the lost connection yet: while the
        transaction is still in progress, wait (it will commit or roll back).
        """
        for _ in range(200):
            status = await conn.fetchval(self._sql.xid_status, xid)
            if status == "committed":
                return True
            if status == "aborted":
                return False
            await asyncio.sleep(0.025)
        raise BackendUnavailableError(
            f"{self.describe()}: the outcome of a transaction whose connection was lost "
            f"is still unknown after 5 s (status {status!r})"
        )

    # -- live subscribe ------------------------------------------------------------

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        # A payload that is not a run id is not ours: someone else NOTIFYing here.
        with contextlib.suppress(ValueError):
            self._notifier.notify(RunId.parse(str(payload)))

    def _on_listener_lost(self, _conn: object) -> None:
        self._listener = None
        # Waiters fall back to polling until a wait re-establishes the listener.
        self._notifier.notify_all()

    async def _ensure_listener(self) -> None:
        """Keep one LISTEN connection per store; failing to get one means polling."""
        if self._listening():
            return
        async with self._listener_lock:
            if self._closed or self._listening():
                return
            conn: asyncpg.Connection = await asyncpg.connect(**self._connect_kwargs)
            try:
                set_keepalive(conn, self._target.options.tcp_keepalive_s)
                await conn.add_listener(self._sql.channel, self._on_notify)
                conn.add_termination_listener(self._on_listener_lost)
            except BaseException:
                abandon(conn)
                raise
            if self._was_closed():
                # close() ran meanwhile and did not see this connection.
                abandon(conn)
                return
            self._listener = conn

    def _listening(self) -> bool:
        return self._listener is not None and not self._listener.is_closed()

    async def _wait_for_append(self, run_id: RunId, after_seq: int, idle_rounds: int) -> None:
        # Without a listener (it could not be connected) the wait polls instead.
        with contextlib.suppress(Exception):
            await self._ensure_listener()
        await super()._wait_for_append(run_id, after_seq, idle_rounds)

    def _poll_interval(self, idle_rounds: int) -> float | None:
        if self._listening():
            # NOTIFY wakes us (appends, imports and deletes of every client). The
            # shared poller's full looks, one statement for every waited run, only
            # cover a notification lost without the listener's connection being
            # reported lost; a lost listener wakes everyone (_on_listener_lost) and
            # polling goes back to the default pace until a wait reconnects it.
            return _LISTENING_POLL_S
        return super()._poll_interval(idle_rounds)
