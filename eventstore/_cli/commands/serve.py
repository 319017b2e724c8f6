"""``eventstore serve``: the HTTP/SSE API and the run viewer (extra ``eventstore-core[serve]``)."""

from __future__ import annotations

__all__ = ["register"]

from typing import Annotated

import typer

from .._url import POSITIONAL_URL_HELP, URL_HELP


def serve(
    positional_url: Annotated[
        str | None, typer.Argument(metavar="URL", help=POSITIONAL_URL_HELP, show_default=False)
    ] = None,
    url: Annotated[str | None, typer.Option("--url", help=URL_HELP)] = None,
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME",
            help="Host header name to serve (repeatable; '*.example.com' patterns, '*' for "
            "any). Default: the loopback names and --host; any name for a wildcard --host.",
        ),
    ] = None,
) -> None:
    """Serve GET /runs, /runs/{id}/events, the SSE stream /runs/{id}/stream and a viewer at /.

    There is no authentication: keep it on loopback or behind an authenticating
    proxy (see the docs' "Serving" page).
    """
    from .._url import choose_url

    store = choose_url(url, positional_url)
    try:
        from ...serve import serve_command
    except ImportError as exc:
        from ..._errors import ConfigurationError

        raise ConfigurationError(
            f"eventstore serve needs eventstore's 'serve' extra ({exc.name} is missing); "
            "from a checkout: pip install './[serve]'"
        ) from exc
    serve_command(store, host=host, port=port, allowed_hosts=allow_host or None)


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command."""
    app.command("serve")(serve)
