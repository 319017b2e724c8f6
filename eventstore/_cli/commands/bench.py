"""``eventstore bench``: run the benchmark scenarios against a store."""

from __future__ import annotations

__all__ = ["register"]

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.table import Table

    from ...bench import BenchReport


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def report_table(report: BenchReport) -> Table:
    """The report as a rich table: one row per scenario, one more per baseline.

    Scenario descriptions go in the caption so the figures keep their width on a
    narrow terminal; only the first column (scenario or baseline name) wraps.
    """
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=f"eventstore bench: {report.backend} ({report.url}), {report.events:,} events, "
        f"best of {report.repeats}",
        title_justify="left",
        caption="; ".join(f"{r.scenario} {r.title}" for r in report.results),
        caption_justify="left",
    )
    table.add_column("scenario", ratio=1, min_width=18, overflow="fold")
    # best = events/s of the best round, median = of the median round, ratio = store/raw.
    for header in ("events", "best", "median", "ratio", "p50/p99 µs"):
        table.add_column(header, justify="right", no_wrap=True, min_width=len(header))
    for result in report.results:
        latency = "-"
        if result.latency is not None:
            latency = f"{result.latency.p50 * 1e6:,.0f} / {result.latency.p99 * 1e6:,.0f}"
        table.add_row(
            Text(result.scenario, style="bold"),
            f"{result.store.events:,}",
            _rate(result.store.events_per_second),
            _rate(result.store.median_events_per_second),
            "",
            latency,
        )
        for baseline in result.baselines:
            label = Text(f" vs {baseline.name}", style="dim")
            if baseline.measurement is None:
                label.append(f" ({baseline.skipped or 'skipped'})")
                table.add_row(label, "", "", "", "-", "")
                continue
            table.add_row(
                label,
                f"{baseline.measurement.events:,}",
                _rate(baseline.measurement.events_per_second),
                _rate(baseline.measurement.median_events_per_second),
                f"{baseline.ratio:.2f}x" if baseline.ratio is not None else "-",
                "",
            )
    return table


def _check_writable(path: Path) -> None:
    """Refuse an output file that cannot be written before minutes of benchmarking."""
    from ..._errors import InvalidArgumentError

    if path.is_dir():
        raise InvalidArgumentError(f"--json {path}: is a directory")
    folder = path.parent
    if not folder.is_dir():
        raise InvalidArgumentError(f"--json {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InvalidArgumentError(f"--json {path}: not writable")


def bench(
    url: Annotated[
        str | None,
        typer.Option(help="Store URL (default: EVENTSTORE_URL, else the embedded memory://)."),
    ] = None,
    scenarios: Annotated[
        str, typer.Option(help="Comma-separated scenarios to run, from S1..S6.")
    ] = "S1,S2,S3,S4,S5,S6",
    events: Annotated[int, typer.Option(min=1, help="Events per scenario round.")] = 10_000,
    repeats: Annotated[
        int, typer.Option(min=1, help="Timed rounds per side; the best one counts.")
    ] = 3,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write every figure to this JSON file.")
    ] = None,
) -> None:
    """Benchmark a store: S1-S6 throughput, S6 latency, ratios to the raw driver.

    S1 sequential appends to one run, S2 64 concurrent appenders on distinct runs,
    S3 16 concurrent appenders on one run, S4 batches of 100, S5 reading a run in
    pages of 100, S6 append-to-live-delivery latency. Backends that declare raw
    baselines are measured against them in the same run (store / raw = ratio of
    events/s). The memory backend also reports stored bytes per event.

    Exit status: 0 when every scenario ran, 1 when one failed (the others are
    still reported), 2 for a bad URL, option or scenario name.
    """
    import json

    from rich.text import Text

    from ..._errors import InvalidArgumentError
    from ...bench import run_benchmark
    from .._app import err_console, out_console, run_async

    chosen = [s.strip().upper() for s in scenarios.split(",") if s.strip()]
    status = err_console()
    if json_file is not None:
        _check_writable(json_file)

    def progress(line: str) -> None:
        status.print(f"[dim]running {line}[/dim]")

    report = run_async(
        run_benchmark(url, scenarios=chosen, events=events, repeats=repeats, progress=progress)
    )
    console = out_console()
    console.print(report_table(report))
    if report.bytes_per_event is not None:
        console.print(f"stored bytes per event (tracemalloc): {report.bytes_per_event:,.0f}")
    console.print(
        "[dim]best / median: events/s of the best / median round; ratio: store events/s"
        " divided by the raw driver's, best round each. Absolute figures vary with load.[/dim]"
    )
    for note in report.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    if json_file is not None:
        try:
            json_file.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        except OSError as exc:
            raise InvalidArgumentError(f"--json {json_file}: {exc.strerror or exc}") from None
        console.print(f"figures written to {json_file}")
    for scenario, error in report.errors:
        status.print(Text(f"{scenario} failed: {error}", style="bold red"), soft_wrap=True)
    if report.errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``bench`` command."""
    app.command("bench")(bench)
