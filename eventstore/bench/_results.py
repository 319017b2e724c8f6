"""What a benchmark run measured, as frozen values that serialize to plain JSON."""

from __future__ import annotations

__all__ = ["BaselineResult", "BenchReport", "Latency", "Measurement", "ScenarioResult"]

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Measurement:
    """Repeated timings of one side (the store or one baseline) of a scenario.

    ``seconds`` holds one wall-clock duration per repetition, each for ``events``
    events. The headline figure is the best repetition: on a shared machine the
    fastest run is the one least disturbed by other work.
    """

    events: int
    seconds: tuple[float, ...]

    @property
    def best_seconds(self) -> float:
        """The shortest repetition."""
        return min(self.seconds)

    @property
    def events_per_second(self) -> float:
        """Throughput of the best repetition."""
        return self.events / self.best_seconds

    @property
    def median_events_per_second(self) -> float:
        """Throughput of the median repetition."""
        return self.events / statistics.median(self.seconds)

    def to_json(self) -> dict[str, Any]:
        """Every figure, for ``--json`` output."""
        return {
            "events": self.events,
            "seconds": list(self.seconds),
            "events_per_second": self.events_per_second,
            "median_events_per_second": self.median_events_per_second,
        }


@dataclass(frozen=True)
class Latency:
    """Append-to-delivery latencies in seconds (scenarios S6 and S7), with percentiles."""

    samples: tuple[float, ...]

    @classmethod
    def of(cls, samples: list[float]) -> Latency:
        """Percentiles need at least one sample; raise ``ValueError`` otherwise."""
        if not samples:
            raise ValueError("no latency samples")
        return cls(tuple(sorted(samples)))

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile (nearest rank), ``0 < p <= 100``."""
        rank = max(1, math.ceil(p / 100 * len(self.samples)))
        return self.samples[min(rank, len(self.samples)) - 1]

    @property
    def p50(self) -> float:
        """Median latency."""
        return self.percentile(50)

    @property
    def p99(self) -> float:
        """99th percentile latency."""
        return self.percentile(99)

    def to_json(self) -> dict[str, Any]:
        """Summary figures (not the samples), for ``--json`` output."""
        return {
            "samples": len(self.samples),
            "p50_seconds": self.p50,
            "p99_seconds": self.p99,
            "min_seconds": self.samples[0],
            "max_seconds": self.samples[-1],
            "mean_seconds": statistics.fmean(self.samples),
        }


@dataclass(frozen=True)
class BaselineResult:
    """One raw baseline on one scenario: its measurement and the store's ratio to it.

    ``ratio`` is the store's events/s divided by the baseline's (best repetition of
    each): 1.0 means the store is as fast as the bare driver, 0.5 half as fast.
    ``skipped`` says why there is no measurement (e.g. the baseline raised
    ``NotImplementedError`` for this scenario).
    """

    name: str
    measurement: Measurement | None = None
    ratio: float | None = None
    skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Every figure, for ``--json`` output."""
        return {
            "name": self.name,
            "measurement": None if self.measurement is None else self.measurement.to_json(),
            "ratio": self.ratio,
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class ScenarioResult:
    """The store's figures on one scenario and its comparison with each baseline."""

    scenario: str
    title: str
    store: Measurement
    baselines: tuple[BaselineResult, ...] = ()
    latency: Latency | None = None
    #: S7: connections the live subscribers opened (``None``: not counted; the
    #: detail says how it was counted, or why not), and what the round ran.
    connections: int | None = None
    connections_detail: str | None = None
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Every figure, for ``--json`` output."""
        return {
            "scenario": self.scenario,
            "title": self.title,
            "store": self.store.to_json(),
            "baselines": [b.to_json() for b in self.baselines],
            "latency": None if self.latency is None else self.latency.to_json(),
            "connections": self.connections,
            "connections_detail": self.connections_detail,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class BenchReport:
    """A whole benchmark run: where, on what machine, and every scenario's result.

    ``url`` is already redacted. ``bytes_per_event`` is set for the in-memory
    backend only (tracemalloc after N appends, divided by N).
    """

    url: str
    backend: str
    events: int
    repeats: int
    started_at: str
    machine: dict[str, Any]
    results: tuple[ScenarioResult, ...] = ()
    bytes_per_event: float | None = None
    notes: tuple[str, ...] = field(default=())
    #: Scenarios that could not finish, with the reason: ``(scenario, message)``.
    errors: tuple[tuple[str, str], ...] = field(default=())

    def result(self, scenario: str) -> ScenarioResult:
        """The result of ``scenario`` (e.g. ``"S1"``); ``KeyError`` if it did not run."""
        for result in self.results:
            if result.scenario == scenario:
                return result
        raise KeyError(scenario)

    def to_json(self) -> dict[str, Any]:
        """The whole report as plain JSON values."""
        data = asdict(self)
        data["results"] = [r.to_json() for r in self.results]
        data["notes"] = list(self.notes)
        data["errors"] = [{"scenario": s, "error": e} for s, e in self.errors]
        return data
