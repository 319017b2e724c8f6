"""Fixtures shared by every suite module: the store under test and its context."""

from __future__ import annotations

__all__ = ["ContractBase"]

import asyncio
from collections.abc import Iterator

import pytest

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


class ContractBase:
    """Fixtures of the suite; a backend's test class overrides ``store_factory``.

    ``store_factory`` returns a NEW unopened store on the SAME storage each time it
    is called (calling it again is how the durability tests "reopen"); ``store_url``
    is the URL other processes open for the multi-process tests (``None`` skips
    them).
    """

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        """Override: a zero-argument callable returning a new unopened store."""
        raise pytest.UsageError(
            f"{type(self).__name__} must override the store_factory fixture "
            "(a zero-argument callable returning a new unopened store)"
        )

    @pytest.fixture
    def store_url(self) -> str | None:
        """Override to enable the multi-process tests: the URL of the same storage."""
        return None

    @pytest.fixture
    def eventstore_backend(self, store_factory: StoreFactory) -> BackendInfo:
        """The backend's name and capabilities, read from an unopened store."""
        probe = store_factory()
        if not isinstance(probe, EventStore):
            raise pytest.UsageError(
                f"store_factory must return an eventstore.EventStore, got {type(probe).__name__}"
            )
        return BackendInfo(probe.backend_name, frozenset(probe.capabilities))

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
        missing_url = (
            request.node.get_closest_marker(URL_MARKER) is not None
            and request.getfixturevalue("store_url") is None
        )
        record(
            request.config,
            backend=eventstore_backend.name,
            capabilities=eventstore_backend.capabilities,
            required=required,
            missing_url=missing_url,
        )
        missing = sorted(required - eventstore_backend.capabilities)
        if missing:
            pytest.skip(
                f"backend {eventstore_backend.name!r} does not declare capability "
                f"{', '.join(missing)}"
            )
        if missing_url:
            pytest.skip(
                f"backend {eventstore_backend.name!r}: no store_url fixture given, "
                "so other processes cannot open the store"
            )
        profile = resolve_profile(request.config.getoption("eventstore_profile", None))
        timeout = float(request.config.getoption("eventstore_timeout", None) or DEFAULT_TIMEOUT)
        with asyncio.Runner() as runner:
            yield ContractEnv(runner, timeout, suite_settings(profile), eventstore_backend)

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


async def _opened(factory: StoreFactory) -> EventStore:
    return await factory().open()
