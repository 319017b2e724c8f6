"""Turning telemetry on by configuration: the ``telemetry`` option and its env variable.

This module must stay light: :func:`eventstore.open_store` imports it whenever a URL,
a keyword or the environment mentions telemetry, and it must not import
OpenTelemetry unless telemetry is really enabled.
"""

from __future__ import annotations

__all__ = [
    "INSTALL_HINT",
    "TELEMETRY_ENV",
    "TELEMETRY_OPTION",
    "instrument",
    "take_telemetry_option",
]

import logging
import os
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote_plus

from .._errors import ConfigurationError
from .._url import redact_url

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from .._store import EventStore

logger = logging.getLogger("eventstore.telemetry")

#: Environment variable that enables telemetry for every store :func:`open_store` makes.
TELEMETRY_ENV: Final = "EVENTSTORE_TELEMETRY"
#: Name of the URL query option and ``open_store`` keyword that enables telemetry.
TELEMETRY_OPTION: Final = "telemetry"

_ON: Final = frozenset({"1", "true", "yes", "on", "otel"})
_OFF: Final = frozenset({"", "0", "false", "no", "off"})
#: What to run when telemetry is enabled without OpenTelemetry installed.
INSTALL_HINT: Final = (
    "install the 'otel' extra: pip install 'eventstore-core[otel]' "
    "(from a checkout: pip install './[otel]')"
)


def _flag(value: object, source: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _ON:
            return True
        if text in _OFF:
            return False
    allowed = ", ".join(sorted(_ON | (_OFF - {""})))
    raise ConfigurationError(f"{source} must be a boolean or one of {allowed}, got {value!r}")


def _strip_query_option(url: str) -> tuple[str, str | None]:
    """``url`` without its ``telemetry`` query option, and that option's raw value.

    Works on the text rather than re-encoding the query, so every other option
    (and any credential) reaches the backend byte for byte as the caller wrote it.
    """
    base, sep, rest = url.partition("?")
    if not sep:
        return url, None
    query, hash_sign, fragment = rest.partition("#")
    kept: list[str] = []
    value: str | None = None
    for part in query.split("&"):
        key, _, raw = part.partition("=")
        if unquote_plus(key) == TELEMETRY_OPTION:
            if value is not None:
                raise ConfigurationError(
                    f"option {TELEMETRY_OPTION!r} given twice in store URL {redact_url(url)!r}"
                )
            value = unquote_plus(raw)
        else:
            kept.append(part)
    if value is None:
        return url, None
    stripped = base + ("?" + "&".join(kept) if kept else "") + hash_sign + fragment
    return stripped, value


def take_telemetry_option(url: str, options: MutableMapping[str, Any]) -> tuple[str, bool]:
    """Remove the telemetry option from ``url`` and ``options``; say whether it is on.

    The keyword wins over the URL's query option, which wins over
    ``EVENTSTORE_TELEMETRY``. Accepted values are booleans and ``1``, ``true``,
    ``yes``, ``on``, ``otel`` (on) or ``0``, ``false``, ``no``, ``off`` (off).
    Returns the URL to hand to the backend, which never sees the option.
    """
    url, from_url = _strip_query_option(url)
    if TELEMETRY_OPTION in options:
        return url, _flag(options.pop(TELEMETRY_OPTION), f"option {TELEMETRY_OPTION!r}")
    if from_url is not None:
        return url, _flag(from_url, f"URL option {TELEMETRY_OPTION!r}")
    from_env = os.environ.get(TELEMETRY_ENV)
    if from_env is not None:
        return url, _flag(from_env, f"environment variable {TELEMETRY_ENV}")
    return url, False


def instrument(
    store: EventStore,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> EventStore:
    """Wrap ``store`` in an :class:`~eventstore.telemetry.InstrumentedStore`.

    Without explicit providers the global OpenTelemetry ones are used (set up by
    the application or by ``opentelemetry-instrument``). Raises
    :class:`ConfigurationError` with the install command when OpenTelemetry is
    not installed.
    """
    try:
        from ._wrapper import InstrumentedStore
    except ImportError as exc:
        if not (exc.name or "").startswith("opentelemetry"):
            raise
        raise ConfigurationError(
            f"telemetry is enabled but OpenTelemetry is not installed: {INSTALL_HINT}"
        ) from exc
    logger.debug("telemetry enabled for %s store %s", store.backend_name, store.describe())
    return InstrumentedStore(store, tracer_provider=tracer_provider, meter_provider=meter_provider)
