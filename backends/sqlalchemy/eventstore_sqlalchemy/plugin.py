"""Registers the SQLite and PostgreSQL backends (entry point group ``eventstore``).

Kept light on purpose: it imports neither SQLAlchemy nor a driver; the factories
are imported only when a URL asks for one of these schemes.
"""

from __future__ import annotations

from eventstore.backend import BackendSpec, Capability, hookimpl

#: What both SQL stores promise (the store classes take it from here too).
CAPABILITIES = frozenset(
    {
        Capability.DURABLE,
        Capability.MULTI_PROCESS,
        Capability.LIVE_SUBSCRIBE,
        Capability.DELETE,
        Capability.LIST_RUNS,
        Capability.IMPORT,
        Capability.BACKDOOR,
    }
)


#: The two backends: (name, store module and class, asyncio driver, baselines, description).
_BACKENDS = (
    (
        "sqlite",
        "_sqlite:SQLiteEventStore",
        "aiosqlite",
        "sqlite_baselines",
        "One SQLite file (WAL), shared by threads and processes; durable.",
    ),
    (
        "postgresql",
        "_postgres:PostgresEventStore",
        "asyncpg",
        "postgres_baselines",
        "PostgreSQL through asyncpg; for logs shared by several machines.",
    ),
)


@hookimpl
def eventstore_register_backends() -> list[BackendSpec]:
    """The ``sqlite`` and ``postgresql`` backends (each also as ``<name>+<driver>``)."""
    return [
        BackendSpec(
            name=name,
            schemes=(name, f"{name}+{driver}"),
            factory=f"eventstore_sqlalchemy.{store}.from_url",
            capabilities=CAPABILITIES,
            description=description,
            benchmark_baselines=f"eventstore_sqlalchemy.bench:{baselines}",
            migrate="eventstore_sqlalchemy._migrate:migrate",
        )
        for name, store, driver, baselines, description in _BACKENDS
    ]
