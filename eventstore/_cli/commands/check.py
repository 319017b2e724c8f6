"""``eventstore check [--url URL]``: run the conformance suite against a store."""

from __future__ import annotations

__all__ = ["register"]

from typing import Annotated

import typer

from .._url import POSITIONAL_URL_HELP, URL_HELP

_INSTALL_HINT = (
    "the conformance suite (distribution eventstore-contract-tests) is not installed; "
    "from a checkout: pip install ./contract_tests"
)


def _split_positionals(
    url: str | None, positional: str | None, pytest_args: list[str]
) -> tuple[str | None, list[str]]:
    """The deprecated positional URL, and the pytest arguments, as the user meant them.

    Everything after ``--`` is positional, so ``check --url U -- -x`` (or ``check -- -x``)
    hands ``-x`` to the positional URL: an option-like word, or any word once
    ``--url`` names the store, is the first pytest argument instead.
    """
    if positional is None:
        return None, pytest_args
    if positional.startswith("-") or (url is not None and "://" not in positional):
        return None, [positional, *pytest_args]
    return positional, pytest_args


def check(
    url: Annotated[str | None, typer.Option("--url", help=URL_HELP)] = None,
    positional_url: Annotated[
        str | None, typer.Argument(metavar="URL", help=POSITIONAL_URL_HELP, show_default=False)
    ] = None,
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
    """Run the conformance suite (eventstore-contract-tests) against the store.

    Skipped tests are listed with their reason, and a summary line says which
    capabilities were covered, failed, skipped or not run. Exits with pytest's
    status: 0 when every applicable test passed, non-zero when any failed, 2 when
    the suite is not installed or the URL is not usable.
    """
    import importlib

    from ..._plugins import open_store
    from ..._url import redact_url
    from .._app import fail, out_console
    from .._url import choose_url

    positional_url, extra = _split_positionals(url, positional_url, list(pytest_args or ()))
    store = choose_url(url, positional_url)

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
    open_store(store)
    out_console().print(f"Running the conformance suite against [bold]{redact_url(store)}[/bold]")
    status = run_suite(store, profile=profile, extra_args=extra)
    code = int(status)
    if code != 0:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add the ``check`` command."""
    app.command("check")(check)
