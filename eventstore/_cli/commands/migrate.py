"""``eventstore migrate``: apply a backend's pending schema migrations explicitly."""

from __future__ import annotations

__all__ = ["register"]

from typing import Annotated

import typer

from .._url import POSITIONAL_URL_HELP, URL_HELP


async def _migrate(url: str) -> list[str]:
    from ..._errors import ConfigurationError
    from ..._plugins import default_registry
    from ..._url import redact_url

    if "telemetry" in url:
        # The option belongs to open_store's wrapper, not to the backend; the same
        # URL must work for every command.
        from ...telemetry import take_telemetry_option

        url, _ = take_telemetry_option(url, {})
    entry = default_registry().backend_for(url)
    if entry.spec.migrate is None:
        raise ConfigurationError(
            f"backend {entry.spec.name!r} keeps no schema to migrate ({redact_url(url)})"
        )
    migrate = entry.load(entry.spec.migrate)
    steps: list[str] = await migrate(url)
    return steps


def migrate(
    url: Annotated[str | None, typer.Option("--url", help=URL_HELP)] = None,
    positional_url: Annotated[
        str | None, typer.Argument(metavar="URL", help=POSITIONAL_URL_HELP, show_default=False)
    ] = None,
) -> None:
    """Apply pending schema migrations to the store and list the steps applied.

    Stores create their schema on first open; use this to upgrade an existing
    database explicitly, e.g. before rolling out a new version. A database written
    by a newer schema version is refused with an error.
    """
    from ..._url import redact_url
    from .._app import out_console, run_async
    from .._url import choose_url

    url = choose_url(url, positional_url)
    steps = run_async(_migrate(url))
    console = out_console()
    for step in steps:
        console.print(f"applied: {step}")
    console.print(
        f"{redact_url(url)}: schema is current"
        + (f" ({len(steps)} step(s) applied)" if steps else " (nothing to do)")
    )


def register(app: typer.Typer) -> None:
    """Add the ``migrate`` command."""
    app.command("migrate")(migrate)
