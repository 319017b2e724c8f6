"""The benchmark harness (``eventstore bench``): scenarios S1-S7 and raw baselines.

Figures are events per second and, where a backend provides raw-driver baselines,
ratios against the raw driver doing the same work in the same run. Absolute
timings on a shared machine are noise; the ratios are what to compare.

A backend offers baselines by naming, in its ``BackendSpec.benchmark_baselines``, a
callable ``(url) -> list[RawBaseline]``. Use :func:`run_benchmark` from code::

    report = await run_benchmark("memory://", scenarios=["S1", "S5"], events=20_000)
    print(report.result("S1").store.events_per_second)
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_SCENARIOS",
    "SCENARIOS",
    "ConnectionCount",
    "BaselineResult",
    "BenchReport",
    "BenchmarkError",
    "Fleet",
    "Latency",
    "ListBaseline",
    "Measurement",
    "RawBaseline",
    "Sample",
    "Scenario",
    "ScenarioResult",
    "inprocess_baselines",
    "load_baselines",
    "memory_bytes_per_event",
    "run_benchmark",
    "workload_events",
    "workload_json",
]

from ._baseline import RawBaseline
from ._connections import ConnectionCount
from ._inprocess import ListBaseline, inprocess_baselines
from ._memory import memory_bytes_per_event
from ._results import BaselineResult, BenchReport, Latency, Measurement, ScenarioResult
from ._runner import load_baselines, run_benchmark
from ._scenarios import DEFAULT_SCENARIOS, SCENARIOS, BenchmarkError, Fleet, Sample, Scenario
from ._workload import workload_events, workload_json
