"""mkdocs hook: renders the benchmark harness's JSON results as charts.

``benchmarks/run.py`` (or ``eventstore bench --json``) writes one JSON report per
store into ``benchmarks/results/``. Where a page contains ``<!-- bench-chart -->``
this hook replaces it with, per report, an inline SVG bar chart of the store's
ratio to each raw baseline by scenario, and a table of events/s. Charts are made
at build time from the measured files, so the docs never show a figure that was
not measured.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

MARKER = "<!-- bench-chart -->"
RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
BAR, GAP, LEFT, WIDTH = 18, 10, 260, 720


def _bars(report: dict[str, Any]) -> list[tuple[str, float]]:
    bars = []
    for result in report["results"]:
        for baseline in result["baselines"]:
            if baseline.get("ratio") is not None:
                label = f"{result['scenario']} vs {baseline['name']}"
                bars.append((label, float(baseline["ratio"])))
    return bars


def _svg(bars: list[tuple[str, float]]) -> str:
    top = max([1.0, *(ratio for _, ratio in bars)])
    scale = (WIDTH - LEFT - 60) / top
    height = len(bars) * (BAR + GAP) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'role="img" aria-label="ratio to raw driver" font-family="sans-serif" font-size="12">'
    ]
    for i, (label, ratio) in enumerate(bars):
        y = 10 + i * (BAR + GAP)
        colour = "#2e7d32" if ratio >= 1.0 else "#1565c0"
        parts.append(
            f'<text x="{LEFT - 8}" y="{y + BAR - 5}" text-anchor="end">{html.escape(label)}</text>'
            f'<rect x="{LEFT}" y="{y}" width="{max(ratio * scale, 1):.1f}" height="{BAR}" '
            f'fill="{colour}"/><text x="{LEFT + ratio * scale + 6:.1f}" y="{y + BAR - 5}">'
            f"{ratio:.2f}x</text>"
        )
    one = LEFT + scale
    parts.append(
        f'<line x1="{one:.1f}" y1="0" x2="{one:.1f}" y2="{height - 20}" stroke="#c62828" '
        f'stroke-dasharray="4 3"/><text x="{one + 4:.1f}" y="{height - 6}" fill="#c62828">'
        "1.0x = raw driver</text></svg>"
    )
    return "".join(parts)


def _table(report: dict[str, Any]) -> str:
    rows = ["| scenario | store events/s | baselines (events/s, ratio) |", "| --- | --- | --- |"]
    for result in report["results"]:
        store = result["store"]
        figure = f"{store['events_per_second']:,.0f}"
        if result.get("latency"):
            lat = result["latency"]
            figure += (
                f" (p50 {lat['p50_seconds'] * 1000:.2f} ms, p99 {lat['p99_seconds'] * 1000:.2f} ms)"
            )
        cells = []
        for baseline in result["baselines"]:
            if baseline.get("measurement") and baseline.get("ratio") is not None:
                eps = baseline["measurement"]["events_per_second"]
                cells.append(f"{baseline['name']}: {eps:,.0f}, {baseline['ratio']:.2f}x")
        rows.append(
            f"| {result['scenario']} {result['title']} | {figure} | {'; '.join(cells) or '-'} |"
        )
    return "\n".join(rows)


def render() -> str:
    """Markdown for every report in ``benchmarks/results``."""
    reports = sorted(RESULTS.glob("*.json")) if RESULTS.is_dir() else []
    if not reports:
        return "*No benchmark results are committed yet: run `python3 benchmarks/run.py`.*"
    out = []
    for path in reports:
        report = json.loads(path.read_text(encoding="utf-8"))
        out.append(f"### {html.escape(report['backend'])}: `{report['url']}`\n")
        out.append(
            f"Measured {report['started_at']}, {report['events']} events per scenario, "
            f"best of {report['repeats']}.\n"
        )
        bars = _bars(report)
        if bars:
            out.append(_svg(bars) + "\n")
        out.append(_table(report) + "\n")
        if report.get("bytes_per_event"):
            out.append(f"Stored bytes per event (tracemalloc): {report['bytes_per_event']:,.0f}.\n")
    return "\n".join(out)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Expand the marker on pages that contain it (mkdocs hook)."""
    return markdown.replace(MARKER, render()) if MARKER in markdown else markdown
