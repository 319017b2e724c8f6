"""The suite against the store named by ``--eventstore-url`` (collected by the plugin)."""

from __future__ import annotations

import pytest

from eventstore import open_store

from ._harness import StoreFactory
from .suite import StoreContract


def _url(config: pytest.Config) -> str:
    url = config.getoption("eventstore_url")
    if not url:
        pytest.skip("no --eventstore-url given")
    return str(url)


class TestEventStoreContract(StoreContract):
    """The whole contract against ``open_store(--eventstore-url)``."""

    @pytest.fixture
    def store_factory(self, request: pytest.FixtureRequest) -> StoreFactory:
        """Each call opens a new store on the URL's storage."""
        url = _url(request.config)
        return lambda: open_store(url)

    @pytest.fixture
    def store_url(self, request: pytest.FixtureRequest) -> str | None:
        """The same URL, for the multi-process tests."""
        return _url(request.config)
