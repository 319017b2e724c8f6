"""One look at the storage for every waiting subscriber of a store: the shared poller.

A live subscriber that has read its run to the end waits for the store's notifier
(:class:`~._notify.RunNotifier`), which hears of every write made through the same
store object. Writes by other processes or other store objects are found by
looking at the storage. Looking once per subscriber costs a query per subscriber
per poll, which with a thousand subscribers is thousands of queries a second; here
each event loop of a store has one :class:`Poller` task that, every round, asks the
backend for the last seq of *every* run waited on in one call (``_last_seqs``) and
notifies each run whose last seq is not the one its subscribers wait after: higher
(new events) or lower (the run was deleted). The subscribers then read through
``list_after`` as before: a wake-up is only a hint.

Rounds:

* a **full round** looks at every waited run, ``_poll_interval(idle)`` seconds after
  the previous one (``idle``: full rounds in a row that found nothing; the default
  backs off from 5 ms to 100 ms, a backend with a wake-up of its own returns a long
  safety interval);
* a **recheck** looks only at the runs that got a new waiter since the last round,
  :data:`RECHECK_DELAY` after the first of them: a subscriber's last read and its
  registration are not atomic, and an append landing in between must not wait for
  the next full round. Waiters of a backend whose own wake-up cannot miss such an
  append (Redis's shared reader reads from the seq registered) skip it.

The task starts with the first waiter of its loop, ends when no one has waited for
:data:`LINGER` seconds, and is cancelled (and awaited) by ``close()``. A failed look
wakes every waiter (their reads decide whether the storage is gone) and the next
round backs off, up to a second, so a failing backend is no busy loop.
"""

from __future__ import annotations

__all__ = ["LINGER", "RECHECK_DELAY", "Poller", "Watch"]

import asyncio
import contextlib
import contextvars
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from ._ids import RunId

if TYPE_CHECKING:
    from ._store import EventStore

#: Seconds between a new waiter's registration and the round that rechecks its run.
RECHECK_DELAY: Final = 0.005
#: Seconds the task outlives its last waiter (a subscriber re-reading after each
#: event registers again at once; the task and its backoff state carry over).
LINGER: Final = 1.0
#: Longest back-off after failed looks, seconds.
_MAX_BACKOFF: Final = 1.0


class Watch:
    """One waiter's registration: its run and the seq it has read up to."""

    __slots__ = ("_poller", "after_seq", "run_id")

    def __init__(self, poller: Poller, run_id: RunId, after_seq: int) -> None:
        self._poller = poller
        self.run_id = run_id
        self.after_seq = after_seq

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._poller.discard(self)


class Poller:
    """The polling task of one store on one event loop, and the runs waited on."""

    def __init__(
        self,
        store: EventStore,
        loop: asyncio.AbstractEventLoop,
        on_exit: Callable[[Poller], None],
    ) -> None:
        self._store = store
        self._loop = loop
        self._on_exit = on_exit
        #: run -> {after_seq: number of waiters}
        self._runs: dict[RunId, dict[int, int]] = {}
        self._recheck: set[RunId] = set()
        self._recheck_at = math.inf
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idle = 0
        self._failures = 0
        self._failed_at = 0.0
        self._last_full = loop.time()
        #: Rounds done, full or not (tests and diagnostics).
        self.rounds = 0

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The running task, if any."""
        return self._task

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop this poller's task runs on."""
        return self._loop

    def watch(self, run_id: RunId, after_seq: int, *, recheck: bool) -> Watch:
        """Register a waiter of ``run_id`` that has read up to ``after_seq``.

        Call after ``notifier.listen(run_id)``, on this poller's loop, and leave
        the returned :class:`Watch` (a context manager) when the wait ends.
        """
        if not self._runs:
            self._changed.set()  # a lingering task starts its rounds again
        afters = self._runs.get(run_id)
        if afters is None:
            afters = self._runs[run_id] = {}
        afters[after_seq] = afters.get(after_seq, 0) + 1
        if recheck:
            if not self._recheck:
                self._recheck_at = self._loop.time() + RECHECK_DELAY
                self._changed.set()
            self._recheck.add(run_id)
        if self._task is None:
            # A context of its own: the store-wide task must not run every later look
            # under the first subscriber's contextvars (its trace span, its request).
            self._task = self._loop.create_task(
                self._run(), name="eventstore-poller", context=contextvars.Context()
            )
        return Watch(self, run_id, after_seq)

    def discard(self, watch: Watch) -> None:
        """The waiter stopped waiting (woken, cancelled, gone)."""
        afters = self._runs.get(watch.run_id)
        if afters is None:
            return
        count = afters.get(watch.after_seq, 0) - 1
        if count > 0:
            afters[watch.after_seq] = count
            return
        afters.pop(watch.after_seq, None)
        if not afters:
            del self._runs[watch.run_id]
            if not self._runs:
                self._changed.set()  # the task starts its lingering

    def cancel(self) -> asyncio.Task[None] | None:
        """Stop the task (the store closes); return it so that it can be awaited."""
        task, self._task = self._task, None
        if task is not None:
            if self._loop is _running_loop():
                task.cancel()
            else:
                with contextlib.suppress(RuntimeError):  # that loop is closed: so is the task
                    self._loop.call_soon_threadsafe(task.cancel)
        return task

    # -- the task -----------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._rounds()
        except Exception:
            # Not the backend's failure (those are handled in _round): a bug. The
            # waiters look again by themselves and register with a new task.
            self._notify(list(self._runs))
            raise
        finally:
            if self._task is asyncio.current_task():
                self._task = None
            self._on_exit(self)

    async def _rounds(self) -> None:
        loop = self._loop
        store = self._store
        while store.is_open:
            if not self._runs:
                if not await self._wait_for_change(loop.time() + LINGER) and not self._runs:
                    return
                continue
            interval = store._poll_interval(self._idle)
            next_full = math.inf if interval is None else self._last_full + interval
            due = min(next_full, self._recheck_at)
            if self._failures:
                backoff = min(0.01 * 2.0 ** min(self._failures, 7), _MAX_BACKOFF)
                due = max(due, self._failed_at + backoff)
            if due > loop.time():
                await self._wait_for_change(due)
                continue
            full = loop.time() >= next_full
            await self._round(list(self._runs) if full else list(self._recheck), full)

    async def _wait_for_change(self, deadline: float) -> bool:
        """Sleep until ``deadline`` or a registration change; whether one came."""
        self._changed.clear()
        if deadline == math.inf:
            await self._changed.wait()
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                await self._changed.wait()
                return True
        return False

    async def _round(self, runs: list[RunId], full: bool) -> None:
        self._recheck.clear()
        self._recheck_at = math.inf
        if full:
            self._last_full = self._loop.time()
        runs = [run_id for run_id in runs if run_id in self._runs]
        if not runs:
            return
        self.rounds += 1
        try:
            seqs = await self._store._last_seqs(runs)
            changed = [
                run_id
                for run_id in runs
                if (afters := self._runs.get(run_id)) is not None
                and any(after != seqs.get(run_id, 0) for after in afters)
            ]
        except Exception:
            # The wake-up is a hint: every waiter reads again, and its read decides
            # whether the storage is gone. The next round backs off.
            self._failures += 1
            self._failed_at = self._loop.time()
            self._notify(list(self._runs))
            return
        self._failures = 0
        if changed:
            self._idle = 0
            self._notify(changed)
        elif full:
            self._idle += 1

    def _notify(self, runs: Sequence[RunId]) -> None:
        notify = self._store._notifier.notify
        for run_id in runs:
            notify(run_id)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
