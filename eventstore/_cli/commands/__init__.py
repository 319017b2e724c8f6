"""One module per ``eventstore`` command, discovered by :func:`eventstore._cli.build_app`.

Each public module here defines ``register(app: typer.Typer) -> None``. Modules whose
name starts with ``_`` are helpers and are not registered.
"""
