"""The benchmark harness (``eventstore bench``): scenarios S1-S6 and raw baselines.

Figures are events per second and, where a backend provides raw-driver baselines,
ratios against the raw driver doing the same work in the same run. Absolute
timings on a shared machine are noise; the ratios are what to compare.
"""

from __future__ import annotations

__all__ = ["RawBaseline"]

from ._baseline import RawBaseline
