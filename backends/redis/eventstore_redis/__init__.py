"""eventstore-redis: the Redis Streams backend of eventstore.

Open it by URL through :func:`eventstore.open_store` (``redis://``, ``rediss://``,
``unix://``, ``redis+cluster://``). The classes below load lazily: the plugin module
of this package is imported whenever eventstore discovers backends, and that must
not import redis-py.
"""

from __future__ import annotations

__all__ = ["KeyLayout", "LegacyRedisEventStore", "RedisEventStore", "RedisOptions"]

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._legacy import LegacyRedisEventStore
    from ._options import KeyLayout, RedisOptions
    from .store import RedisEventStore

_WHERE = {
    "KeyLayout": "._options",
    "RedisOptions": "._options",
    "RedisEventStore": ".store",
    "LegacyRedisEventStore": "._legacy",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'eventstore_redis' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
