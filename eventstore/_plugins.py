"""Backend discovery through pluggy, and :func:`open_store`.

A backend distribution declares an entry point in the group ``eventstore`` that
names a light module (no driver imports) with a hook implementation::

    [project.entry-points.eventstore]
    mybackend = "my_package.plugin"

    # my_package/plugin.py
    from eventstore.backend import BackendSpec, Capability, hookimpl

    @hookimpl
    def eventstore_register_backends():
        return [BackendSpec(name="mybackend", schemes=("my",),
                            factory="my_package.store:MyStore.from_url",
                            capabilities={Capability.DURABLE})]

The factory is a ``"module:attribute"`` path imported only when a URL asks for one
of its schemes, so asking for ``memory://`` never imports a Redis or SQL driver. It
is called with the URL parsed once, as a :class:`StoreURL`, and the keyword options;
the spec's schemes and capabilities are the backend's only declaration of them. A
plugin that fails to import is recorded, not raised: the other backends keep working
and the failure is reported when its backend is asked for and by
``eventstore backends``.
"""

from __future__ import annotations

__all__ = [
    "BackendSpec",
    "PluginFailure",
    "RegisteredBackend",
    "Registry",
    "StoreFactory",
    "default_registry",
    "hookimpl",
    "hookspec",
    "open_store",
]

import importlib
import importlib.metadata
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import pluggy

from ._capabilities import Capability
from ._errors import ConfigurationError
from ._store import EventStore
from ._url import StoreURL, check_url_text, redact_text

logger = logging.getLogger("eventstore")

PROJECT: Final = "eventstore"
ENTRY_POINT_GROUP: Final = "eventstore"
#: Environment variable read by :func:`open_store` when no URL is given.
URL_ENV: Final = "EVENTSTORE_URL"
#: The store used when neither a URL nor ``EVENTSTORE_URL`` is given.
DEFAULT_URL: Final = "memory://"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: Schemes of backends we know about, with the distribution that provides them, so
#: that asking for one that is not installed says what to install.
KNOWN_SCHEMES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "sqlite": "eventstore-sqlalchemy",
        "sqlite+aiosqlite": "eventstore-sqlalchemy",
        "postgresql": "eventstore-sqlalchemy",
        "postgresql+asyncpg": "eventstore-sqlalchemy",
        "redis": "eventstore-redis",
        "rediss": "eventstore-redis",
        "unix": "eventstore-redis",
        "redis+cluster": "eventstore-redis",
        "rediss+cluster": "eventstore-redis",
        "jsonl": "eventstore-jsonl",
    }
)

_NAME = re.compile(r"^[a-z][a-z0-9_.-]*$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
_FACTORY_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class _HookSpecs:
    @hookspec
    def eventstore_register_backends(self) -> Sequence[BackendSpec]:  # type: ignore[empty-body]
        """Return the backends this plugin provides, as :class:`BackendSpec` values.

        Called once per registry. Must be cheap: import drivers in the factory's
        module, not in the plugin module.
        """


#: ``factory(url: StoreURL, **options) -> EventStore``: builds an unopened store.
StoreFactory = Callable[..., EventStore]


@dataclass(frozen=True)
class BackendSpec:
    """How to make stores of one backend.

    ``factory`` is called as ``factory(url, **options)`` with the parsed
    :class:`StoreURL` and returns an unopened store; give it as a
    ``"module:attribute"`` string so that its module (and the driver it imports)
    loads only when needed. ``capabilities`` lists what the
    backend promises (see :class:`Capability`). ``benchmark_baselines`` optionally
    names (``"module:attribute"``) a callable ``(url) -> list[RawBaseline]`` giving
    raw-driver implementations of the benchmark scenarios, so ``eventstore bench``
    can report ratios (see :mod:`eventstore.bench`). ``migrate`` optionally names an
    async callable ``(url, **options) -> list[str]`` that applies pending schema
    migrations and returns the steps applied (``eventstore migrate URL``).
    """

    name: str
    schemes: tuple[str, ...]
    factory: str | StoreFactory
    capabilities: frozenset[Capability] = frozenset()
    description: str = ""
    benchmark_baselines: str | None = None
    migrate: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigurationError(
                f"BackendSpec.name must match {_NAME.pattern}, got {self.name!r}"
            )
        raw: object = self.schemes
        schemes = (raw,) if isinstance(raw, str) else tuple(self.schemes)
        if not schemes or not all(isinstance(s, str) and _SCHEME.match(s) for s in schemes):
            raise ConfigurationError(
                f"backend {self.name!r}: schemes must be lowercase URL schemes, "
                f"got {self.schemes!r}"
            )
        object.__setattr__(self, "schemes", schemes)
        if isinstance(self.factory, str):
            if not _FACTORY_PATH.match(self.factory):
                raise ConfigurationError(
                    f"backend {self.name!r}: factory must be 'module:attribute', "
                    f"got {self.factory!r}"
                )
        elif not callable(self.factory):
            raise ConfigurationError(f"backend {self.name!r}: factory must be callable")
        for field_name in ("benchmark_baselines", "migrate"):
            path = getattr(self, field_name)
            if path is not None and not _FACTORY_PATH.match(path):
                raise ConfigurationError(
                    f"backend {self.name!r}: {field_name} must be 'module:attribute', got {path!r}"
                )
        try:
            caps = frozenset(Capability(c) for c in self.capabilities)
        except ValueError as exc:
            raise ConfigurationError(f"backend {self.name!r}: {exc}") from None
        object.__setattr__(self, "capabilities", caps)


@dataclass(frozen=True)
class PluginFailure:
    """A plugin module that could not be imported or whose hook failed."""

    plugin: str
    distribution: str | None
    error: str


@dataclass
class RegisteredBackend:
    """A backend known to a registry: its spec, where it came from, and its factory."""

    spec: BackendSpec
    plugin: str
    distribution: str | None = None
    version: str | None = None
    _factory: StoreFactory | None = field(default=None, repr=False)

    def load_factory(self) -> StoreFactory:
        """Import (once) and return the factory; :class:`ConfigurationError` if it fails."""
        if self._factory is None:
            factory = self.spec.factory
            self._factory = self.load(factory) if isinstance(factory, str) else factory
        return self._factory

    def load(self, path: str) -> Any:
        """Import the callable at ``"module:attribute"``; :class:`ConfigurationError` if not."""
        module_name, _, attr_path = path.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for attr in attr_path.split("."):
                obj = getattr(obj, attr)
        except Exception as exc:
            hint = f" (install or reinstall {self.distribution})" if self.distribution else ""
            raise ConfigurationError(
                f"backend {self.spec.name!r} could not be loaded from {path!r}: "
                f"{type(exc).__name__}: {redact_text(str(exc))}{hint}"
            ) from exc
        if not callable(obj):
            raise ConfigurationError(f"backend {self.spec.name!r}: {path!r} is not callable")
        return obj


def _check_distinct(specs: list[BackendSpec], plugin: str) -> None:
    """Refuse one plugin's backends that share a name or a scheme among themselves."""
    names: set[str] = set()
    schemes: set[str] = set()
    for spec in specs:
        if spec.name in names:
            raise ConfigurationError(f"plugin {plugin!r} registers backend {spec.name!r} twice")
        names.add(spec.name)
        for scheme in spec.schemes:
            if scheme in schemes:
                raise ConfigurationError(
                    f"plugin {plugin!r} registers scheme {scheme!r} for two backends"
                )
            schemes.add(scheme)


class Registry:
    """The backends available to :func:`open_store`, discovered through pluggy.

    ``backends`` and ``failures`` are read-only views. Registering a scheme that is
    already taken raises unless ``replace=True``.
    """

    def __init__(self, *, load_entry_points: bool = True) -> None:
        self._pm = pluggy.PluginManager(PROJECT)
        self._pm.add_hookspecs(_HookSpecs)
        self._backends: dict[str, RegisteredBackend] = {}
        self._schemes: dict[str, RegisteredBackend] = {}
        self._failures: dict[str, PluginFailure] = {}
        if load_entry_points:
            self.load_entry_points()

    @property
    def backends(self) -> Mapping[str, RegisteredBackend]:
        """Registered backends by name."""
        return MappingProxyType(self._backends)

    @property
    def failures(self) -> Mapping[str, PluginFailure]:
        """Plugins that failed to load, by plugin name."""
        return MappingProxyType(self._failures)

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Import and register every plugin of the entry point ``group``."""
        for ep in importlib.metadata.entry_points(group=group):
            dist = ep.dist.name if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            if self._pm.has_plugin(ep.name):
                continue
            try:
                module = ep.load()
            except Exception as exc:
                logger.warning("eventstore plugin %r from %s failed to import", ep.name, dist)
                self._failures[ep.name] = PluginFailure(
                    ep.name, dist, f"{type(exc).__name__}: {redact_text(str(exc))}"
                )
                continue
            try:
                self.register(module, name=ep.name, distribution=dist, version=version)
            except ConfigurationError:
                # Recorded as a failure by register(): one broken plugin must not take
                # every other backend (and `eventstore backends`, which shows it) down.
                logger.warning("eventstore plugin %r from %s failed to register", ep.name, dist)

    def register(
        self,
        plugin: object,
        *,
        name: str,
        distribution: str | None = None,
        version: str | None = None,
        replace: bool = False,
    ) -> list[RegisteredBackend]:
        """Register a plugin object (module or instance with the hook) by ``name``.

        A hook that raises or returns something other than :class:`BackendSpec`
        values, or a backend name or scheme already taken (unless ``replace``), is
        recorded as a failure, registers nothing, and is raised as
        :class:`ConfigurationError`.
        """
        try:
            self._pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise ConfigurationError(f"plugin {name!r} cannot be registered: {exc}") from exc
        hook = getattr(plugin, "eventstore_register_backends", None)
        try:
            specs = list(hook()) if hook is not None else []
            bad = [s for s in specs if not isinstance(s, BackendSpec)]
            if bad:
                raise ConfigurationError(
                    f"eventstore_register_backends returned {type(bad[0]).__name__}, "
                    "expected BackendSpec values"
                )
            _check_distinct(specs, name)
            if not replace:
                for spec in specs:  # all checked before any is added
                    self._check_free(spec, name)
        except Exception as exc:
            self._pm.unregister(name=name)
            error = f"{type(exc).__name__}: {redact_text(str(exc))}"
            failure = PluginFailure(name, distribution, error)
            self._failures[name] = failure
            raise ConfigurationError(f"plugin {name!r} failed: {failure.error}") from exc
        return [self._add(spec, name, distribution, version) for spec in specs]

    def _check_free(self, spec: BackendSpec, plugin: str) -> None:
        """Refuse a backend name or scheme another plugin's backend has taken."""
        if spec.name in self._backends:
            raise ConfigurationError(
                f"backend {spec.name!r} from plugin {plugin!r} is already registered by "
                f"plugin {self._backends[spec.name].plugin!r} (pass replace=True)"
            )
        for scheme in spec.schemes:
            if scheme in self._schemes:
                raise ConfigurationError(
                    f"scheme {scheme!r} of backend {spec.name!r} is already served by "
                    f"backend {self._schemes[scheme].spec.name!r} (pass replace=True)"
                )

    def _add(
        self, spec: BackendSpec, plugin: str, distribution: str | None, version: str | None
    ) -> RegisteredBackend:
        entry = RegisteredBackend(spec, plugin, distribution, version)
        self._backends[spec.name] = entry
        for scheme in spec.schemes:
            self._schemes[scheme] = entry
        return entry

    def backend_for(self, url: str | StoreURL) -> RegisteredBackend:
        """The backend serving ``url``'s scheme, or :class:`ConfigurationError`."""
        parsed = url if isinstance(url, StoreURL) else StoreURL.parse(url)
        entry = self._schemes.get(parsed.scheme)
        if entry is not None:
            return entry
        installed = (
            ", ".join(f"{s}:// ({b.spec.name})" for s, b in sorted(self._schemes.items())) or "none"
        )
        message = f"no installed backend serves {parsed.scheme}:// URLs ({parsed.redacted!r})."
        dist = KNOWN_SCHEMES.get(parsed.scheme)
        broken = [f for f in self._failures.values() if dist is None or f.distribution == dist]
        if dist is not None and broken:
            failure = broken[0]
            message += (
                f" Its plugin {failure.plugin!r} from {failure.distribution} failed to load: "
                f"{failure.error}."
            )
        elif dist is not None:
            message += f" Install {dist}."
        elif broken:
            # A third party's scheme: we cannot tell which plugin would serve it, so
            # name every one that failed to load.
            failed = "; ".join(f"{f.plugin!r} from {f.distribution}: {f.error}" for f in broken)
            message += f" Plugins that failed to load (one may serve it): {failed}."
        raise ConfigurationError(f"{message} Installed: {installed}.")

    def open_store(self, url: str | None = None, **options: Any) -> EventStore:
        """An unopened store for ``url`` (see :func:`eventstore.open_store`)."""
        if url is None:
            from_env = os.environ.get(URL_ENV)
            url = from_env or DEFAULT_URL
            if from_env:
                try:
                    check_url_text(url)
                except ConfigurationError as exc:
                    raise ConfigurationError(f"{URL_ENV}: {exc}") from None
        # Before anything reads it as text: 42 or b"..." is a configuration error,
        # not a TypeError from deep inside, and so is a stray space or newline.
        check_url_text(url)
        telemetry = False
        # A cheap textual pre-check, so that stores without telemetry import nothing.
        if "telemetry" in options or "telemetry" in url or "EVENTSTORE_TELEMETRY" in os.environ:
            from .telemetry import take_telemetry_option

            url, telemetry = take_telemetry_option(url, options)
        parsed = StoreURL.parse(url)  # the only parse: the factory gets this object
        entry = self.backend_for(parsed)
        factory = entry.load_factory()
        store = factory(parsed, **options)
        if not isinstance(store, EventStore):
            raise ConfigurationError(
                f"backend {entry.spec.name!r} factory returned {type(store).__name__}, "
                "not an EventStore"
            )
        if telemetry:
            from .telemetry import instrument

            return instrument(store)
        return store

    def specs(self) -> Iterable[RegisteredBackend]:
        """Registered backends sorted by name."""
        return [self._backends[name] for name in sorted(self._backends)]


_default: Registry | None = None
_default_lock = threading.Lock()


def default_registry() -> Registry:
    """The process-wide registry, loaded from entry points on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Registry()
    return _default


def open_store(url: str | None = None, **options: Any) -> EventStore:
    """Return an unopened store for ``url``, chosen by its scheme.

    With no URL, ``EVENTSTORE_URL`` is used, and with neither the embedded default.
    Options come from the URL's query string and ``options`` (keywords win). Use it
    as ``async with open_store(url) as store: ...``. ``telemetry=True`` (or the URL
    option ``telemetry=1``, or ``EVENTSTORE_TELEMETRY=1``) wraps the store in
    OpenTelemetry instrumentation (extra ``eventstore-core[otel]``).

    Raises :class:`ConfigurationError` for a URL that is not a ``str``, one with
    leading or trailing whitespace or a control character (refused, not stripped),
    an unknown scheme (listing the installed backends and the distribution to
    install), an unknown option or a bad value.
    """
    return default_registry().open_store(url, **options)
