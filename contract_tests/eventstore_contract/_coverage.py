"""What the run covered, per backend, for the one-line terminal summary.

The contract says a skipped capability is reported, never silent. The summary is
computed from what actually happened to each contract test of the session, not from
what it was set up to do:

- the plugin notes every contract test collected (with the capabilities its markers
  require), and which of them ``-k``/``-m`` deselected;
- the suite's ``eventstore_env`` fixture notes, at set-up, the backend each test ran
  against and why it will be skipped, if it will;
- the plugin notes each test's reports (set-up, call, teardown).

A capability is *covered* only when every one of its tests ran and passed; tests
that failed, were skipped, are known failures or did not run (deselected, or after
``-x`` stopped the run) are listed under those names instead, with their counts.
"""

from __future__ import annotations

__all__ = ["CORE", "COVERAGE_KEY", "Coverage", "SessionCoverage", "record", "session_coverage"]

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Final, Literal

import pytest

from eventstore import Capability

#: The group of tests that need no capability: the rules every backend obeys.
CORE: Final = "core rules"
#: Why a test was skipped when it was not for a missing capability.
_NO_URL: Final = "store_url not given"
_NO_FACTORY: Final = "store_factory not given"

Outcome = Literal["passed", "failed", "skipped", "xfailed", "not run"]


@dataclass(frozen=True)
class _Setup:
    """What the ``eventstore_env`` fixture learned about one test at set-up."""

    backend: str
    missing: frozenset[Capability]
    skip_reason: str | None  # _NO_URL, _NO_FACTORY, or None


@dataclass
class _Test:
    """One collected contract test and what happened to it."""

    cls: type
    required: frozenset[Capability]
    setup: _Setup | None = None
    failed: bool = False
    skipped: bool = False
    xfailed: bool = False
    passed: bool = False

    @property
    def outcome(self) -> Outcome:
        if self.failed:
            return "failed"
        if self.xfailed:
            return "xfailed"
        if self.skipped:
            return "skipped"
        if self.passed:
            return "passed"
        return "not run"

    @property
    def groups(self) -> list[str]:
        """What the test checks: its capabilities, or the core rules."""
        return sorted(c.value for c in self.required) or [CORE]

    @property
    def skip_groups(self) -> list[str]:
        """What a skip of this test is charged to in the summary."""
        if self.setup is not None:
            if self.setup.missing:
                return sorted(c.value for c in self.setup.missing)
            if self.setup.skip_reason is not None:
                return [self.setup.skip_reason]
        return self.groups  # skipped by the test itself


def _tests(count: int) -> str:
    return f"{count} {'test' if count == 1 else 'tests'}"


def _ordered(groups: Counter[str]) -> list[str]:
    return sorted(groups, key=lambda g: (g != CORE, g))


@dataclass
class Coverage:
    """Tally of one backend's contract tests in this session."""

    backend: str
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    by_group: dict[str, Counter[Outcome]] = field(default_factory=lambda: defaultdict(Counter))
    skipped: Counter[str] = field(default_factory=Counter)

    def add(self, test: _Test) -> None:
        """Count one test."""
        outcome = test.outcome
        self.outcomes[outcome] += 1
        for group in test.groups:
            self.by_group[group][outcome] += 1
        if outcome == "skipped":
            self.skipped.update(test.skip_groups)

    def summary(self) -> str:
        """The summary line, e.g. ``eventstore contract [memory]: ...``."""
        total = sum(self.outcomes.values())
        counts = ", ".join(
            f"{self.outcomes[o]} {o}"
            for o in ("passed", "failed", "xfailed", "skipped", "not run")
            if self.outcomes[o]
        )
        groups = Counter({g: sum(c.values()) for g, c in self.by_group.items()})
        covered = [g for g in _ordered(groups) if self.by_group[g]["passed"] == groups[g]]
        parts = [
            f"eventstore contract [{self.backend}]: {_tests(total)} ({counts})",
            f"covered: {', '.join(covered) or 'none'}",
        ]
        failed = self._listed("failed", "failed")
        if failed:
            parts.append(f"failed: {failed}")
        known = self._listed("xfailed", "expected to fail")
        if known:
            parts.append(f"known failures: {known}")
        gaps = [
            f"{group} ({count} skipped)"
            if group in (_NO_URL, _NO_FACTORY)
            else f"{group} ({_tests(count)} skipped)"
            for group, count in sorted(
                self.skipped.items(), key=lambda kv: (kv[0] in (_NO_URL, _NO_FACTORY), kv[0])
            )
            if group != CORE
        ]
        if self.skipped[CORE]:
            gaps.insert(0, f"{CORE} ({_tests(self.skipped[CORE])} skipped)")
        parts.append(f"not covered: {', '.join(gaps) or 'none'}")
        not_run = self._listed("not run", "")
        if not_run:
            parts.append(f"not run (deselected, or the run stopped first): {not_run}")
        return "; ".join(parts)

    def _listed(self, outcome: Outcome, verb: str) -> str:
        counts = Counter({g: c[outcome] for g, c in self.by_group.items() if c[outcome]})
        suffix = f" {verb}" if verb else ""
        return ", ".join(f"{g} ({_tests(counts[g])}{suffix})" for g in _ordered(counts))


@dataclass
class SessionCoverage:
    """Every contract test of the session, keyed by node id."""

    tests: dict[str, _Test] = field(default_factory=dict)
    backends: dict[type, str] = field(default_factory=dict)

    def collected(self, item: pytest.Item, cls: type, required: frozenset[Capability]) -> None:
        """Note a contract test collected (selected or deselected)."""
        self.tests.setdefault(item.nodeid, _Test(cls, required))

    def report(self, report: pytest.TestReport) -> None:
        """Note one report (set-up, call or teardown) of a test."""
        test = self.tests.get(report.nodeid)
        if test is None:
            return
        if report.failed:
            test.failed = True
        elif report.skipped:
            if hasattr(report, "wasxfail"):
                test.xfailed = True
            else:
                test.skipped = True
        elif report.when == "call":
            test.passed = True

    def tallies(self) -> list[Coverage]:
        """One tally per backend, in the order the backends were first met."""
        out: dict[str, Coverage] = {}
        ran = {test.cls for test in self.tests.values() if test.outcome != "not run"}
        for test in self.tests.values():
            backend = self.backends.get(test.cls)
            if backend is None:
                if test.cls not in ran:
                    continue  # a class none of whose tests ran: nothing to report
                # Its tests failed before the suite learned the backend's name.
                backend = f"{test.cls.__qualname__}: backend unknown"
            tally = out.get(backend)
            if tally is None:
                tally = out[backend] = Coverage(backend)
            tally.add(test)
        return list(out.values())


#: The session's contract tests.
COVERAGE_KEY: Final = pytest.StashKey[SessionCoverage]()


def session_coverage(config: pytest.Config) -> SessionCoverage:
    """The session's :class:`SessionCoverage`, created on first use."""
    return config.stash.setdefault(COVERAGE_KEY, SessionCoverage())


def record(
    item: pytest.Item,
    *,
    backend: str,
    capabilities: frozenset[Capability],
    required: frozenset[Capability],
    missing_url: bool,
    missing_factory: bool = False,
) -> None:
    """Note, at set-up, the backend a contract test runs against and why it may skip."""
    coverage = session_coverage(item.config)
    cls = getattr(item, "cls", None) or type(None)
    coverage.backends.setdefault(cls, backend)
    test = coverage.tests.setdefault(item.nodeid, _Test(cls, required))
    missing = required - capabilities
    reason = _NO_URL if missing_url else _NO_FACTORY if missing_factory else None
    test.setup = _Setup(backend, frozenset(missing), None if missing else reason)
