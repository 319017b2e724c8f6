"""The benchmark harness API: figures, ratios, skipped baselines, bytes per event."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

import eventstore
import eventstore.backend
from eventstore import BackendError, EventEnvelope, InvalidArgumentError, RunId
from eventstore.bench import (
    DEFAULT_SCENARIOS,
    SCENARIOS,
    BenchReport,
    Latency,
    ListBaseline,
    Measurement,
    RawBaseline,
    _runner,
    load_baselines,
    memory_bytes_per_event,
    run_benchmark,
)
from eventstore.memory import MemoryEventStore

EVENTS = 300


class AppendOnlyBaseline(ListBaseline):
    """A baseline that can append one at a time but has no batches and no reads."""

    name = "append-only fake"

    def __init__(self) -> None:
        super().__init__()
        self.opened = self.closed = False
        self.append_one_calls = 0

    async def open(self) -> None:
        self.opened = True

    async def close(self) -> None:
        self.closed = True
        await super().close()

    async def append_one(self, run_id: RunId, event_json: str) -> None:
        self.append_one_calls += 1
        json.loads(event_json)
        await super().append_one(run_id, event_json)

    async def append_many(self, run_id: RunId, events_json: list[str]) -> None:
        raise NotImplementedError

    async def read_page(self, run_id: RunId, after_seq: int, limit: int) -> int:
        raise NotImplementedError


def bench(
    scenarios: list[str], baselines: list[RawBaseline] | None = None, **kwargs: object
) -> BenchReport:
    return asyncio.run(
        run_benchmark(
            "memory://",
            scenarios=scenarios,
            events=EVENTS,
            repeats=2,
            baselines=baselines,
            **kwargs,  # type: ignore[arg-type]
        )
    )


def test_every_scenario_reports_positive_figures() -> None:
    report = bench(list(DEFAULT_SCENARIOS), baselines=[], measure_memory=False)
    assert [r.scenario for r in report.results] == ["S1", "S2", "S3", "S4", "S5", "S6"]
    for result in report.results:
        assert len(result.store.seconds) == 2
        assert result.store.events > 0
        assert result.store.events_per_second > 0
        assert result.store.median_events_per_second <= result.store.events_per_second
    latency = report.result("S6").latency
    assert latency is not None
    assert 0 < latency.p50 <= latency.p99
    assert report.result("S1").latency is None


def test_concurrent_scenarios_count_whole_tasks() -> None:
    report = bench(["S2", "S3", "S4"], baselines=[], measure_memory=False)
    assert report.result("S2").store.events == (EVENTS // 64) * 64
    assert report.result("S3").store.events == (EVENTS // 16) * 16
    assert report.result("S4").store.events == (EVENTS // 100) * 100


def test_ratio_is_store_rate_over_baseline_rate() -> None:
    report = bench(["S1", "S4", "S5"], baselines=[ListBaseline()], measure_memory=False)
    for result in report.results:
        (compared,) = result.baselines
        assert compared.name == "raw dict of lists"
        assert compared.skipped is None
        assert compared.measurement is not None
        assert compared.ratio == pytest.approx(
            result.store.events_per_second / compared.measurement.events_per_second
        )


def test_not_implemented_baseline_is_skipped_with_reason() -> None:
    fake = AppendOnlyBaseline()
    report = bench(["S1", "S4", "S5", "S6"], baselines=[fake], measure_memory=False)
    (s1,) = report.result("S1").baselines
    assert s1.ratio is not None
    assert s1.ratio > 0
    for scenario in ("S4", "S5"):
        (skipped,) = report.result(scenario).baselines
        assert skipped.measurement is None
        assert skipped.ratio is None
        assert skipped.skipped == f"not implemented for {scenario}"
    assert report.result("S6").baselines == ()
    assert fake.opened
    assert fake.closed


def test_baseline_does_the_same_work_as_the_store() -> None:
    fake = AppendOnlyBaseline()
    report = bench(["S1"], baselines=[fake], measure_memory=False)
    warmup = max(1, min(EVENTS // 10, 1000))
    assert fake.append_one_calls == warmup + 2 * EVENTS
    (compared,) = report.result("S1").baselines
    assert compared.measurement is not None
    assert compared.measurement.events == report.result("S1").store.events == EVENTS


def test_memory_bytes_per_event_is_reported_for_the_memory_backend() -> None:
    report = bench(["S1"], baselines=[])
    assert report.bytes_per_event is not None
    assert report.bytes_per_event > 100  # an envelope and an event model are not free


def test_memory_bytes_per_event_rejects_zero() -> None:
    with pytest.raises(ValueError, match="count"):
        asyncio.run(memory_bytes_per_event(0))


def test_report_json_has_every_figure() -> None:
    report = bench(["S1", "S6"], baselines=[ListBaseline()])
    data = json.loads(json.dumps(report.to_json()))
    assert data["backend"] == "memory"
    assert data["events"] == EVENTS
    assert data["machine"]["cpus"] >= 1
    s1, s6 = data["results"]
    assert s1["store"]["events_per_second"] > 0
    assert len(s1["store"]["seconds"]) == 2
    assert s1["baselines"][0]["ratio"] > 0
    assert s6["latency"]["p99_seconds"] >= s6["latency"]["p50_seconds"] > 0
    assert data["bytes_per_event"] > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scenarios": ["S9"]}, "unknown scenario"),
        ({"scenarios": []}, "unknown scenario"),
        ({"events": 0}, "events"),
        ({"repeats": 0}, "repeats"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        asyncio.run(run_benchmark("memory://", **kwargs))  # type: ignore[arg-type]


def test_s7_is_registered_but_runs_only_when_named() -> None:
    assert list(SCENARIOS) == [*DEFAULT_SCENARIOS, "S7"]
    assert "S7" not in DEFAULT_SCENARIOS


def test_s7_follows_many_subscribers_and_reports_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from eventstore.bench import _scenarios

    monkeypatch.setattr(_scenarios, "S7_RATE", 5_000.0)
    report = asyncio.run(
        run_benchmark("memory://", scenarios=["S7"], events=120, repeats=1, measure_memory=False)
    )
    assert report.errors == ()
    result = report.result("S7")
    # 120 subscribers (fewer than S7_SUBSCRIBERS: one per event of the round), 64
    # writers with one event each.
    assert result.store.events == 64
    assert result.latency is not None
    assert len(result.latency.samples) == 64
    assert 0 < result.latency.p50 <= result.latency.p99 < 5
    assert result.connections == 0
    assert result.detail is not None
    assert result.detail.startswith("120 subscribers, 64 writers, 64 events")
    assert any(note.startswith("S7: 120 subscribers") for note in report.notes)
    data = report.to_json()["results"][0]
    assert data["connections"] == 0
    assert "in-process" in data["connections_detail"]


def test_baselines_come_from_the_backend_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = eventstore.backend.Registry(load_entry_points=False)

    class Plugin:
        @eventstore.backend.hookimpl
        def eventstore_register_backends(self) -> list[eventstore.backend.BackendSpec]:
            return [
                eventstore.backend.BackendSpec(
                    name="memory",
                    schemes=("memory",),
                    factory="eventstore.memory:MemoryEventStore.from_url",
                    benchmark_baselines="eventstore.bench:inprocess_baselines",
                )
            ]

    registry.register(Plugin(), name="memory-with-baselines")
    monkeypatch.setattr(_runner, "default_registry", lambda: registry)
    (baseline,) = load_baselines("memory://")
    assert isinstance(baseline, ListBaseline)


def test_measurement_uses_the_best_round() -> None:
    measured = Measurement(events=1000, seconds=(0.5, 0.25, 1.0))
    assert measured.best_seconds == 0.25
    assert measured.events_per_second == 4000
    assert measured.median_events_per_second == 2000


def test_latency_percentiles_use_nearest_rank() -> None:
    latency = Latency.of([float(i) for i in range(100, 0, -1)])
    assert latency.p50 == 50
    assert latency.p99 == 99
    assert latency.percentile(100) == 100
    with pytest.raises(ValueError, match="no latency"):
        Latency.of([])


class _RefusedSubscription:
    def __aiter__(self) -> _RefusedSubscription:
        return self

    async def __anext__(self) -> EventEnvelope:
        raise BackendError("subscription refused")


class _DeafMemoryStore(MemoryEventStore):
    """A store whose live subscribe fails: S6 must fail alone, loudly."""

    def subscribe(
        self, run_id: RunId, after_seq: int | None = None, *, until_terminal: bool = False
    ) -> AsyncIterator[EventEnvelope]:
        return _RefusedSubscription()


def test_a_failing_scenario_is_reported_and_the_others_still_run() -> None:
    report = asyncio.run(
        run_benchmark(
            scenarios=["S1", "S6"],
            events=EVENTS,
            repeats=1,
            store_factory=_DeafMemoryStore,
            measure_memory=False,
        )
    )
    assert [r.scenario for r in report.results] == ["S1"]
    ((scenario, error),) = report.errors
    assert scenario == "S6"
    assert "subscription refused" in error
    assert report.to_json()["errors"] == [{"scenario": "S6", "error": error}]


# CLI-level: how `eventstore bench` reports failures (see docs/cli.md, "Exit codes").

_REFUSED = (
    "BackendError: redis: append failed (redis://agent:***@127.0.0.1:6390/0): "
    "NoPermissionError: this user has no permissions to run the 'evalsha' command"
)


def _cli_bench(
    monkeypatch: pytest.MonkeyPatch, errors: list[tuple[str, str]] | Exception
) -> tuple[int, str]:
    """``eventstore bench`` with a harness that reports ``errors`` (or raises them)."""
    from typer.testing import CliRunner

    import eventstore.bench
    from eventstore._cli import build_app

    async def fake_run_benchmark(url: str, **kwargs: object) -> BenchReport:
        if isinstance(errors, Exception):
            raise errors
        return BenchReport(
            url=url, backend="memory", events=1, repeats=1, started_at="", machine={},
            errors=tuple(errors),
        )  # fmt: skip

    monkeypatch.setattr(eventstore.bench, "run_benchmark", fake_run_benchmark)
    result = CliRunner().invoke(
        build_app(), ["bench", "--url", "memory://", "--events", "1"], env={"COLUMNS": "250"}
    )
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stderr


def test_bench_cli_a_refused_right_is_one_line_naming_it_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, err = _cli_bench(monkeypatch, [("S1", _REFUSED), ("S5", _REFUSED)])
    assert code == 2
    (line,) = err.splitlines()
    assert line.startswith("S1, S5 failed: BackendError: redis: append failed")
    assert line.endswith("(the server refused EVALSHA to this user: grant +evalsha)")


def test_bench_cli_a_store_refused_at_open_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refused = BackendError(
        "redis: open failed (redis://agent:***@h/0): NoPermissionError: "
        "this user has no permissions to run the 'script|load' command"
    )
    code, err = _cli_bench(monkeypatch, refused)
    assert code == 2
    (line,) = err.splitlines()
    assert line.endswith("(the server refused SCRIPT|LOAD to this user: grant +script|load)")


def test_bench_cli_other_scenario_failures_exit_1_one_line_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, err = _cli_bench(
        monkeypatch, [("S1", "BenchmarkError: x"), ("S5", "BenchmarkError: x"), ("S6", "y")]
    )
    assert code == 1
    assert err.splitlines() == ["S1, S5 failed: BenchmarkError: x", "S6 failed: y"]
