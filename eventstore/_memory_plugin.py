"""Registers the in-memory backend through the ``eventstore`` entry point group.

It goes through the same discovery as any third-party plugin; nothing in the
registry knows about it.
"""

from __future__ import annotations

from ._plugins import BackendSpec, hookimpl
from .memory import MemoryEventStore


@hookimpl
def eventstore_register_backends() -> list[BackendSpec]:
    """The ``memory://`` backend."""
    return [
        BackendSpec(
            name="memory",
            schemes=("memory",),
            factory="eventstore.memory:MemoryEventStore.from_url",
            capabilities=MemoryEventStore.capabilities,
            description="In-process, not durable; the embedded default for tests and demos.",
        )
    ]
