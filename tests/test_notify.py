"""RunNotifier: wake-ups are never lost, and listeners that went away leave nothing."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from eventstore import RunId
from eventstore.backend import RunNotifier


async def _listen_briefly(notifier: RunNotifier, run_id: RunId) -> None:
    woken = notifier.listen(run_id)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(woken.wait(), 0.001)


async def _runs_listened_to_and_never_written_are_forgotten() -> None:
    # A server streaming runs nobody writes through this process (another process
    # appends, or the ids are random) must not grow the table per run id.
    notifier = RunNotifier()
    for _ in range(1000):
        await _listen_briefly(notifier, RunId.new())
    assert len(notifier._events) < 200


async def _a_waiting_listener_survives_sweeps_and_is_woken() -> None:
    notifier = RunNotifier()
    run_id = RunId.new()
    woken = notifier.listen(run_id)
    waiting = asyncio.ensure_future(woken.wait())
    for _ in range(500):  # enough new runs to trigger several sweeps
        await _listen_briefly(notifier, RunId.new())
    assert not waiting.done()
    notifier.notify(run_id)
    await asyncio.wait_for(waiting, 1)


async def _a_notify_between_listen_and_wait_is_not_lost() -> None:
    notifier = RunNotifier()
    run_id = RunId.new()
    woken = notifier.listen(run_id)
    notifier.notify(run_id)
    await asyncio.wait_for(woken.wait(), 1)


async def _a_notify_from_another_thread_wakes_this_loop() -> None:
    notifier = RunNotifier()
    run_id = RunId.new()
    woken = notifier.listen(run_id)
    thread = threading.Thread(target=notifier.notify, args=(run_id,))
    thread.start()
    await asyncio.wait_for(woken.wait(), 5)
    thread.join()


def test_runs_listened_to_and_never_written_are_forgotten() -> None:
    asyncio.run(_runs_listened_to_and_never_written_are_forgotten())


def test_a_waiting_listener_survives_sweeps_and_is_woken() -> None:
    asyncio.run(_a_waiting_listener_survives_sweeps_and_is_woken())


def test_a_notify_between_listen_and_wait_is_not_lost() -> None:
    asyncio.run(_a_notify_between_listen_and_wait_is_not_lost())


def test_a_notify_from_another_thread_wakes_this_loop() -> None:
    asyncio.run(_a_notify_from_another_thread_wakes_this_loop())
