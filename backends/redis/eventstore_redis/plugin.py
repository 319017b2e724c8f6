"""Registers the Redis backend with eventstore (entry point group ``eventstore``).

Deliberately light: it imports neither redis-py nor the store module; the factory
path is resolved only when a Redis URL is opened.
"""

from __future__ import annotations

from typing import Final

from eventstore.backend import BackendSpec, Capability, hookimpl

BACKEND: Final = "redis"
#: The URL schemes of Redis stores: their one declaration (``_options`` checks URLs
#: given to ``RedisEventStore.from_url`` directly against it).
SCHEMES: Final = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")
#: What the native store promises (RedisEventStore takes it from here too).
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
    """The ``redis://``, ``rediss://``, ``unix://`` and ``redis+cluster://`` backend."""
    return [
        BackendSpec(
            name=BACKEND,
            schemes=SCHEMES,
            factory="eventstore_redis.store:RedisEventStore.from_url",
            capabilities=CAPABILITIES,
            description="Redis Streams: one Lua script call per append, gap-free seqs, "
            "live subscribe with XREAD BLOCK; standalone or cluster.",
            benchmark_baselines="eventstore_redis.bench:baselines",
        )
    ]
