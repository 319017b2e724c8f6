"""eventstore-jsonl: an example third-party eventstore backend on JSON-lines files.

Open it by URL once installed, ``eventstore.open_store("jsonl:///var/lib/events")``,
or build it directly with :class:`JsonlEventStore`. It is written only against
eventstore's public API, as a template for other backends.
"""

from __future__ import annotations

__all__ = ["JsonlEventStore", "JsonlOptions"]

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import JsonlEventStore, JsonlOptions

__version__: str = __import__("importlib.metadata").metadata.version("eventstore-jsonl")


def __getattr__(name: str) -> Any:
    # Importing the package is what discovering its plugin module does, in every
    # program that opens any store; the store module loads on first use instead.
    if name in __all__:
        from . import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
