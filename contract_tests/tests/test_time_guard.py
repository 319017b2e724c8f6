"""The per-test time guard never lets a test hang the run.

A stalled subscription is caught by the asyncio-level guard, which fails the test.
A coroutine that never suspends (so the event loop never turns and
``asyncio.timeout`` cannot fire), or a test that ignores its cancellation, cannot be
stopped from inside: the watchdog thread names the test and ends the run with
``STALL_EXIT_STATUS``. Each case runs in a subprocess with a timeout of its own, so
a guard that failed would fail this test rather than hang it.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from eventstore_contract._harness import (
    CANCEL_IGNORED,
    NEVER_YIELDED,
    STALL_EXIT_STATUS,
    _Watchdog,
)

_CASES = """
import asyncio

import pytest
from eventstore import EventId, RunId, TextDelta
from eventstore.backend import new_envelope
from eventstore.memory import MemoryEventStore
from eventstore_contract import StoreContract, contract_test
from whenever import Instant


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
                event=TextDelta(run_id=run_id, delta="x"), emitted_at=Instant.now(),
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


class SpinningAppendStore(MemoryEventStore):
    # An append that never suspends and never returns.
    async def _append(self, run_id, events, expected_seq):
        while True:
            pass


class TestSpinningMachine(StoreContract):
    @pytest.fixture
    def store_factory(self):
        return SpinningAppendStore


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

_CASE_NAMES = [
    # The loop never turns: the watchdog names the test and ends the run.
    ("TestSpinning", "test_stuck_spin_in_body", NEVER_YIELDED),
    ("TestSpinning", "test_stuck_spinning_subscription", NEVER_YIELDED),
    ("TestSpinning", "test_stuck_spinning_background_task", NEVER_YIELDED),
    # The state machine's steps run under the same watchdog.
    ("TestSpinningMachine", "test_stateful_store_matches_reference_model", NEVER_YIELDED),
    # The loop turns but the test ignores its cancellation: the same, another reason.
    ("TestSpinning", "test_stuck_swallowed_cancellation", CANCEL_IGNORED),
    # Reads never suspend, but the core subscribe yields to the loop after each page:
    # the asyncio-level timeout fails the test and the run goes on.
    ("TestEndless", "test_stuck_endless_subscription", None),
]


@pytest.mark.parametrize(("cls", "name", "note"), _CASE_NAMES)
def test_a_stuck_test_fails_or_ends_the_run_naming_itself(
    tmp_path: pytest.TempPathFactory, cls: str, name: str, note: str | None
) -> None:
    where = tmp_path
    (where / "stuck_cases.py").write_text(_CASES)  # type: ignore[operator]
    (where / "pytest.ini").write_text("[pytest]\n")  # type: ignore[operator]
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
            f"stuck_cases.py::{cls}::{name}",
        ],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,  # a guard that does not work fails here instead of hanging
        check=False,
    )
    output = done.stdout + done.stderr
    # Within the budget plus the watchdog's grace periods and interpreter start-up.
    assert time.monotonic() - started < 60
    if note is None:
        assert done.returncode == pytest.ExitCode.TESTS_FAILED, output
        assert f"FAILED stuck_cases.py::{cls}::{name}" in done.stdout, output
        assert f"did not finish within {_TIMEOUT:g}s" in done.stdout, output
    else:
        assert done.returncode == STALL_EXIT_STATUS, output
        assert (
            f"stuck_cases.py::{cls}::{name} did not finish within {_TIMEOUT:g}s" in done.stderr
        ), output
        assert note in done.stderr, output


def test_watchdog_does_nothing_when_the_block_ends_in_time() -> None:
    # Had it fired, this process would have ended.
    with _Watchdog(5.0):
        time.sleep(0.01)
    time.sleep(0.05)
