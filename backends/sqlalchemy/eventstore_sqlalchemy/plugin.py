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


@hookimpl
def eventstore_register_backends() -> list[BackendSpec]:
    """The ``sqlite`` and ``postgresql`` backends."""
    return [
        BackendSpec(
            name="sqlite",
            schemes=("sqlite", "sqlite+aiosqlite"),
            factory="eventstore_sqlalchemy._sqlite:SQLiteEventStore.from_url",
            capabilities=CAPABILITIES,
            description="One SQLite file (WAL), shared by threads and processes; durable.",
            benchmark_baselines="eventstore_sqlalchemy.bench:sqlite_baselines",
            migrate="eventstore_sqlalchemy._migrate:migrate",
        ),
        BackendSpec(
            name="postgresql",
            schemes=("postgresql", "postgresql+asyncpg"),
            factory="eventstore_sqlalchemy._postgres:PostgresEventStore.from_url",
            capabilities=CAPABILITIES,
            description="PostgreSQL through asyncpg; for logs shared by several machines.",
            benchmark_baselines="eventstore_sqlalchemy.bench:postgres_baselines",
            migrate="eventstore_sqlalchemy._migrate:migrate",
        ),
    ]
