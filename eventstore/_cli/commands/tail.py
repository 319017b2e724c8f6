"""``eventstore tail``: follow a run live, as a timeline or as JSON lines."""

from __future__ import annotations

__all__ = ["register"]

from typing import TYPE_CHECKING, Annotated

import typer

from .._url import URL_HELP

if TYPE_CHECKING:
    from whenever import Instant


async def _tail(url: str, run_id: str, after: int | None, as_json: bool) -> None:
    import sys

    from rich.text import Text

    import eventstore
    from eventstore.backend import encode_envelope

    from .._app import out_console
    from .._timeline import summarize

    run = eventstore.RunId.parse(run_id) if _is_uuid(run_id) else None
    if run is None:
        raise eventstore.InvalidArgumentError(f"RUN_ID must be a UUID, got {run_id!r}")
    console = out_console()
    async with eventstore.open_store(url) as store:
        async for envelope in store.subscribe(run, after, until_terminal=True):
            if as_json:
                # One envelope per line, flushed, so a pipe sees each as it arrives.
                sys.stdout.write(encode_envelope(envelope) + "\n")
                sys.stdout.flush()
                continue
            line = Text(f"{envelope.seq:>6} ")
            line.append(_clock(envelope.emitted_at) + " ", style="dim")
            line.append(f"{envelope.event.event_type:<26}", style="bold")
            line.append(summarize(envelope.event))
            console.print(line, soft_wrap=True)


def _clock(moment: Instant) -> str:
    """``HH:MM:SS.mmm`` in UTC, the milliseconds cut (not rounded) from the stored time."""
    return f"{moment.to_stdlib():%H:%M:%S.%f}"[:-3]


def _is_uuid(text: str) -> bool:
    import uuid

    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def tail(
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="The run to follow.", show_default=False)
    ],
    legacy_run_id: Annotated[
        str | None,
        typer.Argument(
            metavar="(deprecated: URL RUN_ID)",
            hidden=True,
            help="Deprecated form `tail URL RUN_ID`: the run, after the URL.",
            show_default=False,
        ),
    ] = None,
    url: Annotated[str | None, typer.Option("--url", help=URL_HELP)] = None,
    after: Annotated[
        int | None,
        typer.Option("--after", min=0, help="Start after this seq (default: from the first)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one envelope JSON per line instead.")
    ] = False,
) -> None:
    """Follow a run live: catch up from --after, then print events as they arrive.

    Ends after the run's terminal event (completed, failed, cancelled), or on
    Ctrl-C. Resume later with --after LAST_SEQ_SEEN.
    """
    from .._app import run_async
    from .._url import choose_url

    positional_url = None
    if legacy_run_id is not None:  # `tail URL RUN_ID`, the form before --url
        positional_url, run_id = run_id, legacy_run_id
    store = choose_url(url, positional_url)
    try:
        run_async(_tail(store, run_id, after, as_json))
    except KeyboardInterrupt:
        # Ctrl-C is the normal way to stop following a run that has not ended.
        raise typer.Exit(0) from None


def register(app: typer.Typer) -> None:
    """Add the ``tail`` command."""
    app.command("tail")(tail)
