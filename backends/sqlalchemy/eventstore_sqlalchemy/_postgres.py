"""The PostgreSQL store: ``postgresql://`` and ``postgresql+asyncpg://``.

SQLAlchemy owns the URL, the dialect (it computes asyncpg's connection arguments),
the schema and the cold paths. The hot paths (append, reads, delete) run on an
asyncpg pool with hand-written SQL that asyncpg prepares once per connection:
checking a connection out of SQLAlchemy's pool costs a greenlet switch, a pre-ping
round trip and a reset round trip, which on a page read tripled the time.

Appends are committed in groups (see :mod:`._pg_append`): concurrent appends of
any runs share one transaction of two statements, and at most ``pool_size``
groups are in flight. Each run's counter row serializes its appenders across
every client, so seqs have no gap (a sequence would leave gaps on rollback).

A connection lost mid-call is discarded and the call retried on another one with
the same event ids, so an append whose acknowledgement was lost is stored once.
"""

from __future__ import annotations

__all__ = ["PostgresEventStore"]

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, ClassVar, TypeVar

import asyncpg

from eventstore import BackendUnavailableError, ConcurrencyError, IdempotencyConflictError, RunId
from eventstore.backend import Backdoor, EventEnvelope, PendingEvent, RunNotifier
from eventstore.errors import StoreClosedError

from ._base import SQLEventStore, is_unavailable
from ._codec import decode_rows, to_micros, type_column, verbatim_texts
from ._options import SQLTarget
from ._pg_append import AppendJob, GroupStatements, commit_group

_T = TypeVar("_T")
#: How often a call is retried on a fresh connection after losing its connection.
_RETRIES = 3


class _Statements:
    """The hand-written SQL of the hot paths, for one table prefix."""

    def __init__(self, prefix: str) -> None:
        events, runs = f"{prefix}events", f"{prefix}runs"
        self.channel = f"{prefix}events"
        # Copied envelopes keep their own times, so emitted_us is an array here.
        self.import_rows = (
            f"WITH ins AS (INSERT INTO {events} "
            "(run_id, seq, event_id, event_type, envelope, session_id, emitted_us) "
            "SELECT $1, * FROM unnest($2::bigint[], $3::varchar[], $4::varchar[], "
            "$5::text[], $6::varchar[], $7::bigint[])) "
            f"UPDATE {runs} SET last_seq = $8, session_id = $9 WHERE run_id = $1 "
            "RETURNING pg_notify($10, $1)"
        )
        self.list_after = (
            f"SELECT seq, envelope FROM {events} WHERE run_id = $1 AND seq > $2 "
            "ORDER BY seq LIMIT $3"
        )
        self.last_seq = f"SELECT last_seq FROM {runs} WHERE run_id = $1"
        # Three statements, not one: the counter row is locked first (waiting for
        # an append in flight), and only then are the events deleted, by a new
        # statement whose snapshot includes that append's event. A single statement
        # would read its snapshot before the wait and leave that event behind.
        self.delete_lock = f"SELECT 1 FROM {runs} WHERE run_id = $1 FOR UPDATE"
        self.delete_events = (
            f"WITH e AS (DELETE FROM {events} WHERE run_id = $1 RETURNING 1) SELECT count(*) FROM e"
        )
        self.delete_run = f"DELETE FROM {runs} WHERE run_id = $1"
        self.raw_seqs = f"SELECT seq FROM {events} WHERE run_id = $1 ORDER BY seq"
        # Lost acknowledgements: a transaction's id, and later whether it committed.
        self.xid = "SELECT txid_current()"
        self.xid_status = "SELECT txid_status($1)"
        self.corrupt = f"UPDATE {events} SET envelope = $3 WHERE run_id = $1 AND seq = $2"


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
        self._sql = _Statements(self._tables.prefix)
        self._group_sql = GroupStatements(self._tables.prefix)
        self._waiting: collections.deque[AppendJob] = collections.deque()
        self._committers = 0
        # Set while no append is being committed or waiting: close() waits for it.
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._notifier = RunNotifier()
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
        self._connect_kwargs = dict(kwargs)
        opts = self._target.options
        try:
            self._pool = await asyncpg.create_pool(
                min_size=1,
                max_size=opts.pool_size,
                timeout=opts.connect_timeout_s,
                reset=_no_reset,
                **self._connect_kwargs,
            )
            await self._ensure_listener()
        except BaseException:
            await self._do_close()
            raise

    async def _do_close(self) -> None:
        try:
            # Appends already accepted finish before the pool closes: the ones being
            # committed and the ones still queued behind them. Waiting on the event
            # (not on the tasks) never cancels them if close() itself is cancelled.
            await self._idle.wait()
        finally:
            # Runs to its end even if close() is cancelled (again).
            await self._release_surely(self._teardown())

    async def _teardown(self) -> None:
        # Appends are still pending here only if close() was cancelled while waiting
        # for them: queued ones are refused, ones in flight fail once the pool is gone.
        self._refuse_waiting()
        self._notifier.notify_all()
        # Under the lock: a listener connect in flight (a subscriber reconnecting)
        # finishes first, and its connection is closed here instead of leaking.
        async with self._listener_lock:
            listener, self._listener = self._listener, None
        if listener is not None and not listener.is_closed():
            with contextlib.suppress(Exception):
                await listener.close(timeout=2)
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 5)
            except Exception:
                pool.terminate()
        await self._close_engine()

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        if self._pool is None:
            self._require_open()
            raise AssertionError("pool missing while open")
        async with self._pool.acquire() as conn:
            try:
                yield conn
            except Exception as exc:
                if is_unavailable(exc):
                    # Closed connections are replaced by the pool instead of reused;
                    # the idle ones probably died with this one (server restart,
                    # network cut), so they are replaced on their next use too.
                    conn.terminate()
                    await self._pool.expire_connections()
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
                # different orders. Either way the retry settles it.
                retryable = is_unavailable(exc) or isinstance(
                    exc, (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError)
                )
                if not retryable or attempt > _RETRIES:
                    raise
            await asyncio.sleep(0.01 * attempt)

    # -- appends -------------------------------------------------------------------

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        job = AppendJob(run_id, events, expected_seq, asyncio.get_running_loop().create_future())
        if not self._waiting and self._committers == 0:
            # Nothing else in flight (every sequential append): commit it right
            # here, without handing it to a task. Appends arriving meanwhile start
            # their own committer.
            self._committers += 1
            self._idle.clear()
            try:
                await self._commit([job])
            except asyncio.CancelledError:
                # This caller is gone; nobody will read the outcome _commit left.
                if job.future.done() and not job.future.cancelled():
                    job.future.exception()
                raise
            finally:
                self._committers -= 1
                self._start_committer()
                self._note_idle()
        else:
            self._waiting.append(job)
            self._start_committer()
        # A queued append (the else branch) is committed by the committer task even
        # if this caller stops waiting; an append on the fast path above is
        # cancelled with its caller, like any awaited transaction. Either way the
        # event id makes a retry safe.
        envelopes = await job.future
        self._notifier.notify(run_id)
        return envelopes

    def _start_committer(self) -> None:
        if self._waiting and self._committers < self._target.options.pool_size:
            self._committers += 1
            self._idle.clear()
            task = asyncio.create_task(self._commit_waiting())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _note_idle(self) -> None:
        if self._committers == 0 and not self._waiting:
            self._idle.set()

    def _refuse_waiting(self) -> None:
        """Fail every queued append; none of them was sent."""
        while self._waiting:
            job = self._waiting.popleft()
            if self._closed:
                job.outcome = StoreClosedError("postgresql store closed before this append ran")
            else:
                job.outcome = BackendUnavailableError(
                    "postgresql append not run: the store's committer was cancelled"
                )
            job.settle()

    async def _commit_waiting(self) -> None:
        """Commit groups of waiting appends until none is left."""
        try:
            while self._waiting:
                count = min(len(self._waiting), self._target.options.group_commit_max)
                group = [self._waiting.popleft() for _ in range(count)]
                await self._commit(group)
        finally:
            self._committers -= 1
            if self._committers == 0:
                # Left with appends queued only if this task was cancelled (the event
                # loop shutting down) and no other committer is left to take them.
                self._refuse_waiting()
            self._note_idle()

    def _commit_alone(self, job: AppendJob) -> Callable[[asyncpg.Connection], Awaitable[None]]:
        return lambda conn: commit_group(conn, self._group_sql, [job], look_up=True)

    async def _commit(self, group: list[AppendJob]) -> None:
        final: list[AppendJob] = []  # jobs whose outcome is known
        try:
            await self._commit_into(group, final)
        except BaseException:
            # The committing task was cancelled (the event loop shutting down): its
            # callers must not wait forever. Whether their appends committed is unknown.
            for job in group:
                if job not in final:
                    job.outcome = BackendUnavailableError(
                        "postgresql append interrupted before its outcome was known; "
                        "retry it with the same event id"
                    )
            raise
        finally:
            for job in group:
                job.settle()

    async def _commit_into(self, group: list[AppendJob], final: list[AppendJob]) -> None:
        try:
            async with self._connection() as conn:
                await commit_group(conn, self._group_sql, group)
                final.extend(group)
            return
        except Exception:
            final.clear()  # rolled back, or lost with its connection: nothing is known
        # Rolled back (an event id already stored, a deadlock) or lost with its
        # connection (maybe after committing): each append is run again on its own,
        # looking its ids up first and retried on a new connection, so a committed
        # one is answered from storage, not stored twice.
        for job in group:
            try:
                await self._with_retry(self._commit_alone(job))
            except StoreClosedError:
                job.outcome = StoreClosedError(
                    "postgresql store closed while this append was in flight; it may "
                    "or may not be stored: retry it with the same event id"
                )
            except Exception as exc:
                job.outcome = exc
            final.append(job)

    # -- reads and deletes ---------------------------------------------------------

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        rows = await self._with_retry(
            lambda conn: conn.fetch(self._sql.list_after, str(run_id), after_seq, limit)
        )
        return decode_rows(run_id, rows)

    async def _last_seq(self, run_id: RunId) -> int:
        value = await self._with_retry(lambda conn: conn.fetchval(self._sql.last_seq, str(run_id)))
        return 0 if value is None else int(value)

    async def _import(
        self,
        run_id: RunId,
        envelopes: Sequence[EventEnvelope],
        event_jsons: Sequence[str],
        expected_seq: int,
    ) -> None:
        run = str(run_id)
        texts = verbatim_texts(envelopes, event_jsons)
        sessions = [None if e.session_id is None else str(e.session_id) for e in envelopes]

        async def store(conn: asyncpg.Connection) -> None:
            rows = await conn.fetch(self._group_sql.lock_one, run)
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
                    texts,
                    sessions,
                    [to_micros(e.emitted_at) for e in envelopes],
                    envelopes[-1].seq,
                    sessions[-1],
                    self._sql.channel,
                )
            except asyncpg.UniqueViolationError as exc:
                raise IdempotencyConflictError(
                    f"run {run}: a copied event id is already stored at another seq"
                ) from exc

        await self._transact_once(store)
        self._notifier.notify(run_id)

    async def _delete_run(self, run_id: RunId) -> int:
        async def delete(conn: asyncpg.Connection) -> int:
            run = str(run_id)
            await conn.execute(self._sql.delete_lock, run)
            removed = int(await conn.fetchval(self._sql.delete_events, run))
            await conn.execute(self._sql.delete_run, run)
            return removed

        removed = await self._transact_once(delete)
        self._notifier.notify(run_id)
        return removed

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
            async with conn.transaction(isolation="read_committed"):
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
        if self._listener is not None and not self._listener.is_closed():
            return
        async with self._listener_lock:
            if self._closed or (self._listener is not None and not self._listener.is_closed()):
                return
            conn: asyncpg.Connection = await asyncpg.connect(
                **self._connect_kwargs, timeout=self._target.options.connect_timeout_s
            )
            await conn.add_listener(self._sql.channel, self._on_notify)
            conn.add_termination_listener(self._on_listener_lost)
            self._listener = conn

    async def _wait_for_append(self, run_id: RunId, after_seq: int, idle_rounds: int) -> None:
        woken = self._notifier.listen(run_id)
        if not self.is_open or await self._last_seq(run_id) > after_seq:
            return
        try:
            await self._ensure_listener()
            # NOTIFY wakes us; the timeout only covers a notification lost with the
            # listener's connection.
            delay = 1.0
        except Exception:
            delay = min(0.01 * (2 ** min(idle_rounds, 5)), 0.25)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), delay)

    def backdoor(self) -> Backdoor:
        """Raw access to the tables, for the conformance suite."""
        return _PostgresBackdoor(self)


class _PostgresBackdoor:
    def __init__(self, store: PostgresEventStore) -> None:
        self._store = store

    async def corrupt(self, run_id: RunId, seq: int) -> None:
        sql = self._store._sql

        async def damage(conn: asyncpg.Connection) -> Any:
            return await conn.execute(sql.corrupt, str(run_id), seq, '{"not an envelope')

        status = await self._store._with_retry(damage)
        if status.endswith(" 0"):
            raise KeyError(f"run {run_id} has no seq {seq}")

    async def raw_seqs(self, run_id: RunId) -> list[int]:
        sql = self._store._sql
        rows = await self._store._with_retry(lambda conn: conn.fetch(sql.raw_seqs, str(run_id)))
        return [row[0] for row in rows]
