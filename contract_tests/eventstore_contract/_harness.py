"""What every contract test runs on: its event loop, its time guard, its markers.

Contract tests are written as ``async def`` methods decorated with
:func:`contract_test`; the decorator turns each into a plain sync test that runs the
body on the test's own :class:`asyncio.Runner`, so the suite needs no asyncio pytest
plugin and a store is always opened, used and closed on one loop.
"""

from __future__ import annotations

__all__ = [
    "BackendInfo",
    "ContractEnv",
    "DEFAULT_TIMEOUT",
    "CANCEL_IGNORED",
    "NEVER_YIELDED",
    "STALL_EXIT_STATUS",
    "REQUIRES_MARKER",
    "URL_MARKER",
    "StoreFactory",
    "contract_test",
    "hang_message",
    "needs_store_url",
    "requires",
]

import asyncio
import faulthandler
import functools
import inspect
import os
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, TypeVar

import pytest
from hypothesis import settings

from eventstore import Capability, EventStore

from ._support import hang_notes

_T = TypeVar("_T")

#: A zero-argument callable returning a new, unopened store on the same storage.
StoreFactory = Callable[[], EventStore]

#: Marker naming the capabilities a test needs: ``@requires(Capability.DURABLE)``.
REQUIRES_MARKER: Final = "eventstore_requires"
#: Marker of tests that need the ``store_url`` fixture (they spawn processes).
URL_MARKER: Final = "eventstore_needs_url"
#: Seconds a test body may run before it is failed as hung (``--eventstore-timeout``).
DEFAULT_TIMEOUT: Final = 60.0

_Marked = TypeVar("_Marked", bound=Callable[..., Any])


def _on_tests(mark: pytest.MarkDecorator) -> Callable[[_Marked], _Marked]:
    # A mark on a mixin class would be inherited by StoreContract and so reach every
    # test of the suite; on a class, mark its own test methods instead.
    def apply(target: _Marked) -> _Marked:
        if isinstance(target, type):
            for name, value in list(vars(target).items()):
                if name.startswith("test_") and callable(value):
                    setattr(target, name, mark(value))
            return target
        return mark(target)  # type: ignore[no-any-return]

    return apply


def requires(*capabilities: Capability) -> Callable[[_Marked], _Marked]:
    """Run a test (or a class's tests) only on backends declaring ``capabilities``."""
    return _on_tests(getattr(pytest.mark, REQUIRES_MARKER)(*capabilities))


def needs_store_url(target: _Marked) -> _Marked:
    """Skip a test (or a class's tests) when the subclass gives no ``store_url``."""
    return _on_tests(getattr(pytest.mark, URL_MARKER))(target)


@dataclass(frozen=True)
class BackendInfo:
    """Name and declared capabilities of the backend under test."""

    name: str
    capabilities: frozenset[Capability]


@dataclass(frozen=True)
class ContractEnv:
    """Per-test context: the event loop runner, the hang guard, hypothesis settings."""

    runner: asyncio.Runner
    timeout: float
    hypothesis: settings
    backend: BackendInfo

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on this test's loop, failing it if it outlives the time guard."""
        with _Watchdog(self.timeout, self.runner.get_loop()):
            return self.runner.run(_guarded(coro, self.timeout))

    def close(self) -> None:
        """Close the test's loop (cancelling its tasks), under the time guard too."""
        try:
            loop = self.runner.get_loop()
        except RuntimeError:  # closed already
            return
        with _Watchdog(self.timeout, loop):
            self.runner.close()


def hang_message(seconds: float, notes: list[str]) -> str:
    """What the time guard reports: a hang, and what was being awaited when it fired."""
    detail = "".join(f"\n  - {note}" for note in notes)
    return (
        f"did not finish within {seconds:g}s: the store hung (an event never arrived, "
        "or a lock was never released); raise --eventstore-timeout if the backend is "
        f"merely slow{detail}"
    )


#: Why the watchdog ended the run: the event loop stopped turning.
NEVER_YIELDED: Final = (
    "the event loop never turned: a coroutine kept running without suspending (for "
    "example a read loop whose awaits never block, getting data forever)"
)
#: Why the watchdog ended the run: the test outlived its cancellation.
CANCEL_IGNORED: Final = (
    "the test went on after it was cancelled at the deadline (a task caught its "
    "cancellation and carried on)"
)
#: The exit status of a run the watchdog ended (EX_SOFTWARE).
STALL_EXIT_STATUS: Final = 70


async def _guarded(coro: Coroutine[Any, Any, _T], seconds: float) -> _T:
    with hang_notes() as notes:
        try:
            async with asyncio.timeout(seconds):
                return await coro
        except TimeoutError:
            # A hang is how many subscribe and concurrency bugs show up; name it as
            # one instead of leaving the suite to block forever.
            pytest.fail(hang_message(seconds, notes))


def _original_stderr() -> int:
    # The plugin is imported before pytest starts capturing: keep the real stderr.
    try:
        return os.dup(2)
    except OSError:
        return 2


_STDERR: Final = _original_stderr()


class _Watchdog:
    """Ends the run if a test outlives its time guard and asyncio cannot stop it.

    The asyncio-level guard (``asyncio.timeout`` in :func:`_guarded`) fires first and
    gives the better message (what a subscription had delivered), but only if the
    loop turns. After the deadline this thread checks that it does (a callback
    posted to the loop must run within a grace period). If the loop stays still for
    :attr:`STALL_SECONDS`, or the test goes on for :attr:`OVERRUN_SECONDS` (or its
    timeout, if longer) although the loop turns (it caught its cancellation), the
    run cannot end by itself: the watchdog writes which test hung
    and why, with every thread's stack, to stderr and ends the process with
    :data:`STALL_EXIT_STATUS`. The suite then fails; it never hangs.

    Nothing is injected into the test's thread: an exception raised there from
    outside could land anywhere, pytest's own reporting included.
    """

    #: How long the loop must stay still, past the deadline, before the run ends: a
    #: loop that is merely busy (a slow step on a loaded machine) turns well within
    #: it, a coroutine that never suspends never does.
    STALL_SECONDS: Final = 5.0
    #: How long a test may go on after its cancellation at the deadline (cleanup on
    #: a loaded machine) before the run ends.
    OVERRUN_SECONDS: Final = 10.0

    def __init__(self, seconds: float, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self._deadline = seconds
        self._grace = min(1.0, max(0.05, seconds / 10))
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name="eventstore-contract-time-guard", daemon=True
        )

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        if self._done.wait(self._deadline):
            return
        overrun_until = time.monotonic() + max(self.OVERRUN_SECONDS, self._deadline)
        still_since: float | None = None
        while not self._done.is_set():
            turning = self._loop_turns()
            if self._done.is_set():
                return
            now = time.monotonic()
            if turning:
                still_since = None
                if now > overrun_until:
                    self._end_run(CANCEL_IGNORED)
            else:
                still_since = now if still_since is None else still_since
                if now - still_since >= self.STALL_SECONDS:
                    self._end_run(NEVER_YIELDED)
            if self._done.wait(self._grace):
                return

    def _loop_turns(self) -> bool:
        """True if a callback posted to the loop runs within the grace period."""
        if self._loop is None:
            return False
        beat = threading.Event()
        try:
            self._loop.call_soon_threadsafe(beat.set)
        except RuntimeError:  # the loop is closed
            return True
        return beat.wait(self._grace)

    def _end_run(self, why: str) -> None:
        test = os.environ.get("PYTEST_CURRENT_TEST", "a contract test").removesuffix(" (call)")
        message = (
            f"\neventstore contract: {test} did not finish within {self._deadline:g}s and "
            f"cannot be stopped: {why}. Ending the run (exit status {STALL_EXIT_STATUS}).\n"
        )
        # pytest's capture would keep it in a file that nobody reads after the exit.
        os.write(_STDERR, message.encode())
        faulthandler.dump_traceback(file=_STDERR, all_threads=True)
        os._exit(STALL_EXIT_STATUS)


def contract_test(
    body: Callable[..., Coroutine[Any, Any, None]],
) -> Callable[..., None]:
    """Turn ``async def test_x(self, <fixtures>)`` into a sync test on its own loop.

    The wrapper asks pytest for the body's fixtures plus ``eventstore_env``, and
    runs the body on ``eventstore_env.runner`` under the time guard.
    """
    signature = inspect.signature(body)
    params = list(signature.parameters.values())
    wants_env = "eventstore_env" in signature.parameters
    if not wants_env:
        params.append(
            inspect.Parameter(
                "eventstore_env", inspect.Parameter.KEYWORD_ONLY, annotation=ContractEnv
            )
        )

    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        env: ContractEnv = kwargs["eventstore_env"] if wants_env else kwargs.pop("eventstore_env")
        env.run(body(*args, **kwargs))

    # pytest reads fixture names from __signature__ before following __wrapped__.
    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    return wrapper
