"""How many connections a store holds: the optional hook scenario S7 reports.

A store may answer itself with an ``open_connections()`` method returning a mapping
of client name to connections held open now (the Redis store does, from its pools).
Otherwise the backend's name picks a counter here:

* ``postgresql``: backends connected to the store's database in ``pg_stat_activity``
  (every client of that database counts: use a database of its own to measure);
* ``sqlite``: file descriptors of this process open on the database file (one per
  SQLite connection) and, in the detail, the process's threads;
* ``memory``: none, it is in-process.

Any other backend reports ``None`` with the reason. A counter that fails reports
``None`` and why, never an error: the figures of the scenario still count.
"""

from __future__ import annotations

__all__ = ["ConnectionCount", "ConnectionProbe", "connection_probe"]

import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .._store import EventStore


@dataclass(frozen=True)
class ConnectionCount:
    """Connections held at one moment (``None`` when unknown) and how they were counted."""

    count: int | None
    detail: str

    def minus(self, before: ConnectionCount) -> ConnectionCount:
        """The difference to an earlier count (what was opened in between)."""
        if self.count is None or before.count is None:
            return self
        return ConnectionCount(self.count - before.count, f"{self.detail}; before: {before.detail}")


ConnectionProbe = Callable[[], Awaitable[ConnectionCount]]


def connection_probe(store: EventStore, url: str | None) -> ConnectionProbe:
    """A callable that counts the connections ``store`` (opened from ``url``) holds now."""
    own = getattr(store, "open_connections", None)
    if callable(own):

        async def from_store() -> ConnectionCount:
            held: Mapping[str, int] = own()
            detail = ", ".join(f"{name} {count}" for name, count in held.items())
            return ConnectionCount(sum(held.values()), f"store pools: {detail}")

        return from_store
    backend = store.backend_name
    if backend == "postgresql" and url:
        return _postgres_probe(url)
    if backend == "sqlite" and url:
        return _sqlite_probe(url)

    async def fixed() -> ConnectionCount:
        if backend == "memory":
            return ConnectionCount(0, "in-process store, no connections")
        return ConnectionCount(None, f"no connection counter for backend {backend!r}")

    return fixed


def _postgres_probe(url: str) -> ConnectionProbe:
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    # The store's own options (pool_size=...) are not libpq's: leave the query out.
    dsn = urlunsplit((scheme, parts.netloc, parts.path, "", ""))

    async def count() -> ConnectionCount:
        try:
            import asyncpg  # type: ignore[import-untyped,unused-ignore]

            conn = await asyncpg.connect(dsn, timeout=10)
            try:
                value = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            finally:
                await conn.close()
        except Exception as exc:
            return ConnectionCount(None, f"pg_stat_activity unavailable: {type(exc).__name__}")
        return ConnectionCount(int(value), "pg_stat_activity backends on the database")

    return count


def _sqlite_probe(url: str) -> ConnectionProbe:
    path = urlsplit(url).path
    # sqlite+aiosqlite:///relative.db has path "/relative.db", ////abs.db "//abs.db".
    database = Path(path[1:] if path.startswith("/") else path).resolve()

    def on_file() -> int | None:
        fds = "/proc/self/fd"
        if not os.path.isdir(fds):
            return None
        opened = 0
        for fd in os.listdir(fds):
            try:
                target = os.readlink(f"{fds}/{fd}")
            except OSError:
                continue
            if target == str(database):
                opened += 1
        return opened

    async def count() -> ConnectionCount:
        opened = on_file()  # a few dozen readlink calls: not worth a thread
        if opened is None:
            return ConnectionCount(None, "no /proc/self/fd on this platform")
        return ConnectionCount(
            opened,
            f"file descriptors on {database.name}; {threading.active_count()} threads",
        )

    return count
