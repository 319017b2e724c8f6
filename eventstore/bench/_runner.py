"""Runs scenarios against a store and its raw baselines, fairly, and reports figures.

Fairness on a busy machine: every side (the store, each baseline) first runs a
small warm-up round (imports, connection pools, caches, JIT-like specialization of
the interpreter), then the sides take turns for ``repeats`` rounds, the order
rotating each round so no side always runs first or last. Each side's best round is
its figure; the ratio is the store's best events/s divided by the baseline's.
"""

from __future__ import annotations

__all__ = ["run_benchmark", "load_baselines"]

import os
import platform
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from .._capabilities import Capability
from .._errors import ConfigurationError, EventStoreError, InvalidArgumentError
from .._plugins import DEFAULT_URL, URL_ENV, default_registry, open_store
from .._store import EventStore
from .._url import redact_text, redact_url
from ._baseline import RawBaseline
from ._connections import connection_probe
from ._memory import memory_bytes_per_event
from ._results import BaselineResult, BenchReport, Latency, Measurement, ScenarioResult
from ._scenarios import DEFAULT_SCENARIOS, SCENARIOS, BenchmarkError, Fleet, Sample, Scenario

Progress = Callable[[str], None]


def load_baselines(url: str) -> list[RawBaseline]:
    """The raw baselines the backend serving ``url`` declares (none if it has none)."""
    entry = default_registry().backend_for(url)
    spec = entry.spec
    if spec.benchmark_baselines is None:
        return []
    make_baselines = entry.load(spec.benchmark_baselines)
    try:
        baselines = list(make_baselines(url))
    except Exception as exc:
        raise ConfigurationError(
            f"backend {spec.name!r}: benchmark baselines {spec.benchmark_baselines!r} "
            f"failed: {type(exc).__name__}: {redact_text(str(exc))}"
        ) from exc
    for baseline in baselines:
        if not isinstance(baseline, RawBaseline):
            raise ConfigurationError(
                f"backend {spec.name!r}: {spec.benchmark_baselines!r} returned "
                f"{type(baseline).__name__}, not a RawBaseline"
            )
    return baselines


def _machine() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def _check_arguments(scenarios: Sequence[str], events: int, repeats: int) -> list[Scenario]:
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown or not scenarios:
        raise InvalidArgumentError(
            f"unknown scenario(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(SCENARIOS)}"
        )
    if type(events) is not int or events < 1:
        raise InvalidArgumentError(f"events must be an int >= 1, got {events!r}")
    if type(repeats) is not int or repeats < 1:
        raise InvalidArgumentError(f"repeats must be an int >= 1, got {repeats!r}")
    return [SCENARIOS[s] for s in dict.fromkeys(scenarios)]


async def _measure(
    scenario: Scenario,
    store: EventStore,
    baselines: Sequence[RawBaseline],
    events: int,
    repeats: int,
    fleet: Fleet | None = None,
) -> ScenarioResult:
    warmup = max(1, min(events // 10, 1000))
    store_round = scenario.store_round
    fleet_round = scenario.fleet_round
    if fleet_round is not None and fleet is not None:
        chosen_fleet = fleet

        async def with_fleet(_store: EventStore, count: int) -> Sample:
            assert fleet_round is not None
            return await fleet_round(chosen_fleet, count)

        store_round = with_fleet
    await store_round(store, warmup)
    skipped: dict[int, str] = {}
    active: list[int] = []
    baseline_round = scenario.baseline_round
    if baseline_round is not None:
        for index, baseline in enumerate(baselines):
            try:
                await baseline_round(baseline, warmup)
            except NotImplementedError:
                skipped[index] = f"not implemented for {scenario.id}"
            else:
                active.append(index)

    # Side -1 is the store; others index into baselines.
    sides = [-1, *active]
    samples: dict[int, list[Sample]] = {side: [] for side in sides}
    for repetition in range(repeats):
        turn = repetition % len(sides)
        for side in sides[turn:] + sides[:turn]:
            if side in skipped:
                continue
            if side == -1:
                samples[side].append(await store_round(store, events))
                continue
            assert baseline_round is not None
            try:
                samples[side].append(await baseline_round(baselines[side], events))
            except NotImplementedError:
                skipped[side] = f"not implemented for {scenario.id}"

    def measurement(side: int) -> Measurement:
        taken = samples[side]
        return Measurement(taken[0].events, tuple(s.seconds for s in taken))

    store_figures = measurement(-1)
    compared: list[BaselineResult] = []
    if baseline_round is not None:
        for index, baseline in enumerate(baselines):
            if index in skipped:
                compared.append(BaselineResult(baseline.name, skipped=skipped[index]))
                continue
            figures = measurement(index)
            ratio = store_figures.events_per_second / figures.events_per_second
            compared.append(BaselineResult(baseline.name, figures, ratio))
    latencies = [value for sample in samples[-1] for value in sample.latencies]
    counted = [s.connections for s in samples[-1] if s.connections is not None]
    known = [c for c in counted if c.count is not None]
    # The most connections any timed round opened (or why none could be counted).
    connections = max(known, key=lambda c: c.count or 0) if known else None
    if connections is None and counted:
        connections = counted[0]
    return ScenarioResult(
        scenario=scenario.id,
        title=scenario.title,
        store=store_figures,
        baselines=tuple(compared),
        latency=Latency.of(latencies) if latencies else None,
        connections=None if connections is None else connections.count,
        connections_detail=None if connections is None else connections.detail,
        detail=samples[-1][-1].detail if samples[-1] else None,
    )


def _count(value: int | None) -> str:
    return "n/a" if value is None else str(value)


async def _measure_fleet(
    scenario: Scenario,
    store: EventStore,
    url: str,
    store_factory: Callable[[], EventStore] | None,
    events: int,
    repeats: int,
) -> ScenarioResult:
    """A scenario with many subscribers: writers on a second store when it shares data."""
    probe = connection_probe(store, url)
    if Capability.MULTI_PROCESS not in store.capabilities:
        return await _measure(scenario, store, (), events, repeats, Fleet(store, store, probe))
    writers = store_factory() if store_factory is not None else open_store(url)
    async with writers:
        return await _measure(scenario, store, (), events, repeats, Fleet(store, writers, probe))


async def run_benchmark(
    url: str | None = None,
    *,
    scenarios: Sequence[str] = DEFAULT_SCENARIOS,
    events: int = 10_000,
    repeats: int = 3,
    store_factory: Callable[[], EventStore] | None = None,
    baselines: Sequence[RawBaseline] | None = None,
    measure_memory: bool | None = None,
    progress: Progress | None = None,
) -> BenchReport:
    """Run ``scenarios`` against the store at ``url`` and return every figure.

    ``url`` defaults like :func:`eventstore.open_store` (``EVENTSTORE_URL``, then the
    embedded default). ``store_factory`` replaces ``open_store(url)`` and
    ``baselines`` replaces the backend's declared ``benchmark_baselines``, e.g. in
    tests. Scenarios that follow many live subscribers (S7, run only when named)
    write through a second store object on the same URL when the backend is
    ``multi_process``, as another process would. ``measure_memory`` (default: only
    for the in-memory backend) adds stored bytes per event. ``progress`` receives a
    line before each scenario.
    """
    chosen = _check_arguments(scenarios, events, repeats)
    url = url or os.environ.get(URL_ENV) or DEFAULT_URL
    store = store_factory() if store_factory is not None else open_store(url)
    notes: list[str] = []
    if baselines is None:
        baselines = []
        if store_factory is None:
            # Broken baselines must not hide the store's own figures: say so, go on.
            try:
                baselines = load_baselines(url)
            except ConfigurationError as exc:
                notes.append(f"raw baselines unavailable: {exc}")
    started = datetime.now(UTC).isoformat(timespec="seconds")
    say = progress or (lambda _line: None)
    results: list[ScenarioResult] = []
    errors: list[tuple[str, str]] = []
    opened: list[RawBaseline] = []
    async with store:
        try:
            for baseline in baselines:
                await baseline.open()
                opened.append(baseline)
            for scenario in chosen:
                say(f"{scenario.id}: {scenario.title}")
                # One misbehaving scenario must not cost the figures of the others.
                try:
                    if scenario.fleet_round is None:
                        result = await _measure(scenario, store, baselines, events, repeats)
                    else:
                        result = await _measure_fleet(
                            scenario, store, url, store_factory, events, repeats
                        )
                    results.append(result)
                    if result.connections_detail is not None:
                        notes.append(
                            f"{scenario.id}: {result.detail}; connections opened by the "
                            f"subscribers: {_count(result.connections)} "
                            f"({result.connections_detail})"
                        )
                except (BenchmarkError, EventStoreError) as exc:
                    errors.append((scenario.id, f"{type(exc).__name__}: {exc}"))
        finally:
            for baseline in opened:
                await baseline.close()
    if measure_memory is None:
        measure_memory = store.backend_name == "memory"
    bytes_per_event = None
    if measure_memory:
        say("stored bytes per event (tracemalloc)")
        bytes_per_event = await memory_bytes_per_event(events)
    return BenchReport(
        url=redact_url(url),
        backend=store.backend_name,
        events=events,
        repeats=repeats,
        started_at=started,
        machine=_machine(),
        results=tuple(results),
        bytes_per_event=bytes_per_event,
        notes=tuple(notes),
        errors=tuple(errors),
    )
