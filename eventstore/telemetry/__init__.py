"""OpenTelemetry spans and metrics for any event store (optional extra ``otel``).

Enable it by configuration, with no code change::

    open_store("redis://localhost/0?telemetry=1")     # URL option
    open_store(url, telemetry=True)                   # keyword
    EVENTSTORE_TELEMETRY=1                            # environment

or wrap a store yourself: ``InstrumentedStore(store, tracer_provider=...,
meter_provider=...)``. Without it nothing here is imported and stores are not
wrapped. OpenTelemetry itself is imported only when :class:`InstrumentedStore` is
first used; if it is missing, :func:`instrument` raises
:class:`~eventstore.ConfigurationError` with the install command.
"""

from __future__ import annotations

__all__ = [
    "TELEMETRY_ENV",
    "TELEMETRY_OPTION",
    "InstrumentedStore",
    "instrument",
    "take_telemetry_option",
]

from typing import TYPE_CHECKING

from ._config import (
    INSTALL_HINT,
    TELEMETRY_ENV,
    TELEMETRY_OPTION,
    instrument,
    take_telemetry_option,
)

if TYPE_CHECKING:
    from ._wrapper import InstrumentedStore


def __getattr__(name: str) -> object:
    # Importing the wrapper imports OpenTelemetry, so it waits until it is asked for.
    if name == "InstrumentedStore":
        try:
            from ._wrapper import InstrumentedStore
        except ImportError as exc:
            if not (exc.name or "").startswith("opentelemetry"):
                raise
            raise ImportError(
                f"{exc}: eventstore.telemetry needs OpenTelemetry: {INSTALL_HINT}",
                name=exc.name,
            ) from exc
        return InstrumentedStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
