"""The typer application: command discovery, error reporting and console helpers."""

from __future__ import annotations

__all__ = ["EXIT_ERROR", "build_app", "err_console", "fail", "out_console", "run_async"]

import asyncio
import importlib
import os
import pkgutil
import select
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar

import typer
from typer.core import TyperGroup

from .._errors import EventStoreError
from .._url import redact_text

if TYPE_CHECKING:
    from rich.console import Console

#: Exit status of a usage or configuration error (also what typer uses for bad options).
EXIT_ERROR: Final = 2

_T = TypeVar("_T")


def out_console() -> Console:
    """A console on the current stdout (looked up per call, so test runners capture it)."""
    from rich.console import Console

    class _StdoutConsole(Console):
        def on_broken_pipe(self) -> None:
            # rich exits with status 1 here; hand it to the command group instead,
            # which ends every command the same way when its reader goes away.
            self.quiet = True
            raise BrokenPipeError

    return _StdoutConsole(highlight=False)


def err_console() -> Console:
    """A console on the current stderr."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print ``message`` (redacted) as one red line on stderr and exit with ``code``."""
    from rich.text import Text

    err_console().print(Text(redact_text(message), style="bold red"), soft_wrap=True)
    raise typer.Exit(code)


def run_async(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a command's async body on a fresh event loop."""
    return asyncio.run(coroutine)


class _Group(TyperGroup):
    """Turns every :class:`EventStoreError` a command raises into :func:`fail`.

    Doing it here rather than in each command means a new command gets the same
    behaviour: one red line, exit status 2, no traceback.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except EventStoreError as exc:
            fail(str(exc))
        except BrokenPipeError:
            if not _stdout_reader_gone():
                raise  # a socket of some backend, not our output: a real failure
            # The reader went away (`eventstore tail ... | head -1`): it has what it
            # wanted, so this is a normal end. Output still buffered would raise
            # again when Python flushes stdout at exit; send it nowhere instead.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(0) from None


def _stdout_reader_gone() -> bool:
    """True if stdout is a pipe whose reading end is closed (poll reports an error)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no real descriptor, or no poll
        return False


def _root() -> None:
    """Store, inspect and benchmark the event logs of AI-agent runs.

    --url chooses the store's backend: memory://, sqlite+aiosqlite:///path, redis://host, ...
    Without it, EVENTSTORE_URL, else the embedded default ./eventstore-demo.db (SQLite),
    the same store for every command.
    """


def build_app() -> typer.Typer:
    """The application with every module of :mod:`eventstore._cli.commands` registered."""
    from . import commands

    app = typer.Typer(
        cls=_Group,
        name="eventstore",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    # A callback makes typer keep the group even while only one command exists.
    app.callback()(_root)
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        module.register(app)
    return app
