"""What the run covered, per backend, for the one-line terminal summary.

The contract says a skipped capability is reported, never silent: every contract
test records which capabilities it needed and whether it ran, and the plugin prints
one line per backend at the end of the session.
"""

from __future__ import annotations

__all__ = ["COVERAGE_KEY", "Coverage", "record"]

from collections import Counter
from dataclasses import dataclass, field
from typing import Final

import pytest

from eventstore import Capability


@dataclass
class Coverage:
    """Tally of one backend's contract tests in this session."""

    backend: str
    capabilities: frozenset[Capability]
    tests: int = 0
    covered: set[Capability] = field(default_factory=set)
    skipped: Counter[Capability] = field(default_factory=Counter)
    skipped_no_url: int = 0
    skipped_no_factory: int = 0

    def summary(self) -> str:
        """The summary line, e.g. ``eventstore contract [memory]: ...``."""
        covered = ", ".join(sorted(self.covered)) or "core rules only"
        gaps = [
            f"{cap} ({count} {'test' if count == 1 else 'tests'} skipped)"
            for cap, count in sorted(self.skipped.items())
        ]
        if self.skipped_no_url:
            gaps.append(f"store_url not given ({self.skipped_no_url} skipped)")
        if self.skipped_no_factory:
            gaps.append(f"store_factory not given ({self.skipped_no_factory} skipped)")
        return (
            f"eventstore contract [{self.backend}]: {self.tests} tests; covered: {covered}; "
            f"not covered: {', '.join(gaps) or 'none'}"
        )


#: Per-session tallies, keyed by backend name.
COVERAGE_KEY: Final = pytest.StashKey[dict[str, Coverage]]()


def record(
    config: pytest.Config,
    *,
    backend: str,
    capabilities: frozenset[Capability],
    required: frozenset[Capability],
    missing_url: bool,
    missing_factory: bool = False,
) -> None:
    """Count one contract test of ``backend`` that needed ``required``."""
    tallies = config.stash.setdefault(COVERAGE_KEY, {})
    tally = tallies.get(backend)
    if tally is None:
        tally = tallies[backend] = Coverage(backend, capabilities)
    tally.tests += 1
    missing = required - capabilities
    if missing:
        tally.skipped.update(missing)
    elif missing_url:
        tally.skipped_no_url += 1
    elif missing_factory:
        tally.skipped_no_factory += 1
    else:
        tally.covered.update(required)
