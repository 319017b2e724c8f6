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
    "CancellationIgnored",
    "GuardInterrupt",
    "LoopStalled",
    "NEVER_YIELDED",
    "REQUIRES_MARKER",
    "URL_MARKER",
    "StoreFactory",
    "contract_test",
    "hang_message",
    "needs_store_url",
    "requires",
]

import asyncio
import contextlib
import ctypes
import functools
import inspect
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Final, TypeVar

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
        try:
            with _Watchdog(self.timeout, self.runner.get_loop()):
                return self.runner.run(_guarded(coro, self.timeout))
        except GuardInterrupt as exc:
            # Raised by the watchdog outside the test's coroutine: in the loop itself.
            pytest.fail(hang_message(self.timeout, [exc.note]), pytrace=False)

    def close(self) -> None:
        """Close the test's loop (cancelling its tasks), under the time guard too."""
        try:
            loop = self.runner.get_loop()
        except RuntimeError:  # closed already
            return
        try:
            with _Watchdog(self.timeout, loop):
                self.runner.close()
        except GuardInterrupt:
            # Runner.close closes the loop in a ``finally``, so it is closed now.
            pytest.fail(
                f"closing the test's event loop did not finish within {self.timeout:g}s: "
                "a task ignored its cancellation, or kept running without suspending",
                pytrace=False,
            )


def hang_message(seconds: float, notes: list[str]) -> str:
    """What the time guard reports: a hang, and what was being awaited when it fired."""
    detail = "".join(f"\n  - {note}" for note in notes)
    return (
        f"did not finish within {seconds:g}s: the store hung (an event never arrived, "
        "or a lock was never released); raise --eventstore-timeout if the backend is "
        f"merely slow{detail}"
    )


#: The note of a hang whose event loop stopped turning (the watchdog interrupted it).
NEVER_YIELDED: Final = (
    "the event loop never turned: a coroutine kept running without suspending (for "
    "example a read loop whose awaits never block, getting data forever), so the "
    "suite interrupted it from a watchdog thread"
)
#: The note of a hang that went on although the loop turned (cancellation ignored).
CANCEL_IGNORED: Final = (
    "the test went on after it was cancelled at the deadline (a task caught its "
    "cancellation and carried on), so the suite interrupted it from a watchdog thread"
)


async def _guarded(coro: Coroutine[Any, Any, _T], seconds: float) -> _T:
    with hang_notes() as notes:
        try:
            async with asyncio.timeout(seconds):
                return await coro
        except TimeoutError:
            # A hang is how many subscribe and concurrency bugs show up; name it as
            # one instead of leaving the suite to block forever.
            pytest.fail(hang_message(seconds, notes))
        except GuardInterrupt as exc:
            pytest.fail(hang_message(seconds, [*notes, exc.note]))


class GuardInterrupt(BaseException):
    """Raised by the watchdog in the thread of a test that outlived its time guard.

    A ``BaseException`` (like ``CancelledError``) so that a backend's ``except
    Exception`` does not swallow it.
    """

    note: ClassVar[str] = NEVER_YIELDED


class LoopStalled(GuardInterrupt):
    """The event loop did not turn: ``asyncio.timeout`` could not fire."""


class CancellationIgnored(GuardInterrupt):
    """The loop turned, but the test did not end when the timeout cancelled it."""

    note: ClassVar[str] = CANCEL_IGNORED


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> bool:
    """Raise ``exc`` in thread ``thread_id`` at its next bytecode (``None`` cancels it).

    CPython's ``PyThreadState_SetAsyncExc``: the exception is raised between two
    bytecodes of that thread, so it reaches a loop that never awaits anything that
    suspends, where a cancellation (delivered only when the coroutine suspends) and
    ``asyncio.timeout`` (a callback of the very loop that is stuck) cannot.
    """
    api = getattr(ctypes, "pythonapi", None)
    if api is None:  # not CPython: only the asyncio-level guard applies
        return False
    done = api.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None
    )
    return bool(done == 1)


class _Watchdog:
    """Interrupts the calling thread if it is still inside the block after the deadline.

    The asyncio-level guard (``asyncio.timeout`` in :func:`_guarded`) fires first and
    gives the better message (what a subscription had delivered), but only if the
    loop turns. After the deadline this thread checks that it does (a callback
    posted to the loop must run within a grace period):

    - if it does not, it raises :class:`LoopStalled` in the thread running the loop,
      at once: a coroutine that never suspends fails a grace period after its
      deadline instead of hanging the run;
    - if it does, the timeout has its chance; should the test still go on for ten
      more grace periods (it caught its cancellation), :class:`CancellationIgnored`.

    It fires again every grace period until the block ends (for code that catches
    and carries on). It cannot interrupt a thread blocked inside one C call (a
    synchronous socket read with no timeout, say): the exception is raised when
    that call returns. Without ``ctypes.pythonapi`` (not CPython) it does nothing.
    """

    _PATIENCE: Final = 10

    def __init__(self, seconds: float, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._target = threading.get_ident()
        self._loop = loop
        self._fired = False
        self._deadline = seconds
        self._grace = min(1.0, max(0.05, seconds / 10))
        self._done = threading.Event()
        self._lock = threading.Lock()
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
        # A GuardInterrupt may arrive while this runs (the deadline passed as the
        # block ended): finish anyway, so none is raised after the block. Once
        # ``_done`` is set under the lock the watchdog fires no more, and cancelling
        # the pending one leaves none behind.
        while True:
            try:
                with self._lock:
                    self._done.set()
                    if self._fired:
                        _raise_in(self._target, None)
                break
            except GuardInterrupt:
                continue
        self._thread.join()

    def _watch(self) -> None:
        if self._done.wait(self._deadline):
            return
        patience = self._PATIENCE
        while True:
            turning = self._loop_turns()
            if self._done.is_set():
                return
            if turning and patience > 0:
                patience -= 1
                if self._done.wait(self._grace):
                    return
                continue
            with self._lock:
                if self._done.is_set():
                    return
                if not _raise_in(self._target, CancellationIgnored if turning else LoopStalled):
                    return
                self._fired = True
            self._wake()
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
            return False
        return beat.wait(self._grace)

    def _wake(self) -> None:
        # The exception is raised when the thread next runs bytecode: a loop idle
        # in select() with nothing scheduled must be woken for that.
        if self._loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed already
            self._loop.call_soon_threadsafe(_nothing)


def _nothing() -> None:
    pass


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
