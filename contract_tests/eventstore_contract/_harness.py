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
    "REQUIRES_MARKER",
    "URL_MARKER",
    "StoreFactory",
    "contract_test",
    "hang_message",
    "needs_store_url",
    "requires",
]

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
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
        return self.runner.run(_guarded(coro, self.timeout))


def hang_message(seconds: float, notes: list[str]) -> str:
    """What the time guard reports: a hang, and what was being awaited when it fired."""
    detail = "".join(f"\n  - {note}" for note in notes)
    return (
        f"did not finish within {seconds:g}s: the store hung (an event never arrived, "
        "or a lock was never released); raise --eventstore-timeout if the backend is "
        f"merely slow{detail}"
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
