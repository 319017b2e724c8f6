"""``eventstore demo``: write a realistic agent run, then replay it page by page."""

from __future__ import annotations

__all__ = ["register"]

from typing import TYPE_CHECKING, Annotated

import typer

from .._url import CLI_DEFAULT_URL, URL_HELP, cli_default_url

if TYPE_CHECKING:
    from rich.console import Console
    from whenever import Instant

    from ..._envelope import EventEnvelope
    from ..._events import AgentEvent
    from ..._ids import RunId
    from ..._store import EventStore

#: Events per ``list_after`` call during the replay: small, to show the paging.
PAGE_SIZE = 5


async def _write(store: EventStore, events: list[AgentEvent]) -> RunId:
    run_id = events[0].run_id
    for event in events:
        await store.append(event)
    return run_id


async def _read_pages(store: EventStore, run_id: RunId) -> list[list[EventEnvelope]]:
    pages: list[list[EventEnvelope]] = []
    after = 0
    while page := await store.list_after(run_id, after, PAGE_SIZE):
        pages.append(page)
        after = page[-1].seq
    return pages


def _print_digest(console: Console, envelopes: list[EventEnvelope]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from .._timeline import digest

    summary = digest(envelopes)
    for iteration, text in sorted(summary.text_by_iteration.items()):
        console.print(f"[bold]assistant text, iteration {iteration}:[/bold] {escape(text)}")
    if summary.tool_calls:
        tools = Table(title="tool calls", title_justify="left")
        for column in ("call", "tool", "result", "reported", "measured"):
            tools.add_column(
                column, justify="right" if column in {"reported", "measured"} else "left"
            )
        for call_id, name, status, reported, measured in summary.tool_calls:
            tools.add_row(
                call_id,
                name,
                f"[green]{status}[/green]" if status == "ok" else f"[red]{status}[/red]",
                f"{reported} ms" if reported is not None else "?",
                f"{measured * 1000:.0f} ms" if measured is not None else "?",
            )
        console.print(tools)
    console.print(
        f"[bold]usage totals:[/bold] {summary.input_tokens} input, "
        f"{summary.output_tokens} output, {summary.total_tokens} total tokens; "
        f"cache read {summary.cache_read_tokens}, cache created {summary.cache_created_tokens}"
    )
    console.print(f"[bold]terminal status:[/bold] {escape(summary.status)}")


async def _replay(console: Console, store: EventStore, run_id: RunId, title: str) -> None:
    from .._timeline import timeline_table

    pages = await _read_pages(store, run_id)
    caption = f"{title}: run {run_id}, read in {len(pages)} page(s) of up to {PAGE_SIZE}"
    console.print(timeline_table(pages, caption))
    _print_digest(console, [e for page in pages for e in page])
    console.print()


def _when(moment: Instant | None) -> str:
    # To the second, in UTC as stored: the table is an overview, not the exact time.
    return "-" if moment is None else f"{moment.to_stdlib():%Y-%m-%d %H:%M:%S}"


async def _list_runs(console: Console, store: EventStore) -> None:
    from rich.table import Table

    table = Table(title="runs in this store (it is durable)", title_justify="left")
    for column in ("run id", "session", "events", "first emitted", "last emitted"):
        table.add_column(column)
    after = None
    while runs := await store.list_runs(limit=100, after=after):
        for info in runs:
            table.add_row(
                str(info.run_id),
                str(info.session_id or "-"),
                str(info.last_seq),
                _when(info.first_emitted_at),
                _when(info.last_emitted_at),
            )
        after = runs[-1].run_id
    console.print(table)


#: Where the demo writes when neither --url nor EVENTSTORE_URL is given: the CLI's one
#: embedded default (see :mod:`eventstore._cli._url`), so a second demo, ``tail`` and
#: ``serve`` see the first one's runs.
DEMO_SQLITE_URL = CLI_DEFAULT_URL


def default_demo_url() -> str:
    """EVENTSTORE_URL, else the durable embedded SQLite file if installed, else memory://."""
    return cli_default_url()


async def _demo(url: str | None) -> None:
    import eventstore.backend

    from ..._capabilities import Capability
    from ..._time import utc_now
    from .._app import out_console
    from .._demo_script import demo_runs

    url = url or cli_default_url()
    shown = eventstore.backend.redact_url(url)
    console = out_console()
    runs = demo_runs(utc_now())
    async with eventstore.open_store(url) as store:
        console.print(f"Writing a demo agent run to [bold]{shown}[/bold] ({store.backend_name})")
        main = await _write(store, runs.main)
        cancelled = await _write(store, runs.cancelled)
        failed = await _write(store, runs.failed)
        await _replay(console, store, main, "Timeline")
        await _replay(console, store, cancelled, "Follow-up run, cancelled")
        await _replay(console, store, failed, "Follow-up run, failed")
        caps = store.capabilities
        if Capability.DURABLE in caps and Capability.LIST_RUNS in caps:
            await _list_runs(console, store)
    console.print(f"run id: [bold]{main}[/bold]  session: {runs.session_id}")
    console.print(f"store: [bold]{shown}[/bold]")


def demo(
    url: Annotated[
        str | None,
        typer.Option(help=URL_HELP),
    ] = None,
) -> None:
    """Write a realistic agent run (every event type), then replay it as a timeline.

    The run is read back page by page, as an application would, and shown with
    time offsets, assembled text, tool call durations, usage totals and how it
    ended. On a durable store the runs already stored are listed too.
    """
    from .._app import run_async

    run_async(_demo(url))


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command."""
    app.command("demo")(demo)
