"""SQLite and PostgreSQL backends for eventstore, on SQLAlchemy 2 async.

Use them through :func:`eventstore.open_store` with a ``sqlite:///path`` or
``postgresql://user@host/db`` URL (``sqlite+aiosqlite`` and ``postgresql+asyncpg``
work too). :func:`migrate` applies pending schema migrations explicitly; it is what
``eventstore migrate URL`` runs.
"""

from __future__ import annotations

__all__ = [
    "SCHEMA_VERSION",
    "PostgresEventStore",
    "SQLEventStore",
    "SQLOptions",
    "SQLiteEventStore",
    "migrate",
]

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._base import SQLEventStore
    from ._migrate import migrate
    from ._options import SQLOptions
    from ._postgres import PostgresEventStore
    from ._schema import SCHEMA_VERSION
    from ._sqlite import SQLiteEventStore

# Loaded on first use: eventstore imports this package's plugin module whenever it
# discovers backends, and that must not import SQLAlchemy or a driver.
_WHERE = {
    "SQLEventStore": "._base",
    "migrate": "._migrate",
    "SQLOptions": "._options",
    "PostgresEventStore": "._postgres",
    "SCHEMA_VERSION": "._schema",
    "SQLiteEventStore": "._sqlite",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'eventstore_sqlalchemy' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
