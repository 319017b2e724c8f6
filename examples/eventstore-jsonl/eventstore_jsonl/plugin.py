"""Registers the ``jsonl://`` backend with eventstore (entry point group ``eventstore``).

eventstore imports this module while discovering backends, for every program that
opens any store, so it imports nothing but eventstore itself; the store module is
named by a string and imported only when a ``jsonl://`` URL is opened.
"""

from __future__ import annotations

from eventstore.backend import BackendSpec, Capability, hookimpl

#: What the store promises (JsonlEventStore takes it from here too).
CAPABILITIES = frozenset(
    {
        Capability.DURABLE,
        Capability.MULTI_PROCESS,
        Capability.LIVE_SUBSCRIBE,
        Capability.DELETE,
        Capability.LIST_RUNS,
        Capability.BACKDOOR,
        Capability.IMPORT,
    }
)


@hookimpl
def eventstore_register_backends() -> list[BackendSpec]:
    """The ``jsonl://`` backend."""
    return [
        BackendSpec(
            name="jsonl",
            schemes=("jsonl",),
            factory="eventstore_jsonl.store:JsonlEventStore.from_url",
            capabilities=CAPABILITIES,
            description="One JSON-lines file per run in a local directory; "
            "file-locked, durable, multi-process.",
        )
    ]
