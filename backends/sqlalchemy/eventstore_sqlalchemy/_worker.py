"""A thread owning one sqlite3 connection, running jobs for the event loop.

This is where the SQLite backend leaves SQLAlchemy on its hot path. Through
SQLAlchemy's aiosqlite adapter every statement is a round trip between the event
loop and aiosqlite's thread, so one append (begin, two selects, two writes,
commit) costs six thread hops and the SQL compilation around them. Here a job is a
plain function that runs *all* its statements on the worker's thread, and the
event loop waits once per job.

The writer worker also commits concurrent appends together (group commit): it takes
every job queued while the previous transaction was committing and runs them in one
``BEGIN IMMEDIATE ... COMMIT``, so 64 concurrent appenders pay for one commit (and
one fsync) instead of 64. Each job still gets its own result or its own error:

- a job that raises an :class:`~eventstore.EventStoreError` (conflict, concurrency)
  has raised before writing anything, so only that job fails and the group goes on;
- any other exception, or a failed commit, rolls the whole group back and each job
  is run again alone, so an unexpected error reaches only the jobs it belongs to.

Results are handed to the event loop only after the commit, so a caller never sees
an envelope that is not durable.
"""

from __future__ import annotations

__all__ = ["SQLiteWorker", "is_locked_error"]

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from eventstore import EventStoreError
from eventstore.errors import StoreClosedError

_T = TypeVar("_T")
_STOP: Final = None
Job = Callable[..., Any]


def is_locked_error(exc: BaseException) -> bool:
    """True for SQLite's ``database is locked`` / ``busy``: worth retrying.

    Also recognizes the copy of ``OperationalError`` that SQLAlchemy's aiosqlite
    adapter raises, which is not a ``sqlite3`` class.
    """
    if not isinstance(exc, sqlite3.OperationalError) and type(exc).__name__ != "OperationalError":
        return False
    text = str(exc).lower()
    return "locked" in text or "busy" in text


@dataclass(slots=True)
class _Task:
    fn: Job
    args: tuple[Any, ...]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    outcome: tuple[bool, Any] = field(default=(False, None))


def _settle(tasks: list[_Task]) -> None:
    for task in tasks:
        if task.future.done():  # the caller was cancelled; the outcome is dropped
            continue
        ok, value = task.outcome
        if ok:
            task.future.set_result(value)
        else:
            task.future.set_exception(value)


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker opens its connection and handles a locked database."""

    path: str
    synchronous: str
    busy_timeout_ms: int
    lock_timeout_s: float
    group_max: int


class SQLiteWorker:
    """One thread, one connection; ``run`` executes a job there and awaits it.

    A *transactional* worker (the writer) wraps each group of jobs in ``BEGIN
    IMMEDIATE ... COMMIT``; the reader runs each job in autocommit mode, where every
    statement reads a consistent snapshot (WAL lets it read while the writer writes).
    """

    def __init__(self, settings: WorkerSettings, *, name: str, transactional: bool) -> None:
        self._settings = settings
        self._transactional = transactional
        self._queue: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._ready: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Guards `_stopping` together with the queue: callers on other threads (and
        # event loops) queue jobs too, and none may land behind the stop marker.
        self._lock = threading.Lock()
        self._stopping = False

    async def start(self) -> None:
        """Start the thread and wait until its connection is open."""
        self._loop = asyncio.get_running_loop()
        self._ready = self._loop.create_future()
        self._thread.start()
        await self._ready

    def request_stop(self) -> None:
        """Refuse new jobs; the thread finishes the queued ones, then ends."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            if self._thread.is_alive():
                self._queue.put(_STOP)

    async def stop(self) -> None:
        """Finish queued jobs, close the connection and end the thread."""
        self.request_stop()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)

    def run(self, fn: Callable[..., _T], *args: Any) -> asyncio.Future[_T]:
        """Queue ``fn(cursor, *args)``; the future resolves after it (and its commit)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        with self._lock:
            if self._stopping or not self._thread.is_alive():
                raise StoreClosedError("the store is closed")
            self._queue.put(_Task(fn, args, future, loop))
        return future

    # -- the thread ----------------------------------------------------------------

    def _signal_ready(self, error: BaseException | None) -> None:
        assert self._loop is not None
        assert self._ready is not None
        ready = self._ready

        def settle() -> None:
            if not ready.done():
                if error is None:
                    ready.set_result(None)
                else:
                    ready.set_exception(error)

        self._loop.call_soon_threadsafe(settle)

    def _connect(self) -> sqlite3.Connection:
        s = self._settings
        # isolation_level=None: no implicit BEGIN from the sqlite3 module; the writer
        # issues BEGIN IMMEDIATE itself, so it takes the write lock before reading the
        # run's last seq and no two writers can read the same one.
        conn = sqlite3.connect(
            s.path, isolation_level=None, check_same_thread=False, cached_statements=256
        )
        conn.execute(f"PRAGMA busy_timeout={int(s.busy_timeout_ms)}")
        # Switching to WAL needs the lock; once a file is in WAL mode it stays so.
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self._retry_locked(lambda: conn.execute("PRAGMA journal_mode=WAL"))
        conn.execute(f"PRAGMA synchronous={s.synchronous}")
        return conn

    def _main(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:
            self._signal_ready(exc)
            return
        self._signal_ready(None)
        # One cursor for every statement: Connection.execute makes a new one each time.
        cursor = conn.cursor()
        try:
            while True:
                task = self._queue.get()
                if task is None:
                    break
                if not self._transactional:
                    self._run_alone(cursor, task)
                    continue
                group = [task]
                stop = False
                while not self._queue.empty() and len(group) < self._settings.group_max:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    group.append(more)
                self._run_group(cursor, group)
                if stop:
                    break
        finally:
            conn.close()
            self._refuse_left()

    def _refuse_left(self) -> None:
        """Fail any job still queued: the thread is ending (a broken connection)."""
        left: list[_Task] = []
        with self._lock:
            self._stopping = True
            while True:
                try:
                    task = self._queue.get_nowait()
                except queue.Empty:
                    break
                if task is not None:
                    task.outcome = (False, StoreClosedError("the store is closed"))
                    left.append(task)
        self._deliver(left)

    def _retry_locked(self, action: Callable[[], _T]) -> _T:
        """Run ``action``, retrying ``database is locked`` with backoff until the deadline.

        The busy timeout already waits inside SQLite; this loop is for when another
        process holds the lock longer than that, so the caller never sees it.
        """
        deadline = time.monotonic() + self._settings.lock_timeout_s
        delay = 0.001
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if not is_locked_error(exc) or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _deliver(self, tasks: list[_Task]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Task]] = {}
        for task in tasks:
            by_loop.setdefault(task.loop, []).append(task)
        for loop, mine in by_loop.items():
            # A closed loop raises RuntimeError: nobody is waiting there any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, mine)

    def _run_alone(self, cursor: sqlite3.Cursor, task: _Task) -> None:
        if self._transactional:
            self._run_group(cursor, [task])
            return
        try:
            task.outcome = (True, self._retry_locked(lambda: task.fn(cursor, *task.args)))
        except BaseException as exc:
            task.outcome = (False, exc)
        self._deliver([task])

    def _begin(self, cursor: sqlite3.Cursor) -> None:
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not is_locked_error(exc):
                raise
            self._retry_locked(lambda: cursor.execute("BEGIN IMMEDIATE"))

    def _run_group(self, cursor: sqlite3.Cursor, group: list[_Task]) -> None:
        try:
            self._begin(cursor)
        except BaseException as exc:
            for task in group:
                task.outcome = (False, exc)
            self._deliver(group)
            return
        try:
            for task in group:
                try:
                    task.outcome = (True, task.fn(cursor, *task.args))
                except EventStoreError as exc:
                    task.outcome = (False, exc)
            cursor.execute("COMMIT")
        except BaseException as exc:
            if cursor.connection.in_transaction:
                cursor.execute("ROLLBACK")
            if len(group) == 1:
                group[0].outcome = (False, exc)
            else:
                for task in group:
                    self._run_group(cursor, [task])
                return
        self._deliver(group)
