"""``eventstore backends``: the installed backends and the plugins that failed to load."""

from __future__ import annotations

__all__ = ["register"]

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from ..._plugins import RegisteredBackend


def _load_error(entry: RegisteredBackend) -> str | None:
    from ..._errors import ConfigurationError

    try:
        entry.load_factory()
    except ConfigurationError as exc:
        return str(exc)
    return None


#: Below this console width (and whenever stdout is not a terminal) the backends are
#: printed one block each: a table would squeeze its columns to nothing.
TABLE_MIN_WIDTH = 110


@dataclass(frozen=True)
class _Row:
    name: str
    schemes: list[str]
    distribution: str | None
    version: str | None
    capabilities: list[str]
    description: str
    error: str | None


def _rows() -> list[_Row]:
    import eventstore.backend

    registry = eventstore.backend.default_registry()
    rows = [
        _Row(
            name=entry.spec.name,
            schemes=[f"{s}://" for s in entry.spec.schemes],
            distribution=entry.distribution,
            version=entry.version,
            capabilities=sorted(c.value for c in entry.spec.capabilities),
            description=entry.spec.description,
            error=_load_error(entry),
        )
        for entry in registry.specs()
    ]
    rows += [
        _Row(
            name=failure.plugin,
            schemes=[],
            distribution=failure.distribution,
            version=None,
            capabilities=[],
            description="",
            error=f"plugin failed to load: {failure.error}",
        )
        for failure in registry.failures.values()
    ]
    return rows


def _distribution(row: _Row) -> str:
    if row.distribution is None:
        return "(registered in code)" if row.schemes else "?"
    return f"{row.distribution} {row.version}" if row.version else row.distribution


def _table(rows: list[_Row]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="eventstore backends", title_justify="left")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("URL schemes", min_width=12)
    table.add_column("distribution", min_width=14)
    table.add_column("capabilities", min_width=20, ratio=2)
    table.add_column("status", min_width=8, ratio=1)
    for row in rows:
        table.add_row(
            row.name,
            ", ".join(row.schemes) or "?",
            _distribution(row),
            ", ".join(row.capabilities) or "-",
            Text(row.error, style="red") if row.error else Text("ok", style="green"),
        )
    return table


def _print_blocks(console: Console, rows: list[_Row]) -> None:
    """One block per backend, each field on its own line, wrapped under its label."""
    import textwrap

    from rich.text import Text

    width = max(console.width, 40)
    label_width = len("capabilities: ") + 2
    for index, row in enumerate(rows):
        if index:
            console.print()
        status = Text("ok", style="green") if row.error is None else Text("error", style="red")
        console.print(Text(f"{row.name}: ", style="bold") + status)
        fields = [
            ("schemes", ", ".join(row.schemes) or "?"),
            ("distribution", _distribution(row)),
            ("capabilities", ", ".join(row.capabilities) or "-"),
        ]
        if row.description:
            fields.append(("description", row.description))
        if row.error:
            fields.append(("error", row.error))
        for label, value in fields:
            text = textwrap.fill(
                value,
                width=width,
                initial_indent=f"  {label}:".ljust(label_width),
                subsequent_indent=" " * label_width,
                break_on_hyphens=False,
                break_long_words=False,
            )
            console.print(Text(text, style="red" if label == "error" else ""), soft_wrap=True)


def backends(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list of objects instead, for scripts.")
    ] = False,
) -> None:
    """List installed backends: name, URL schemes, distribution, capabilities, load errors.

    Each backend's factory is imported to prove it loads; a plugin or factory that
    fails is listed with its error instead of hiding it. On a wide terminal this is
    a table; piped, or on a narrow terminal, one block per backend.
    """
    import json
    import sys

    from .._app import out_console

    rows = _rows()
    broken = sum(row.error is not None for row in rows)
    if as_json:
        items = [{**asdict(row), "ok": row.error is None} for row in rows]
        sys.stdout.write(json.dumps(items, indent=2) + "\n")
        return
    console = out_console()
    if console.is_terminal and console.width >= TABLE_MIN_WIDTH:
        console.print(_table(rows))
    else:
        _print_blocks(console, rows)
    if broken:
        console.print()
        console.print(
            f"[red]{broken} backend(s) cannot be used; reinstall the distribution shown.[/red]"
        )


def register(app: typer.Typer) -> None:
    """Add the ``backends`` command."""
    app.command("backends")(backends)
