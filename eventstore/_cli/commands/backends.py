"""``eventstore backends``: the installed backends and the plugins that failed to load."""

from __future__ import annotations

__all__ = ["register"]

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from ..._plugins import RegisteredBackend


def _load_error(entry: RegisteredBackend) -> str | None:
    from ..._errors import ConfigurationError

    try:
        entry.load_factory()
    except ConfigurationError as exc:
        return str(exc)
    return None


def backends() -> None:
    """List installed backends: name, URL schemes, distribution, capabilities, load errors.

    Each backend's factory is imported to prove it loads; a plugin or factory that
    fails is listed with its error instead of hiding it.
    """
    from rich.table import Table
    from rich.text import Text

    import eventstore.backend

    from .._app import out_console

    registry = eventstore.backend.default_registry()
    table = Table(title="eventstore backends", title_justify="left")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("URL schemes", no_wrap=True)
    table.add_column("distribution")
    table.add_column("capabilities")
    table.add_column("status")
    broken = 0
    for entry in registry.specs():
        error = _load_error(entry)
        broken += error is not None
        dist = entry.distribution or "(registered in code)"
        if entry.version:
            dist = f"{dist} {entry.version}"
        table.add_row(
            entry.spec.name,
            ", ".join(f"{s}://" for s in entry.spec.schemes),
            dist,
            ", ".join(sorted(entry.spec.capabilities)) or "-",
            Text(error, style="red") if error else Text("ok", style="green"),
        )
    for failure in registry.failures.values():
        broken += 1
        table.add_row(
            failure.plugin,
            "?",
            failure.distribution or "?",
            "-",
            Text(f"plugin failed to load: {failure.error}", style="red"),
        )
    console = out_console()
    console.print(table)
    if broken:
        console.print(
            f"[red]{broken} backend(s) cannot be used; reinstall the distribution shown.[/red]"
        )


def register(app: typer.Typer) -> None:
    """Add the ``backends`` command."""
    app.command("backends")(backends)
