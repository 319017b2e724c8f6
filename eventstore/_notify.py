"""In-process wake-ups for live ``subscribe``."""

from __future__ import annotations

__all__ = ["RunNotifier"]

import asyncio
import contextlib
import threading

from ._ids import RunId

_Waiters = dict[asyncio.AbstractEventLoop, asyncio.Event]


class RunNotifier:
    """Wakes the tasks waiting for new events of a run in this process.

    Waiters must call :meth:`listen` *before* checking for new events and then wait
    on the returned event: an append that lands between the check and the wait has
    already set it, so no wake-up is lost.

    A store may be used from several event loops (threads): each loop gets its own
    event, and a notification from another thread is handed to the waiter's loop.
    """

    __slots__ = ("_events", "_lock")

    def __init__(self) -> None:
        self._events: dict[RunId, _Waiters] = {}
        self._lock = threading.Lock()

    def listen(self, run_id: RunId) -> asyncio.Event:
        """The event that the next :meth:`notify` of ``run_id`` sets (call in a task)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            waiters = self._events.setdefault(run_id, {})
            event = waiters.get(loop)
            if event is None:
                event = waiters[loop] = asyncio.Event()
        return event

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
    for loop, event in waiters.items():
        if loop is current:
            event.set()
        else:
            # asyncio.Event is not thread-safe; a closed loop has no waiter left.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)
