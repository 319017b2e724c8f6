"""The ``eventstore`` command line (console script ``eventstore = eventstore._cli:main``).

Adding a command is a one-module change: create ``eventstore/_cli/commands/<name>.py``
with a ``register(app: typer.Typer) -> None`` function that adds the command(s) with
``app.command(...)``. Modules in that package are discovered at start-up, so nothing
else needs editing. Keep command modules light at import time (import drivers,
rich tables, the harness, ... inside the command function) so ``eventstore --help``
stays fast. Raise :class:`eventstore.EventStoreError` for user-facing failures: the
application prints it as one red line and exits with status 2.
"""

from __future__ import annotations

__all__ = ["build_app", "main"]

from ._app import build_app


def main() -> None:
    """Entry point of the ``eventstore`` console script."""
    build_app()()
