"""``eventstore copy --verify`` keeps and compares every digit of every time.

A store written by the Rust runtime holds nanosecond times (chrono writes 9 fraction
digits); a copy through Python must keep them, and the verification must see a change
of one digit of one stored time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

import eventstore as es
import eventstore.copy
from eventstore._cli import build_app
from eventstore.backend import encode_envelope
from eventstore.events import decode_event, format_time

SERDE = Path(__file__).parent / "data" / "serde"


def _serde_events() -> list[es.AgentEvent]:
    lines = [
        line
        for name in ("events.jsonl", "timestamps.jsonl")
        for line in (SERDE / name).read_text(encoding="utf-8").split("\n")
    ]
    run_id = es.RunId.new()
    events = []
    for line in lines:
        if not line:
            continue
        event = decode_event(line)
        if isinstance(event, es.UnknownEvent):
            continue
        # One run (the vectors name several): same times, bytes and fields otherwise.
        events.append(event.model_copy(update={"run_id": run_id}))
    return events


def _copy(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), ["copy", *args], env={"COLUMNS": "250"})
    return result.exit_code, result.stdout + result.stderr


@pytest.fixture(autouse=True)
def _no_url_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("EVENTSTORE_URL", raising=False)
    monkeypatch.chdir(tmp_path)


def test_copy_verify_keeps_nanoseconds_and_sees_one_changed_digit(tmp_path: Path) -> None:
    source = f"jsonl://{tmp_path / 'source'}"
    destination = f"sqlite+aiosqlite:///{tmp_path / 'destination.db'}"
    events = _serde_events()
    nanos = [e.timestamp.timestamp(unit="nanosecond") for e in events]
    assert any(n % 1000 for n in nanos), "the vectors hold nanosecond times"

    async def fill() -> list[es.EventEnvelope]:
        async with es.open_store(source) as store:
            return await store.append_batch(events)

    written = asyncio.run(fill())
    run_id = written[0].run_id

    status, output = _copy("--from", source, "--to", destination, "--verify")
    assert status == 0, output
    assert "identical" in output

    async def read_back() -> list[es.EventEnvelope]:
        async with es.open_store(destination) as store:
            return await store.list_after(run_id, 0, 1000)

    copied = asyncio.run(read_back())
    assert [encode_envelope(e) for e in copied] == [encode_envelope(e) for e in written]

    # Change the last digit of one event's timestamp, under the destination.
    target = next(e for e in copied if e.event.timestamp.timestamp(unit="nanosecond") % 1000)
    stamp = format_time(target.event.timestamp)
    last = stamp[-2]
    changed = stamp[:-2] + ("1" if last != "1" else "2") + "Z"
    text = encode_envelope(target)
    assert text.count(f'"timestamp":"{stamp}"') == 1

    async def tamper() -> None:
        async with es.open_store(destination) as store:
            backdoor = store.backdoor()
            assert backdoor is not None
            await backdoor.replace(
                run_id,
                target.seq,
                text.replace(f'"timestamp":"{stamp}"', f'"timestamp":"{changed}"'),
            )

    asyncio.run(tamper())

    async def verify() -> list[es.copy.RunComparison]:
        async with es.open_store(source) as left, es.open_store(destination) as right:
            return await es.copy.verify_runs(left, right)

    (comparison,) = asyncio.run(verify())
    assert comparison.first_difference == target.seq and not comparison.identical

    # The CLI: a resumed copy compares what the destination holds before it writes,
    # and refuses (exit status 2) naming the run and the seq.
    status, output = _copy("--from", source, "--to", destination, "--verify")
    assert status == 2, output
    assert str(run_id) in output
    assert f"seq {target.seq} differs" in output
