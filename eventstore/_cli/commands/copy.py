"""``eventstore copy``: copy runs between any two stores, resumably, and verify them."""

from __future__ import annotations

__all__ = ["register"]

from typing import TYPE_CHECKING, Annotated

import typer

from ..._url import redact_url

if TYPE_CHECKING:
    from ..._ids import RunId
    from ..._store import EventStore


async def _total_events(source: EventStore, run_ids: list[RunId] | None) -> int | None:
    from ... import Capability

    if run_ids is not None:
        return sum([await source.last_seq(run_id) for run_id in run_ids])
    if Capability.LIST_RUNS not in source.capabilities:
        return None
    total, after = 0, None
    while runs := await source.list_runs(limit=1000, after=after):
        total += sum(info.last_seq for info in runs)
        after = runs[-1].run_id
    return total


async def _check_something_to_copy(
    source: EventStore, source_url: str, run_ids: list[RunId] | None, total: int | None
) -> None:
    """Refuse a copy that can only be a mistake: a missing run, an empty source.

    A mistyped run id or source URL would otherwise "copy 0 events" and exit 0.
    """
    import eventstore

    for run_id in run_ids or []:
        if await source.last_seq(run_id) == 0:
            raise eventstore.InvalidArgumentError(
                f"--run {run_id}: {redact_url(source_url)} has no such run"
            )
    if run_ids is None and total == 0:
        raise eventstore.InvalidArgumentError(
            f"{redact_url(source_url)} holds no runs: nothing to copy (is the source URL right?)"
        )


async def _copy(source_url: str, destination_url: str, runs: list[str], verify: bool) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    import eventstore
    from eventstore.copy import CopyProgress, copy_runs, verify_runs

    from .._app import out_console

    console = out_console()
    try:
        run_ids = [eventstore.RunId.parse(r) for r in runs] if runs else None
    except ValueError as exc:
        raise eventstore.InvalidArgumentError(f"--run: {exc}") from None
    async with (
        eventstore.open_store(source_url) as source,
        eventstore.open_store(destination_url) as destination,
    ):
        total = await _total_events(source, run_ids)
        await _check_something_to_copy(source, source_url, run_ids, total)
        columns = (
            TextColumn("[bold]copy[/bold] {task.fields[runs]} runs"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} events/s"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task("copy", total=total, runs=0, rate="-")

            def update(progress: CopyProgress) -> None:
                done = progress.events_copied + progress.events_skipped
                speed = bar.tasks[task].speed
                rate = f"{speed:,.0f}" if speed else "-"
                bar.update(task, completed=done, runs=progress.runs_done, rate=rate)

            result = await copy_runs(source, destination, run_ids, on_progress=update)
            update(result)
        console.print(
            f"copied {result.events_copied} events of {result.runs_done} runs "
            f"from {redact_url(source_url)} to {redact_url(destination_url)}"
            f" ({result.events_skipped} already there)"
        )
        if not verify:
            return 0
        comparisons = await verify_runs(source, destination, run_ids)
        different = [c for c in comparisons if not c.identical]
        for c in different:
            console.print(
                f"[red]run {c.run_id} differs[/red]: source {c.source_events} events, "
                f"destination {c.destination_events}, first difference at seq {c.first_difference}"
            )
        console.print(
            f"verify: {len(comparisons) - len(different)} of {len(comparisons)} runs identical"
        )
        return 1 if different else 0


def _stores(
    from_url: str | None, to_url: str | None, source: str | None, destination: str | None
) -> tuple[str, str]:
    """The two stores: --from / --to, else the deprecated SOURCE DEST, else the default."""
    import eventstore

    from .._url import choose_url

    if source is not None and destination is None:
        raise eventstore.InvalidArgumentError(
            "give the stores as --from URL --to URL (one positional URL is ambiguous)"
        )
    chosen_from = choose_url(from_url, source, option_name="--from")
    chosen_to = choose_url(to_url, destination, option_name="--to")
    if chosen_from == chosen_to:
        raise eventstore.InvalidArgumentError(
            f"--from and --to are the same store ({redact_url(chosen_from)}): give the other "
            "one (either defaults to EVENTSTORE_URL, else ./eventstore-demo.db)"
        )
    return chosen_from, chosen_to


def copy(
    source: Annotated[
        str | None,
        typer.Argument(
            metavar="SOURCE", help="Deprecated: the same as --from.", show_default=False
        ),
    ] = None,
    destination: Annotated[
        str | None,
        typer.Argument(metavar="DEST", help="Deprecated: the same as --to.", show_default=False),
    ] = None,
    from_url: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Store URL to read from (default: EVENTSTORE_URL, else ./eventstore-demo.db "
            "through SQLite).",
        ),
    ] = None,
    to_url: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Store URL to write to (default: EVENTSTORE_URL, else ./eventstore-demo.db "
            "through SQLite).",
        ),
    ] = None,
    run: Annotated[
        list[str] | None, typer.Option("--run", help="Copy only this run (repeatable).")
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="Afterwards compare both sides run by run.")
    ] = False,
) -> None:
    """Copy runs from --from to --to keeping event ids, seqs, session ids and times.

    Re-running continues where an interrupted copy stopped and never duplicates.
    Exit status 1 when --verify finds a difference. Runs written by the Rust
    runtime's Redis store are read through the Redis backend's legacy layout
    option (see the Redis docs).
    """
    from .._app import run_async

    source_url, destination_url = _stores(from_url, to_url, source, destination)
    code = run_async(_copy(source_url, destination_url, run or [], verify))
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add the ``copy`` command."""
    app.command("copy")(copy)
