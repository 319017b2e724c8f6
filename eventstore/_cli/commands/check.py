"""``eventstore check URL``: run the conformance suite against a store."""

from __future__ import annotations

__all__ = ["register"]

from typing import Annotated

import typer

_INSTALL_HINT = (
    "the conformance suite (distribution eventstore-contract-tests) is not installed; "
    "from a checkout: pip install ./contract_tests"
)


def check(
    url: Annotated[str, typer.Argument(help="Store URL to test, e.g. memory://")],
    profile: Annotated[
        str | None,
        typer.Option(help="Hypothesis profile of the suite (e.g. quick, ci, thorough)."),
    ] = None,
    pytest_args: Annotated[
        list[str] | None,
        typer.Argument(
            help="Extra pytest arguments, after '--' (e.g. -- -x -k append; -- -rA to "
            "change the short summary, which lists skip reasons by default)."
        ),
    ] = None,
) -> None:
    """Run the conformance suite (eventstore-contract-tests) against URL.

    Skipped tests are listed with their reason, and a summary line says which
    capabilities were covered, failed, skipped or not run. Exits with pytest's
    status: 0 when every applicable test passed, non-zero when any failed, 2 when
    the suite is not installed or the URL is not usable.
    """
    import importlib

    from ..._plugins import open_store
    from ..._url import redact_url
    from .._app import fail, out_console

    # Imported by name: the suite is a separate, optional distribution.
    try:
        suite = importlib.import_module("eventstore_contract")
    except ImportError:
        fail(_INSTALL_HINT)
    run_suite = getattr(suite, "run_suite", None)
    if run_suite is None:
        fail("the installed eventstore-contract-tests has no run_suite(); upgrade it")
    # An unusable URL (unknown scheme, bad option, backend that will not load) is a
    # usage error, reported as one line with status 2 rather than as every test failing.
    open_store(url)
    out_console().print(f"Running the conformance suite against [bold]{redact_url(url)}[/bold]")
    status = run_suite(url, profile=profile, extra_args=list(pytest_args or ()))
    code = int(status)
    if code != 0:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add the ``check`` command."""
    app.command("check")(check)
