"""``migrate(url)``: apply pending schema migrations explicitly (``eventstore migrate``)."""

from __future__ import annotations

__all__ = ["migrate"]

from typing import Any

from eventstore import EventStoreError

from ._base import SQLEventStore
from ._options import resolve


async def migrate(url: str, **options: Any) -> list[str]:
    """Bring the tables at ``url`` to the current schema version; return the steps applied.

    An empty list means the schema was already current. Raises
    :class:`~eventstore.ConfigurationError` if the database was written by a newer
    version, :class:`~eventstore.BackendUnavailableError` if it cannot be reached.
    """
    target = resolve(url, options, backend="sql")
    if target.dialect == "sqlite":
        from ._sqlite import SQLiteEventStore

        store: SQLEventStore = SQLiteEventStore(target)
    else:
        from ._postgres import PostgresEventStore

        store = PostgresEventStore(target)
    try:
        await store._open_engine(prepare_schema=False)
        return await store.migrate()
    except EventStoreError:
        raise
    except Exception as exc:
        raise store._named_error(exc, "migrate") from exc
    finally:
        await store._close_engine()
