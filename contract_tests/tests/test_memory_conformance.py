"""The in-memory backend passes the whole suite (the suite's own smoke test)."""

from __future__ import annotations

import pytest
from eventstore_contract import StoreContract, StoreFactory

from eventstore import open_store


class TestMemoryContract(StoreContract):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return lambda: open_store("memory://")
