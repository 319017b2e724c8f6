"""How every command chooses its store: ``--url``, else ``EVENTSTORE_URL``, else one default.

The command line's embedded default is the durable SQLite file the demo writes
(``./eventstore-demo.db``), not the library's ``memory://``: a store in memory lives
in one process only, so ``eventstore demo`` followed by ``eventstore tail`` or
``eventstore serve`` would otherwise never see the same runs. When the SQLite
backend (eventstore-sqlalchemy) is not installed, the default is ``memory://``.

The URL as a positional argument (``eventstore serve URL``) is the older form; it
still works, as a deprecated alias of ``--url``, for one release.
"""

from __future__ import annotations

__all__ = [
    "CLI_DEFAULT_URL",
    "POSITIONAL_URL_HELP",
    "URL_HELP",
    "choose_url",
    "cli_default_url",
]

from typing import Final

#: The command line's embedded default store: a SQLite file in the current directory.
CLI_DEFAULT_URL: Final = "sqlite+aiosqlite:///eventstore-demo.db"

#: The help of every command's ``--url`` option.
URL_HELP: Final = (
    "Store URL (default: EVENTSTORE_URL, else ./eventstore-demo.db through SQLite, "
    "else memory:// when eventstore-sqlalchemy is not installed)."
)

#: The help of the deprecated positional URL, kept for scripts written before --url.
POSITIONAL_URL_HELP: Final = "Deprecated: the same as --url."


def cli_default_url() -> str:
    """``EVENTSTORE_URL``, else the SQLite file if that backend loads, else ``memory://``."""
    import os

    from .._errors import EventStoreError
    from .._plugins import DEFAULT_URL, URL_ENV, default_registry

    from_env = os.environ.get(URL_ENV)
    if from_env:
        return from_env
    try:
        default_registry().backend_for(CLI_DEFAULT_URL).load_factory()
    except EventStoreError:
        return DEFAULT_URL
    return CLI_DEFAULT_URL


def choose_url(
    option: str | None,
    positional: str | None = None,
    *,
    option_name: str = "--url",
) -> str:
    """The store URL a command was given: ``option``, else the deprecated ``positional``.

    Both given and different is a usage error. With neither, the CLI default
    (:func:`cli_default_url`).
    """
    from .._errors import InvalidArgumentError

    if option is not None and positional is not None and option != positional:
        raise InvalidArgumentError(
            f"the store is given twice ({option_name} and a positional URL): "
            f"give it once, with {option_name}"
        )
    chosen = option if option is not None else positional
    return chosen if chosen is not None else cli_default_url()
