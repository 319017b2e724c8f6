"""The whole eventstore conformance suite against the JSON-lines store."""

from __future__ import annotations

from pathlib import Path

import pytest
from eventstore_contract import StoreContract, StoreFactory

import eventstore


class TestJsonlContract(StoreContract):
    """Each test gets its own directory; the factory reopens the same one."""

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"jsonl://{tmp_path}/events"

    @pytest.fixture
    def store_factory(self, store_url: str) -> StoreFactory:
        return lambda: eventstore.open_store(store_url)
