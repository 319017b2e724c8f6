"""Fixtures shared by every suite module: the store under test and its context."""

from __future__ import annotations

__all__ = ["ContractBase"]

import asyncio
from collections.abc import Iterator
from typing import Final

import pytest

import eventstore
import eventstore.backend
from eventstore import Capability, EventStore

from ._coverage import record
from ._harness import (
    DEFAULT_TIMEOUT,
    REQUIRES_MARKER,
    URL_MARKER,
    BackendInfo,
    ContractEnv,
    StoreFactory,
)
from ._profiles import resolve_profile, suite_settings

_needs_url_for_spec: Final[pytest.MarkDecorator] = getattr(pytest.mark, URL_MARKER)(
    "the registered BackendSpec is found by URL"
)


class ContractBase:
    """Fixtures of the suite; a backend's test class overrides ``store_factory``.

    ``store_factory`` returns a NEW unopened store on the SAME storage each time it
    is called (calling it again is how the durability tests "reopen"); ``store_url``
    is the URL other processes open for the multi-process tests (``None`` skips
    them).

    A class may instead override ``store`` (the contract's "provide a ``store``
    fixture") to return one new *unopened* store per test: the suite opens it on the
    test's event loop and closes it afterwards. Tests that must reopen the store
    (durability, the state machine) then need ``store_factory`` too; without it they
    are skipped and counted in the summary line as "store_factory not given".
    """

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        """Override: a zero-argument callable returning a new unopened store."""
        if _overrides(type(self), "store"):
            return _no_factory
        raise pytest.UsageError(
            f"{type(self).__name__} must override the store_factory fixture (a "
            "zero-argument callable returning a new unopened store on the same storage) "
            "or the store fixture (a new unopened store)"
        )

    @pytest.fixture
    def store_url(self) -> str | None:
        """Override to enable the multi-process tests: the URL of the same storage."""
        return None

    @pytest.fixture
    def eventstore_backend(self, request: pytest.FixtureRequest) -> BackendInfo:
        """The backend's name and capabilities, read from an unopened store."""
        probe = _probe(type(self), request)
        return BackendInfo(probe.backend_name, frozenset(probe.capabilities))

    # Checked once, by this test, rather than in a fixture every test uses: a
    # mismatch is one failure naming both sets, and the rest of the suite still runs
    # (against the class's capabilities) and is summarised.
    @_needs_url_for_spec
    def test_capabilities_match_the_registered_backend_spec(
        self,
        request: pytest.FixtureRequest,
        store_url: str | None,
        eventstore_env: ContractEnv,
    ) -> None:
        """The store class declares the capabilities its ``BackendSpec`` promises."""
        assert store_url is not None, "eventstore_env skips this test without a store_url"
        probe = _probe(type(self), request)
        _check_spec_agrees(type(probe), frozenset(probe.capabilities), store_url)

    @pytest.fixture
    def eventstore_env(
        self,
        request: pytest.FixtureRequest,
        eventstore_backend: BackendInfo,
    ) -> Iterator[ContractEnv]:
        """The test's event loop and settings; skips tests the backend cannot run."""
        required: frozenset[Capability] = frozenset(
            cap for marker in request.node.iter_markers(REQUIRES_MARKER) for cap in marker.args
        )
        url_marker = request.node.get_closest_marker(URL_MARKER)
        missing_url = url_marker is not None and request.getfixturevalue("store_url") is None
        missing_factory = (
            _overrides(type(self), "store")
            and not _overrides(type(self), "store_factory")
            and "store_factory" in request.fixturenames
        )
        record(
            request.node,
            backend=eventstore_backend.name,
            capabilities=eventstore_backend.capabilities,
            required=required,
            missing_url=missing_url,
            missing_factory=missing_factory,
        )
        missing = sorted(required - eventstore_backend.capabilities)
        if missing:
            pytest.skip(
                f"backend {eventstore_backend.name!r} does not declare capability "
                f"{', '.join(missing)}"
            )
        if missing_url:
            why = url_marker.args[0] if url_marker and url_marker.args else _NO_URL_WHY
            pytest.skip(f"backend {eventstore_backend.name!r}: no store_url fixture given: {why}")
        if missing_factory:
            pytest.skip(
                f"backend {eventstore_backend.name!r}: {type(self).__name__} provides a "
                "store fixture but no store_factory, so the suite cannot reopen the store"
            )
        profile = resolve_profile(request.config.getoption("eventstore_profile", None))
        timeout = float(request.config.getoption("eventstore_timeout", None) or DEFAULT_TIMEOUT)
        env = ContractEnv(asyncio.Runner(), timeout, suite_settings(profile), eventstore_backend)
        try:
            own: object = (
                request.getfixturevalue("store") if _overrides(type(self), "store") else None
            )
            if not isinstance(own, EventStore) or own.is_open:
                yield env
                return
            # The class's own store arrives unopened: open it on this test's loop,
            # where the test will use it.
            env.run(own.open())
            try:
                yield env
            finally:
                env.run(own.close())
        finally:
            env.close()  # under the time guard too: a task ignoring cancellation

    @pytest.fixture
    def store(
        self, store_factory: StoreFactory, eventstore_env: ContractEnv
    ) -> Iterator[EventStore]:
        """An opened store on the test's loop, closed after the test."""
        store = eventstore_env.run(_opened(store_factory))
        try:
            yield store
        finally:
            eventstore_env.run(store.close())


_NO_URL_WHY: Final = "other processes cannot open the store"


def _probe(cls: type, request: pytest.FixtureRequest) -> EventStore:
    """An unopened store of the class under test, to read its name and capabilities."""
    from_store = _overrides(cls, "store") and not _overrides(cls, "store_factory")
    probe: object = (
        request.getfixturevalue("store")
        if from_store
        else request.getfixturevalue("store_factory")()
    )
    if not isinstance(probe, EventStore):
        source = "the store fixture" if from_store else "store_factory"
        raise pytest.UsageError(
            f"{source} must return an eventstore.EventStore, got {type(probe).__name__}"
        )
    return probe


def _overrides(cls: type, fixture: str) -> bool:
    """True when a subclass outside the suite defines ``fixture`` itself."""
    owner = next(k for k in cls.__mro__ if fixture in vars(k))
    return not owner.__module__.startswith("eventstore_contract")


def _no_factory() -> EventStore:
    # Tests that would call it are skipped before their body runs.
    raise pytest.UsageError("this test class provides a store fixture, not a store_factory")


def _check_spec_agrees(cls: type[EventStore], declared: frozenset[Capability], url: str) -> None:
    """Fail if the store class and its registered BackendSpec declare different capabilities.

    ``eventstore backends`` shows the spec's; the suite tests the class's. If they
    differ, users are promised what is not tested, or the other way round.
    """
    try:
        spec = eventstore.backend.default_registry().backend_for(url).spec
    except eventstore.ConfigurationError:
        return  # a store built without the registry: nothing to compare
    # A variant the factory returns for some options (a read-only layout, say) may
    # promise less than the backend's spec, never more.
    variant = cls.__name__ != _factory_class_name(spec.factory)
    if variant and declared <= spec.capabilities:
        return
    if spec.capabilities != declared:

        def names(caps: frozenset[Capability]) -> str:
            return "{" + ", ".join(sorted(c.value for c in caps)) + "}"

        pytest.fail(
            f"{cls.__name__}.capabilities and the registered BackendSpec {spec.name!r} "
            f"disagree:\n  {cls.__name__}.capabilities = {names(declared)}\n"
            f"  BackendSpec {spec.name!r} capabilities = {names(spec.capabilities)}\n"
            f"  only the spec declares {names(spec.capabilities - declared)}, only the class "
            f"{names(declared - spec.capabilities)}.\n"
            "`eventstore backends` shows the spec's set and the suite tests the class's: "
            "declare the same set in both. The other tests ran against the class's set.",
            pytrace=False,
        )


def _factory_class_name(factory: object) -> str | None:
    """``"RedisEventStore"`` for ``"pkg.mod:RedisEventStore.from_url"`` or the method."""
    path = (
        factory.split(":", 1)[-1]
        if isinstance(factory, str)
        else getattr(factory, "__qualname__", "")
    )
    parts = str(path).split(".")
    return parts[-2] if len(parts) >= 2 else None


async def _opened(factory: StoreFactory) -> EventStore:
    return await factory().open()
