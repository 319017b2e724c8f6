"""The ``eventstore`` command line: backends, demo, check, bench and error reporting."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

import eventstore
import eventstore.backend
from eventstore import Capability, ConfigurationError
from eventstore._cli import build_app
from eventstore.backend import Registry
from eventstore.events import EVENT_TYPES
from eventstore.memory import MemoryEventStore

WIDE = {"COLUMNS": "250"}


@pytest.fixture(autouse=True)
def _no_url_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("EVENTSTORE_URL", raising=False)
    # The CLI's default store is ./eventstore-demo.db: keep it out of the checkout.
    monkeypatch.chdir(tmp_path)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_app(), list(args), env=WIDE)
    return result.exit_code, result.stdout, result.stderr


def test_help_lists_every_command() -> None:
    code, out, _ = invoke("--help")
    assert code == 0
    for command in ("backends", "bench", "check", "demo"):
        assert command in out


def _block(out: str, name: str) -> str:
    """The block ``eventstore backends`` prints for ``name`` when not on a terminal."""
    blocks = out.split("\n\n")
    return next(b for b in blocks if b.startswith(f"{name}: "))


def test_backends_lists_memory_with_its_capabilities() -> None:
    code, out, _ = invoke("backends")
    assert code == 0
    block = _block(out, "memory")
    assert block.startswith("memory: ok")
    assert "memory://" in block
    assert "eventstore" in block
    for capability in MemoryEventStore.capabilities:
        assert capability.value in block


@pytest.mark.parametrize("columns", ["40", "80", "250"])
def test_backends_piped_shows_every_field_at_any_width(columns: str) -> None:
    # CliRunner's stdout is not a terminal, as with `eventstore backends | cat` or a CI log.
    result = CliRunner().invoke(build_app(), ["backends"], env={"COLUMNS": columns})
    assert result.exit_code == 0
    out = result.stdout
    assert "┃" not in out and "│" not in out  # no table to squeeze
    registry = eventstore.backend.default_registry()
    for entry in registry.specs():
        block = _block(out, entry.spec.name)
        flat = " ".join(block.split())
        for scheme in entry.spec.schemes:
            assert f"{scheme}://" in flat
        for capability in entry.spec.capabilities:
            assert capability.value in flat
        assert str(entry.distribution) in flat
        assert all(len(line) <= max(int(columns), 40) for line in block.splitlines())


def test_backends_json_is_a_list_of_objects() -> None:
    code, out, _ = invoke("backends", "--json")
    assert code == 0
    items = json.loads(out)
    memory = next(item for item in items if item["name"] == "memory")
    assert memory["schemes"] == ["memory://"]
    assert memory["ok"] is True and memory["error"] is None
    assert set(memory["capabilities"]) == {c.value for c in MemoryEventStore.capabilities}
    assert {"distribution", "version", "description"} <= memory.keys()


def test_backends_on_a_wide_terminal_is_a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    monkeypatch.setattr(Console, "is_terminal", property(lambda self: True))
    code, out, _ = invoke("backends")
    assert code == 0
    row = next(line for line in out.splitlines() if "memory://" in line)
    assert "memory" in row and "eventstore" in row and "ok" in row


class _BrokenFactoryPlugin:
    @eventstore.backend.hookimpl
    def eventstore_register_backends(self) -> list[eventstore.backend.BackendSpec]:
        return [
            eventstore.backend.BackendSpec(
                name="ghost",
                schemes=("ghost",),
                factory="no_such_module_for_eventstore_tests:Store.from_url",
                capabilities=frozenset({Capability.DURABLE}),
            )
        ]


class _RaisingPlugin:
    @eventstore.backend.hookimpl
    def eventstore_register_backends(self) -> list[eventstore.backend.BackendSpec]:
        raise RuntimeError("driver exploded at import")


def test_backends_shows_broken_plugins_and_factories(monkeypatch: pytest.MonkeyPatch) -> None:
    from eventstore import _memory_plugin

    registry = Registry(load_entry_points=False)
    registry.register(_memory_plugin, name="memory", distribution="eventstore", version="0.1.0")
    registry.register(_BrokenFactoryPlugin(), name="ghost", distribution="eventstore-ghost")
    with pytest.raises(ConfigurationError):
        registry.register(_RaisingPlugin(), name="exploding", distribution="eventstore-boom")
    monkeypatch.setattr(eventstore.backend, "default_registry", lambda: registry)

    code, out, _ = invoke("backends")
    assert code == 0
    ghost = _block(out, "ghost")
    assert ghost.startswith("ghost: error")
    assert "ModuleNotFoundError" in ghost
    assert _block(out, "exploding").startswith("exploding: error")
    assert "driver exploded at import" in out
    assert "2 backend(s) cannot be used" in out


def test_demo_writes_and_replays_every_event_type() -> None:
    code, out, err = invoke("demo", "--url", "memory://")
    assert code == 0, err
    for event_type in EVENT_TYPES:
        assert event_type.__name__ in out
    assert "PlanRevised" in out  # an unknown variant survives the round trip
    assert "read in 8 page(s) of up to 5" in out
    assert "Let me check the weather in Paris and today's EUR/USD rate." in out
    assert "usage totals: 2302 input, 105 output, 2407 total tokens" in out
    assert "terminal status: RunCompleted" in out
    assert "store: memory://" in out
    assert "run id: " in out
    assert "runs in this store" not in out  # memory is not durable


def test_demo_persists_to_a_sqlite_file_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke("demo")
    assert code == 0, err
    assert "store: sqlite+aiosqlite:///eventstore-demo.db" in out
    assert (tmp_path / "eventstore-demo.db").exists()
    first_run = next(line for line in out.splitlines() if line.startswith("run id: ")).split()[2]
    code, out, err = invoke("demo")
    assert code == 0, err
    assert "runs in this store" in out
    assert first_run in out  # the first demo's run is still there


def test_demo_lists_stored_runs_on_a_durable_store(monkeypatch: pytest.MonkeyPatch) -> None:
    durable = MemoryEventStore.capabilities | {Capability.DURABLE}
    monkeypatch.setattr(MemoryEventStore, "capabilities", durable)
    code, out, err = invoke("demo", "--url", "memory://")
    assert code == 0, err
    assert "runs in this store" in out


def test_demo_uses_eventstore_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTSTORE_URL", "nosuch://from-env")
    code, _, err = invoke("demo")
    assert code == 2
    assert "nosuch://from-env" in err


def test_unknown_scheme_is_one_red_line_naming_installed_backends() -> None:
    code, out, err = invoke("demo", "--url", "nosuch://somewhere/db")
    assert code == 2
    assert out == ""
    assert err.strip().count("\n") == 0
    assert "nosuch://" in err
    assert "memory:// (memory)" in err
    assert "Traceback" not in err


def test_password_is_redacted_in_errors() -> None:
    code, out, err = invoke("demo", "--url", "nosuch://alice:s3cr3t-pw@db.example/x")
    assert code == 2
    assert "s3cr3t-pw" not in out + err
    assert "alice:***@db.example" in err


def test_bad_option_is_a_configuration_error() -> None:
    code, _, err = invoke("demo", "--url", "memory://?no_such_option=1")
    assert code == 2
    assert "no_such_option" in err
    assert "Traceback" not in err


def test_bench_reports_all_six_scenarios(tmp_path: Path) -> None:
    target = tmp_path / "bench.json"
    code, out, err = invoke(
        "bench", "--url", "memory://", "--events", "2000", "--repeats", "1", "--json", str(target)
    )
    assert code == 0, err
    for scenario in ("S1", "S2", "S3", "S4", "S5", "S6"):
        assert scenario in out
    assert "stored bytes per event" in out
    data = json.loads(target.read_text())
    assert [r["scenario"] for r in data["results"]] == ["S1", "S2", "S3", "S4", "S5", "S6"]
    for result in data["results"]:
        assert result["store"]["events"] > 0
        assert result["store"]["events_per_second"] > 0
    latency = data["results"][-1]["latency"]
    assert latency["p99_seconds"] >= latency["p50_seconds"] > 0
    assert data["bytes_per_event"] > 0


def test_bench_runs_only_the_chosen_scenarios(tmp_path: Path) -> None:
    target = tmp_path / "bench.json"
    code, _, err = invoke(
        "bench", "--scenarios", "s1,S5", "--events", "500", "--repeats", "1", "--json", str(target)
    )
    assert code == 0, err
    data = json.loads(target.read_text())
    assert [r["scenario"] for r in data["results"]] == ["S1", "S5"]


@pytest.mark.parametrize(
    ("where", "message"),
    [("missing/bench.json", "does not exist"), (".", "is a directory")],
)
def test_bench_json_that_cannot_be_written_exits_2_before_running(
    tmp_path: Path, where: str, message: str
) -> None:
    code, out, err = invoke(
        "bench", "--scenarios", "S1", "--events", "100", "--json", str(tmp_path / where)
    )
    assert code == 2
    assert message in err and "Traceback" not in err
    assert "S1" not in out  # refused before minutes of measuring, not after


def test_bench_unknown_scenario_exits_2() -> None:
    code, _, err = invoke("bench", "--scenarios", "S1,S9")
    assert code == 2
    assert "S9" in err


def test_check_without_the_suite_installed_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "eventstore_contract", None)
    code, _, err = invoke("check", "memory://")
    assert code == 2
    assert "eventstore-contract-tests" in err and "pip install ./contract_tests" in err


@pytest.mark.parametrize("status", [0, 1])
def test_check_runs_the_suite_and_returns_its_status(
    monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    calls: list[tuple[str, str | None, list[str]]] = []

    def run_suite(url: str, *, profile: str | None, extra_args: list[str]) -> int:
        calls.append((url, profile, extra_args))
        return status

    fake = types.ModuleType("eventstore_contract")
    fake.run_suite = run_suite  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "eventstore_contract", fake)
    code, out, _ = invoke(
        "check", "redis://u:pw@localhost/0", "--profile", "ci", "--", "-x", "-k", "append"
    )
    assert code == status
    assert calls == [("redis://u:pw@localhost/0", "ci", ["-x", "-k", "append"])]
    assert "redis://u:***@localhost/0" in out
    assert ":pw@" not in out


def _check(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``eventstore check`` in a process of its own, from a directory whose pytest
    configuration would break the run if the suite used it."""
    pytest.importorskip("eventstore_contract")
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --no-such-option\n")
    return subprocess.run(
        [sys.executable, "-m", "eventstore._cli", "check", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_check_output_is_honest(tmp_path: Path) -> None:
    done = _check(tmp_path, "memory://", "--", "-k", "durability or no_credential")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # Skip reasons are listed without asking for them.
    assert "does not declare capability durable" in done.stdout
    assert "store_url carries no password that could leak" in done.stdout
    # No warning on every run, no made-up configuration file in the header.
    assert "PytestAssertRewriteWarning" not in output
    assert "warnings summary" not in output
    assert "dev/null" not in output
    assert re.search(r"^configfile: .*eventstore-check-[^/]+/pytest\.ini$", done.stdout, re.M)
    # A skipped test is never "covered", and deselected tests are "not run".
    (summary,) = [
        line for line in done.stdout.splitlines() if line.startswith("eventstore contract [")
    ]
    assert (
        "; covered: none; not covered: core rules (1 test skipped), durable (5 tests skipped); "
        in summary
    )
    assert "not run (deselected, or the run stopped first): core rules (" in summary


def test_check_passes_an_r_option_through(tmp_path: Path) -> None:
    done = _check(tmp_path, "memory://", "--", "-k", "durability", "-rN")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SKIPPED [" not in done.stdout
