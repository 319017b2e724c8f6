"""Operator commands: tail (live, JSON and pretty), copy (resumable, --verify), serve."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import eventstore as es
import eventstore.backend as es_backend
from eventstore._cli import build_app


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_app(), list(args), env={"COLUMNS": "250"})
    return result.exit_code, result.stdout, result.stderr


def jsonl_url(path: Path) -> str:
    # A durable, multi-process store from the workspace (examples/eventstore-jsonl), so
    # the CLI and the test can share it; memory:// lives in one store object only.
    return f"jsonl://{path}"


async def _append(url: str, events: list[es.AgentEvent]) -> list[es.EventEnvelope]:
    async with es.open_store(url) as store:
        return [await store.append(e) for e in events]


def _run(run_id: es.RunId, deltas: int, terminal: bool = True) -> list[es.AgentEvent]:
    events: list[es.AgentEvent] = [
        es.RunStarted(run_id=run_id, session_id=es.SessionId.new(), provider="p", model="m")
    ]
    events += [es.TextDelta(run_id=run_id, delta=f"d{i}") for i in range(deltas)]
    if terminal:
        events.append(es.RunCompleted(run_id=run_id, finish_reason=es.FinishReason.STOP, iterations=1))
    return events


def test_tail_json_prints_each_envelope_once_and_ends_at_terminal(tmp_path: Path) -> None:
    url, run_id = jsonl_url(tmp_path), es.RunId.new()
    stored = asyncio.run(_append(url, _run(run_id, 5)))
    code, out, _ = invoke("tail", url, str(run_id), "--json")
    assert code == 0
    assert [es_backend.decode_envelope(line) for line in out.splitlines()] == stored
    code, out, _ = invoke("tail", url, str(run_id), "--json", "--after", "4")
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [5, 6, 7]


def test_tail_pretty_shows_types_and_rejects_bad_run_ids(tmp_path: Path) -> None:
    url, run_id = jsonl_url(tmp_path), es.RunId.new()
    asyncio.run(_append(url, _run(run_id, 2)))
    code, out, _ = invoke("tail", url, str(run_id))
    assert code == 0
    assert "RunStarted" in out and "RunCompleted" in out and "'d1'" in out
    code, _, err = invoke("tail", url, "not-a-run")
    assert code == 2
    assert "RUN_ID must be a UUID" in err


def test_tail_follows_a_live_run_until_its_terminal_event(tmp_path: Path) -> None:
    url, run_id = jsonl_url(tmp_path), es.RunId.new()
    events = _run(run_id, 6)
    asyncio.run(_append(url, events[:2]))
    tail = subprocess.Popen(
        [sys.executable, "-m", "eventstore._cli", "tail", url, str(run_id), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)  # let it catch up and start waiting; appends below arrive live
        for event in events[2:]:
            asyncio.run(_append(url, [event]))
        out, err = tail.communicate(timeout=60)
    finally:
        tail.kill()
    assert tail.returncode == 0, err
    assert [json.loads(line)["seq"] for line in out.splitlines()] == list(range(1, 9))


def test_copy_verify_and_rerun_without_duplicates(tmp_path: Path) -> None:
    src, dst = jsonl_url(tmp_path / "a"), jsonl_url(tmp_path / "b")
    first, second = es.RunId.new(), es.RunId.new()
    asyncio.run(_append(src, _run(first, 3)))
    asyncio.run(_append(src, _run(second, 10)))
    code, out, _ = invoke("copy", src, dst, "--run", str(first), "--verify")
    assert code == 0, out
    assert "copied 5 events of 1 runs" in out
    code, out, _ = invoke("copy", src, dst, "--verify")
    assert code == 0, out
    assert "copied 12 events of 2 runs" in out and "(5 already there)" in out
    assert "verify: 2 of 2 runs identical" in out

    async def diverge_at_the_start() -> None:
        # Same length and same last envelope, different first one: a resumed copy
        # compares the whole stored run, so it refuses instead of calling it copied.
        async with es.open_store(src) as source, es.open_store(dst) as destination:
            await destination.delete_run(first)
            await destination.append(es.TextDelta(run_id=first, delta="only in the destination"))
            await destination.import_envelopes((await source.list_after(first, None, 100))[1:])

    asyncio.run(diverge_at_the_start())
    code, out, err = invoke("copy", src, dst, "--run", str(first), "--verify")
    assert code == 2
    assert f"run {first}: the destination's envelope at seq 1 differs" in err

    async def append_only_in_destination() -> None:
        async with es.open_store(dst) as store:
            await store.append(es.TextDelta(run_id=second, delta="only in the destination"))

    asyncio.run(append_only_in_destination())
    code, _, err = invoke("copy", src, dst, "--run", str(second))
    assert code == 2
    assert f"run {second}: the destination holds 13 events, the source only 12" in err


def test_copy_into_a_store_without_import_is_a_clear_error(tmp_path: Path) -> None:
    code, _, err = invoke("copy", jsonl_url(tmp_path), "ghost://nowhere")
    assert code == 2
    assert "ghost://" in err


def test_serve_rejects_a_bad_url_before_starting() -> None:
    code, _, err = invoke("serve", "nope://x", "--port", "0")
    assert code == 2
    assert "no installed backend serves nope://" in err


def test_migrate_applies_pending_steps_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/events.db"
    code, out, err = invoke("migrate", url)
    assert code == 0, err
    assert "applied:" in out and "step(s) applied" in out
    code, out, _ = invoke("migrate", url)
    assert code == 0
    assert "nothing to do" in out and "applied:" not in out


def test_migrate_takes_the_url_every_other_command_takes(tmp_path: Path) -> None:
    # `telemetry=1` is open_store's option, not the backend's; one URL serves all.
    url = f"sqlite+aiosqlite:///{tmp_path}/events.db?telemetry=1"
    code, out, err = invoke("migrate", url)
    assert code == 0, err
    assert "step(s) applied" in out


def test_migrate_on_a_backend_without_schema_is_a_clear_error() -> None:
    code, _, err = invoke("migrate", "memory://")
    assert code == 2
    assert "keeps no schema to migrate" in err


def test_serve_with_an_unreachable_backend_is_one_line_and_status_2() -> None:
    code, _, err = invoke("serve", "redis://127.0.0.1:1/0", "--port", "0")
    assert code == 2
    assert "Traceback" not in err
    assert "unavailable" in err


def test_copy_with_a_bad_run_id_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = invoke("copy", jsonl_url(tmp_path / "a"), jsonl_url(tmp_path / "b"), "--run", "nope")
    assert code == 2
    assert "--run" in err and "Traceback" not in err


def test_check_with_an_unusable_url_is_status_2() -> None:
    code, _, err = invoke("check", "bogus://x")
    assert code == 2
    assert "no installed backend serves bogus://" in err


def test_copy_of_a_run_the_source_lacks_is_a_usage_error(tmp_path: Path) -> None:
    src, dst = jsonl_url(tmp_path / "a"), jsonl_url(tmp_path / "b")
    asyncio.run(_append(src, _run(es.RunId.new(), 3)))
    missing = es.RunId.new()
    code, out, err = invoke("copy", src, dst, "--run", str(missing), "--verify")
    assert code == 2
    assert f"--run {missing}: jsonl://" in err and "has no such run" in err
    assert "verify" not in out


def test_copy_from_an_empty_source_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = invoke("copy", jsonl_url(tmp_path / "empty"), jsonl_url(tmp_path / "b"))
    assert code == 2
    assert "holds no runs: nothing to copy" in err


@pytest.mark.parametrize("as_json", [True, False])
def test_tail_into_a_reader_that_leaves_early_exits_0_quietly(
    tmp_path: Path, as_json: bool
) -> None:
    # `eventstore tail URL RUN | head -1`: under `set -o pipefail` a non-zero status
    # would fail the script although the reader got what it asked for.
    url = jsonl_url(tmp_path)
    run_id = es.RunId.new()
    asyncio.run(_append(url, _run(run_id, 3000, terminal=True)))
    command = [sys.executable, "-m", "eventstore._cli", "tail", url, str(run_id)]
    tail = subprocess.Popen(
        [*command, *(["--json"] if as_json else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert tail.stdout is not None and tail.stderr is not None
    first = tail.stdout.readline()
    assert b"1" in first
    tail.stdout.close()
    assert tail.wait(timeout=60) == 0
    assert tail.stderr.read() == b""


def test_a_broken_pipe_that_is_not_our_output_is_still_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only a closed stdout means "the reader has what it wanted"; a BrokenPipeError
    # from anywhere else (a backend's socket, say) must not end with status 0.
    def broken() -> es_backend.Registry:
        raise BrokenPipeError("a socket of some driver")

    monkeypatch.setattr(es_backend, "default_registry", broken)
    result = CliRunner().invoke(build_app(), ["backends"])
    assert result.exit_code != 0
    assert isinstance(result.exception, BrokenPipeError)
