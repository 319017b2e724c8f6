"""The PostgreSQL store's group-commit scheduler: who commits which appends, and when.

The PostgreSQL counterpart of :mod:`._worker`'s writer thread. :meth:`PostgresWorker.run`
takes one append and answers it once it is committed:

- with nothing else in flight (every sequential append), the caller commits its
  append itself, without handing it to a task;
- otherwise it queues, and committer tasks (at most ``pool_size``) take the queued
  appends in groups of up to ``group_commit_max`` and commit each group as one
  transaction (:func:`._pg_append.commit_group`).

A group that fails (rolled back for a retried event id or a deadlock, or lost with
its connection, maybe after committing) is run again append by append, each looking
its ids up first and retried on a new connection, so a committed append is answered
from storage rather than stored twice. A queued append is committed even if its
caller stops waiting; one committed by its own caller is cancelled with it, like any
awaited transaction. Either way its event ids make a retry safe. :meth:`stop` waits
until every accepted append is answered. A group whose server did not answer in
time (``command_timeout_s``) is not run again: its appends fail with the timeout.
"""

from __future__ import annotations

__all__ = ["PostgresWorker"]

import asyncio
import collections
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager

import asyncpg

from eventstore import BackendUnavailableError, EventEnvelope, RunId
from eventstore.backend import PendingEvent, Stamped
from eventstore.errors import StoreClosedError

from ._pg_append import AppendJob, commit_group
from ._pg_sql import Statements

#: A call on a pooled connection.
_Call = Callable[[asyncpg.Connection], Awaitable[None]]


class PostgresWorker:
    """Commits appends in groups on the store's asyncpg pool.

    ``connection`` checks a connection out of the pool (discarding it if it fails);
    ``with_retry`` runs a call on a pooled connection, again on a new one if its
    connection was lost.
    """

    def __init__(
        self,
        sql: Statements,
        *,
        connection: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]],
        with_retry: Callable[[_Call], Awaitable[None]],
        committers: int,
        group_max: int,
    ) -> None:
        self._sql = sql
        self._connection = connection
        self._with_retry = with_retry
        self._max_committers = committers
        self._group_max = group_max
        self._waiting: collections.deque[AppendJob] = collections.deque()
        self._committers = 0
        # Set while no append is being committed or waiting: stop() waits for it.
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = False
        self._stopping = False

    def start(self) -> None:
        """Accept appends (the pool is open)."""
        self._running = True

    async def run(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        """Commit one append, alone or in a group; its envelopes once it committed."""
        if not self._running or self._stopping:
            raise StoreClosedError("the store is closed")
        job = AppendJob(run_id, events, expected_seq, asyncio.get_running_loop().create_future())
        if not self._waiting and self._committers == 0:
            # Nothing else in flight: commit it right here. Appends arriving
            # meanwhile start their own committer.
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
        outcome = await job.future
        return outcome.envelopes() if isinstance(outcome, Stamped) else outcome

    async def stop(self) -> None:
        """Refuse new appends and wait until every accepted one is answered.

        Waiting on an event (not on the tasks) never cancels them if the caller
        itself is cancelled; :meth:`abandon` then answers what is still queued.
        """
        self._stopping = True
        await self._idle.wait()

    def abandon(self) -> None:
        """Fail every queued append (the pool is going away); none of them was sent."""
        self._stopping = True
        self._refuse_waiting()

    def interrupt(self) -> None:
        """Cancel the committer tasks (the pool is gone; one may still be connecting).

        Their appends fail with :class:`BackendUnavailableError` (the outcome of
        any in flight is unknown), those still queued with ``StoreClosedError``.
        """
        for task in self._tasks:
            task.cancel()

    # -- committers ----------------------------------------------------------------

    def _start_committer(self) -> None:
        if self._waiting and self._committers < self._max_committers:
            self._committers += 1
            self._idle.clear()
            task = asyncio.create_task(self._commit_waiting())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _note_idle(self) -> None:
        if self._committers == 0 and not self._waiting:
            self._idle.set()

    def _refuse_waiting(self) -> None:
        while self._waiting:
            job = self._waiting.popleft()
            if self._stopping:
                job.outcome = StoreClosedError("the store closed before this append ran")
            else:
                job.outcome = BackendUnavailableError(
                    "append not run: the store's committer was cancelled"
                )
            job.settle()

    async def _commit_waiting(self) -> None:
        """Commit groups of waiting appends until none is left."""
        try:
            while self._waiting:
                count = min(len(self._waiting), self._group_max)
                group = [self._waiting.popleft() for _ in range(count)]
                await self._commit(group)
        finally:
            self._committers -= 1
            if self._committers == 0:
                # Left with appends queued only if this task was cancelled (the event
                # loop shutting down) and no other committer is left to take them.
                self._refuse_waiting()
            self._note_idle()

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
                        "append interrupted before its outcome was known; "
                        "retry it with the same event id"
                    )
            raise
        finally:
            for job in group:
                job.settle()

    async def _commit_into(self, group: list[AppendJob], final: list[AppendJob]) -> None:
        timed_out: TimeoutError | None = None
        try:
            async with self._connection() as conn:
                await commit_group(conn, self._sql, group)
                final.extend(group)
            return
        except TimeoutError as exc:
            # The server did not answer within command_timeout_s: trying each append
            # again would make its callers wait that long once more, each.
            final.clear()
            timed_out = exc
        except Exception:
            final.clear()  # rolled back, or lost with its connection: nothing is known
        # Each append again on its own, looking its ids up first (see the module
        # docstring).
        for job in group:
            if timed_out is not None:
                job.outcome = timed_out
                final.append(job)
                continue
            try:
                await self._with_retry(self._commit_alone(job))
            except StoreClosedError:
                job.outcome = StoreClosedError(
                    "the store closed while this append was in flight; it may or may "
                    "not be stored: retry it with the same event id"
                )
            except TimeoutError as exc:
                job.outcome = timed_out = exc
            except Exception as exc:
                job.outcome = exc
            final.append(job)

    def _commit_alone(self, job: AppendJob) -> _Call:
        return lambda conn: commit_group(conn, self._sql, [job], look_up=True)
