"""In-process wake-ups for live ``subscribe``."""

from __future__ import annotations

__all__ = ["RunNotifier"]

import asyncio
import contextlib
import threading
import weakref

from ._ids import RunId

# Held weakly: a listener that stops waiting (cancelled, timed out, gone) drops the
# last reference to its event, and the entry goes with it.
_Waiters = weakref.WeakValueDictionary[asyncio.AbstractEventLoop, asyncio.Event]

# Runs whose listeners have all gone are swept out once the table has grown this much
# past its size after the previous sweep, so the sweeps cost O(1) per listen.
_SWEEP_SLACK = 64


class RunNotifier:
    """Wakes the tasks waiting for new events of a run in this process.

    Waiters must call :meth:`listen` *before* checking for new events and then wait
    on the returned event: an append that lands between the check and the wait has
    already set it, so no wake-up is lost.

    A store may be used from several event loops (threads): each loop gets its own
    event, and a notification from another thread is handed to the waiter's loop.
    """

    __slots__ = ("_events", "_lock", "_sweep_at")

    def __init__(self) -> None:
        self._events: dict[RunId, _Waiters] = {}
        self._lock = threading.Lock()
        self._sweep_at = _SWEEP_SLACK

    def listen(self, run_id: RunId) -> asyncio.Event:
        """The event that the next :meth:`notify` of ``run_id`` sets (call in a task).

        Keep the returned event while waiting: the notifier holds it only weakly, so
        runs that are listened to once and never written (a reader polling another
        process's store, say) leave nothing behind.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            waiters = self._events.get(run_id)
            if waiters is None:
                if len(self._events) >= self._sweep_at:
                    self._sweep()
                waiters = self._events[run_id] = weakref.WeakValueDictionary()
            event = waiters.get(loop)
            if event is None:
                event = waiters[loop] = asyncio.Event()
        return event

    def _sweep(self) -> None:
        # Called with the lock held.
        for run_id in [r for r, waiters in self._events.items() if not waiters]:
            del self._events[run_id]
        self._sweep_at = 2 * len(self._events) + _SWEEP_SLACK

    def notify(self, run_id: RunId) -> None:
        """Wake every current listener of ``run_id``."""
        with self._lock:
            waiters = self._events.pop(run_id, None)
        if waiters:
            _wake(waiters)

    def notify_all(self) -> None:
        """Wake every listener (e.g. when the store closes)."""
        with self._lock:
            events, self._events = self._events, {}
        for waiters in events.values():
            _wake(waiters)


def _wake(waiters: _Waiters) -> None:
    try:
        current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    for loop, event in list(waiters.items()):
        if loop is current:
            event.set()
        else:
            # asyncio.Event is not thread-safe; a closed loop has no waiter left.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)
