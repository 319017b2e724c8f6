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
from whenever import Instant

import eventstore as es
import eventstore.backend as es_backend
from eventstore._cli import build_app


@pytest.fixture(autouse=True)
def _no_url_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("EVENTSTORE_URL", raising=False)
    # The CLI's default store is ./eventstore-demo.db: keep it out of the checkout.
    monkeypatch.chdir(tmp_path)


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
        events.append(
            es.RunCompleted(run_id=run_id, finish_reason=es.FinishReason.STOP, iterations=1)
        )
    return events


def test_tail_json_prints_each_envelope_once_and_ends_at_terminal(tmp_path: Path) -> None:
    url, run_id = jsonl_url(tmp_path), es.RunId.new()
    stored = asyncio.run(_append(url, _run(run_id, 5)))
    code, out, _ = invoke("tail", url, str(run_id), "--json")
    assert code == 0
    assert [es_backend.decode_envelope(line) for line in out.splitlines()] == stored
    # serde's exact bytes: nanosecond times as chrono writes them.
    assert out.splitlines() == [es_backend.encode_envelope(e) for e in stored]
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


def test_tail_pretty_shows_the_emit_time_cut_to_milliseconds(tmp_path: Path) -> None:
    url, run_id = jsonl_url(tmp_path), es.RunId.new()
    when = Instant.from_utc(2026, 1, 1, 23, 59, 59, nanosecond=999_999_999)

    async def write() -> None:
        async with es.open_store("memory://") as source:
            stored = [await source.append(e) for e in _run(run_id, 1)]
        async with es.open_store(url) as store:
            await store.import_envelopes(
                [e.model_copy(update={"emitted_at": when}) for e in stored]
            )

    asyncio.run(write())
    code, out, _ = invoke("tail", url, str(run_id))
    assert code == 0
    assert out.count(" 23:59:59.999 ") == 3


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
    code, _, err = invoke(
        "copy", jsonl_url(tmp_path / "a"), jsonl_url(tmp_path / "b"), "--run", "nope"
    )
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


# --- one way to give a store: --url, else EVENTSTORE_URL, else ./eventstore-demo.db ---

DEFAULT_SQLITE = "sqlite+aiosqlite:///eventstore-demo.db"


def _demo_run_ids(out: str) -> list[str]:
    lines = [line for line in out.splitlines() if line.startswith("run id: ")]
    return [line.split()[2] for line in lines]


def test_tail_takes_the_store_as_url_option(tmp_path: Path) -> None:
    url = jsonl_url(tmp_path / "s")
    run_id = es.RunId.new()
    asyncio.run(_append(url, _run(run_id, 2)))
    code, out, err = invoke("tail", "--url", url, str(run_id), "--json")
    assert code == 0, err
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [1, 2, 3, 4]
    # The positional form of earlier releases still works...
    code, old, _ = invoke("tail", url, str(run_id), "--json")
    assert (code, old) == (0, out)
    # ...but not with a different --url.
    code, _, err = invoke("tail", url, str(run_id), "--url", jsonl_url(tmp_path / "other"))
    assert code == 2
    assert "given twice" in err


def test_every_command_falls_back_to_eventstore_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = jsonl_url(tmp_path / "env")
    run_id = es.RunId.new()
    asyncio.run(_append(url, _run(run_id, 1)))
    monkeypatch.setenv("EVENTSTORE_URL", url)
    code, out, err = invoke("tail", str(run_id), "--json")
    assert code == 0, err
    assert len(out.splitlines()) == 3
    code, out, err = invoke("copy", "--to", jsonl_url(tmp_path / "dst"))
    assert code == 0, err
    assert "copied 3 events of 1 runs" in out
    code, _, err = invoke("migrate")
    assert code == 2
    assert "keeps no schema" in err and "jsonl://" in err


def test_demo_then_tail_copy_and_serve_without_a_url_see_the_same_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    import eventstore.serve

    code, out, err = invoke("demo")
    assert code == 0, err
    assert f"store: {DEFAULT_SQLITE}" in out
    run_id = _demo_run_ids(out)[0]

    code, out, err = invoke("tail", run_id, "--json")  # ends: the demo's run completed
    assert code == 0, err
    assert "RunCompleted" in json.loads(out.splitlines()[-1])["event"]

    code, out, err = invoke("copy", "--to", jsonl_url(tmp_path / "copy"), "--run", run_id)
    assert code == 0, err
    assert "already there" in out

    served: list[str] = []
    monkeypatch.setattr(eventstore.serve, "serve_command", lambda url, **_: served.append(url))
    code, _, err = invoke("serve", "--port", "0")
    assert code == 0, err
    assert served == [DEFAULT_SQLITE]

    async def runs_listed() -> str:
        async with es.open_store(served[0]) as store:
            app = eventstore.serve.create_app(store)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                response = await c.get("/runs")
                response.raise_for_status()
                return response.text

    assert run_id in asyncio.run(runs_listed())


def test_serve_and_migrate_take_url_option_or_the_old_positional(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import eventstore.serve

    served: list[str] = []
    monkeypatch.setattr(eventstore.serve, "serve_command", lambda url, **_: served.append(url))
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    assert invoke("serve", "--url", url)[0] == 0
    assert invoke("serve", url, "--port", "0")[0] == 0
    assert invoke("serve", url, "--url", url)[0] == 0  # the same store twice is fine
    assert served == [url, url, url]
    code, _, err = invoke("serve", url, "--url", "memory://")
    assert code == 2 and "given twice" in err

    code, out, err = invoke("migrate", "--url", url)
    assert code == 0, err
    assert "schema is current" in out


def test_copy_takes_from_and_to_options(tmp_path: Path) -> None:
    src, dst = jsonl_url(tmp_path / "a"), jsonl_url(tmp_path / "b")
    run_id = es.RunId.new()
    asyncio.run(_append(src, _run(run_id, 2)))
    code, out, err = invoke("copy", "--from", src, "--to", dst, "--verify")
    assert code == 0, err
    assert "verify: 1 of 1 runs identical" in out
    code, _, err = invoke("copy", src)
    assert code == 2 and "--from URL --to URL" in err
    code, _, err = invoke("copy", "--from", src, "--to", src)
    assert code == 2 and "the same store" in err


def test_check_takes_url_option_and_keeps_pytest_args(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    calls: list[tuple[str, list[str]]] = []

    def run_suite(url: str, profile: str | None = None, extra_args: list[str] = []) -> int:  # noqa: B006
        calls.append((url, list(extra_args)))
        return 0

    monkeypatch.setitem(
        sys.modules, "eventstore_contract", types.SimpleNamespace(run_suite=run_suite)
    )
    assert invoke("check", "--url", "memory://", "--", "-x", "-k", "append")[0] == 0
    assert invoke("check", "memory://", "--", "-x")[0] == 0  # the old positional form
    assert invoke("check", "--url", "memory://", "--", "tests_x")[0] == 0
    assert invoke("check", "--", "-q")[0] == 0  # the default store
    assert calls == [
        ("memory://", ["-x", "-k", "append"]),
        ("memory://", ["-x"]),
        ("memory://", ["tests_x"]),
        (DEFAULT_SQLITE, ["-q"]),
    ]
