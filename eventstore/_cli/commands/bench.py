"""``eventstore bench``: run the benchmark scenarios against a store."""

from __future__ import annotations

__all__ = ["register"]

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer

from .._url import URL_HELP

if TYPE_CHECKING:
    from rich.table import Table

    from ...bench import BenchReport, RawBaseline

#: A driver's words for a command refused to the connected user (Redis ACLs): the
#: refused command when it is named, else the refusal of a command a server-side
#: script runs (Redis does not say which).
_REFUSED_COMMAND: Final = re.compile(r"no permissions to run the '([^']+)' command")
_REFUSED_IN_SCRIPT: Final = "can't run this command or subcommand"


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


def refusal_hint(message: str) -> str:
    """What to grant, for a failure the server's access control caused; else ``""``."""
    match = _REFUSED_COMMAND.search(message)
    if match is not None:
        command = match.group(1)
        return f" (the server refused {command.upper()} to this user: grant +{command})"
    if _REFUSED_IN_SCRIPT in message:
        return (
            " (the server refused a command of the store's scripts to this user: grant"
            " every right the backend's documentation lists: docs/backends/redis.md, ACL)"
        )
    return ""


def failure_lines(errors: Sequence[tuple[str, str]]) -> list[str]:
    """One line per distinct failure, naming every scenario that failed with it.

    A store that refuses the user a command fails every scenario the same way; that
    is one line ("S1, S5, S6 failed: ..."), not one per scenario.
    """
    from ..._url import redact_text

    scenarios: dict[str, list[str]] = {}
    for scenario, message in errors:
        scenarios.setdefault(message, []).append(scenario)
    return [
        f"{', '.join(names)} failed: {redact_text(message)}{refusal_hint(message)}"
        for message, names in scenarios.items()
    ]


def with_skip_reasons(report: BenchReport, baselines: Sequence[RawBaseline]) -> BenchReport:
    """``report`` with each baseline that says why it skipped (``skip_reason``) saying so.

    The harness records a baseline that raised ``NotImplementedError`` as "not
    implemented for Sx"; a baseline refused by the server (a right the store does
    not need, e.g. Redis ``INCR`` for the reference design) sets ``skip_reason``,
    shown instead in the table and the JSON.
    """
    from dataclasses import replace

    reasons: dict[str, str] = {}
    for baseline in baselines:
        reason = getattr(baseline, "skip_reason", None)
        if isinstance(reason, str) and reason:
            reasons[baseline.name] = reason
    if not reasons:
        return report
    results = tuple(
        replace(
            result,
            baselines=tuple(
                replace(b, skipped=reasons[b.name])
                if b.measurement is None and b.name in reasons
                else b
                for b in result.baselines
            ),
        )
        for result in report.results
    )
    return replace(report, results=results)


async def _run(
    url: str | None,
    scenarios: list[str],
    events: int,
    repeats: int,
    progress: Callable[[str], None],
) -> BenchReport:
    """:func:`run_benchmark` with the backend's baselines loaded here, to read their reasons."""
    from dataclasses import replace

    from ..._errors import ConfigurationError
    from ...bench import load_baselines, run_benchmark
    from .._url import cli_default_url

    url = url or cli_default_url()
    notes: list[str] = []
    baselines: list[RawBaseline] = []
    try:  # as run_benchmark does: broken baselines must not hide the store's figures
        baselines = load_baselines(url)
    except ConfigurationError as exc:
        notes.append(f"raw baselines unavailable: {exc}")
    report = await run_benchmark(
        url,
        scenarios=scenarios,
        events=events,
        repeats=repeats,
        baselines=baselines,
        progress=progress,
    )
    report = with_skip_reasons(report, baselines)
    return replace(report, notes=(*notes, *report.notes)) if notes else report


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
        typer.Option(help=URL_HELP),
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

    Exit status: 0 when every scenario ran (a baseline the server refuses to this
    user is skipped, saying which right it lacks), 1 when one failed (the others are
    still reported; the same failure of several scenarios is one line), 2 for a bad
    URL, option or scenario name, a store that cannot be opened, or a command the
    store needs that the server refuses to this user (a missing ACL right, at open or
    in a scenario): one red line naming it, no traceback.
    """
    import json

    from rich.text import Text

    from ..._errors import EventStoreError, InvalidArgumentError
    from .._app import EXIT_ERROR, err_console, fail, out_console, run_async

    chosen = [s.strip().upper() for s in scenarios.split(",") if s.strip()]
    status = err_console()
    if json_file is not None:
        _check_writable(json_file)

    def progress(line: str) -> None:
        status.print(f"[dim]running {line}[/dim]")

    try:
        report = run_async(_run(url, chosen, events, repeats, progress))
    except EventStoreError as exc:  # e.g. the store's open refused: say what to grant
        fail(f"{exc}{refusal_hint(str(exc))}")
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
    for line in failure_lines(report.errors):
        status.print(Text(line, style="bold red"), soft_wrap=True)
    if any(refusal_hint(message) for _, message in report.errors):
        # A right the store needs is missing: the set-up's fault, as when open is refused.
        raise typer.Exit(EXIT_ERROR)
    if report.errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``bench`` command."""
    app.command("bench")(bench)
