"""The per-test time guard never lets a test hang the run.

A stalled subscription is caught by the asyncio-level guard; a coroutine that never
suspends (so the event loop never turns and ``asyncio.timeout`` cannot fire) is
interrupted by the watchdog thread. Each case runs in a subprocess with a timeout
of its own, so a guard that failed would fail this test rather than hang it.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from eventstore_contract._harness import (
    CANCEL_IGNORED,
    NEVER_YIELDED,
    GuardInterrupt,
    _Watchdog,
)

_CASES = """
import asyncio
from datetime import UTC, datetime

import pytest
from eventstore import EventId, RunId, TextDelta
from eventstore.backend import new_envelope
from eventstore.memory import MemoryEventStore
from eventstore_contract import StoreContract, contract_test


class SpinningSubscribeStore(MemoryEventStore):
    # A subscribe whose reads never suspend and that never yields an envelope.
    async def _subscribe(self, run_id, after_seq, until_terminal):
        while True:
            await self.list_after(run_id, after_seq, 10)
        yield


class EndlessStore(MemoryEventStore):
    # list_after never suspends and returns data forever: the run never ends.
    endless = {}

    async def _list_after(self, run_id, after_seq, limit):
        return [self._at(run_id, seq) for seq in range(after_seq + 1, after_seq + limit + 1)]

    def _at(self, run_id, seq):
        if (run_id, seq) not in self.endless:
            self.endless[run_id, seq] = new_envelope(
                event_id=EventId.new(), seq=seq, run_id=run_id, session_id=None,
                event=TextDelta(run_id=run_id, delta="x"), emitted_at=datetime.now(UTC),
            )
        return self.endless[run_id, seq]


class TestSpinning(StoreContract):
    @pytest.fixture
    def store_factory(self):
        return SpinningSubscribeStore

    @contract_test
    async def test_stuck_spin_in_body(self, store):
        while True:
            pass

    @contract_test
    async def test_stuck_spinning_subscription(self, store):
        async for _ in store.subscribe(RunId.new()):
            pass

    @contract_test
    async def test_stuck_spinning_background_task(self, store):
        async def spin():
            while True:
                pass
        task = asyncio.get_running_loop().create_task(spin())
        await asyncio.sleep(3600)
        task.cancel()

    @contract_test
    async def test_stuck_swallowed_cancellation(self, store):
        # The loop turns, but the test ignores its cancellation and waits on.
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                pass


class TestEndless(StoreContract):
    @pytest.fixture
    def store_factory(self):
        return EndlessStore

    @contract_test
    async def test_stuck_endless_subscription(self, store):
        async for _ in store.subscribe(RunId.new(), until_terminal=True):
            pass
"""

_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def guarded_run(tmp_path_factory: pytest.TempPathFactory) -> pytest.RunResult:
    # One subprocess for every case (each takes about the timeout); a guard that does
    # not work makes the subprocess time out instead of hanging this run.
    where = tmp_path_factory.mktemp("guard")
    (where / "stuck_cases.py").write_text(_CASES)
    (where / "pytest.ini").write_text("[pytest]\n")
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--eventstore-timeout",
            str(_TIMEOUT),
            "-rfE",
            "-k",
            "test_stuck_",
            "stuck_cases.py",
        ],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    return pytest.RunResult(
        done.returncode, done.stdout.splitlines(), done.stderr.splitlines(), elapsed
    )


def _failure(result: pytest.RunResult, test: str) -> str:
    """The text of ``test``'s failure section."""
    text = result.stdout.str()
    start = text.find(f"_ {test} _")
    if start < 0:
        start = text.find(f".{test} _")
    assert start >= 0, text
    end = text.find("\n____", start + 1)
    return text[start : end if end > 0 else None]


_CASE_NAMES = [
    # The loop never turns: the watchdog interrupts the coroutine.
    ("TestSpinning", "test_stuck_spin_in_body", NEVER_YIELDED),
    ("TestSpinning", "test_stuck_spinning_subscription", NEVER_YIELDED),
    # The watchdog interrupts the spinning task; then the loop turns and the
    # asyncio-level timeout fails the test.
    ("TestSpinning", "test_stuck_spinning_background_task", None),
    # The loop turns but the test ignores its cancellation.
    ("TestSpinning", "test_stuck_swallowed_cancellation", CANCEL_IGNORED),
    # Reads never suspend, but the core subscribe yields to the loop after each page.
    ("TestEndless", "test_stuck_endless_subscription", None),
]


def test_every_stuck_test_fails_instead_of_hanging(guarded_run: pytest.RunResult) -> None:
    text = guarded_run.stdout.str()
    assert guarded_run.ret == pytest.ExitCode.TESTS_FAILED, text + guarded_run.stderr.str()
    for cls, name, _ in _CASE_NAMES:
        assert f"FAILED stuck_cases.py::{cls}::{name}" in text, text
    # Each within its budget plus the watchdog's grace (about 1 s here) and the
    # interpreter's start-up; a hang would have hit the subprocess timeout.
    assert guarded_run.duration < 60, guarded_run.duration


@pytest.mark.parametrize(("cls", "name", "note"), _CASE_NAMES)
def test_the_failure_names_the_hang(
    guarded_run: pytest.RunResult, cls: str, name: str, note: str | None
) -> None:
    failure = _failure(guarded_run, f"{cls}.{name}")
    assert f"did not finish within {_TIMEOUT:g}s" in failure, failure
    for other in (NEVER_YIELDED, CANCEL_IGNORED):
        # pytest wraps long lines: compare the note's first words.
        assert (other[:40] in failure) == (other == note), failure


# --- the watchdog itself ---------------------------------------------------------


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_watchdog_interrupts_a_busy_loop_and_leaves_nothing_behind() -> None:
    started = time.monotonic()
    with pytest.raises(GuardInterrupt), _Watchdog(0.05):  # noqa: PT012 - the block is the test
        while True:
            pass
    assert time.monotonic() - started < 5
    _spin(0.3)  # a second interrupt, had one been left pending, would land here


def test_watchdog_does_nothing_when_the_block_ends_in_time() -> None:
    with _Watchdog(0.05):
        pass
    _spin(0.3)


def test_watchdog_never_fires_after_its_block_even_at_the_deadline() -> None:
    # Blocks ending right around their deadline: whichever wins, nothing is raised
    # once the block is left.
    for attempt in range(30):
        try:
            with _Watchdog(0.01):
                _spin(0.01 + (attempt % 5) * 0.001)
        except GuardInterrupt:
            pass
        _spin(0.002)
    _spin(0.2)
