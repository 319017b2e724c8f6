"""In-process wake-ups for live ``subscribe``."""

from __future__ import annotations

__all__ = ["RunNotifier"]

import asyncio

from ._ids import RunId


class RunNotifier:
    """Wakes the tasks waiting for new events of a run in this process.

    Waiters must call :meth:`listen` *before* checking for new events and then wait
    on the returned event: an append that lands between the check and the wait has
    already set it, so no wake-up is lost.
    """

    __slots__ = ("_events",)

    def __init__(self) -> None:
        self._events: dict[RunId, asyncio.Event] = {}

    def listen(self, run_id: RunId) -> asyncio.Event:
        """The event that the next :meth:`notify` of ``run_id`` sets."""
        event = self._events.get(run_id)
        if event is None:
            event = self._events[run_id] = asyncio.Event()
        return event

    def notify(self, run_id: RunId) -> None:
        """Wake every current listener of ``run_id``."""
        event = self._events.pop(run_id, None)
        if event is not None:
            event.set()

    def notify_all(self) -> None:
        """Wake every listener (e.g. when the store closes)."""
        events, self._events = self._events, {}
        for event in events.values():
            event.set()
