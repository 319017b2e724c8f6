"""The suite's test modules, one per contract area, gathered into :class:`StoreContract`."""

from __future__ import annotations

__all__ = [
    "AppendTests",
    "ConcurrencyTests",
    "CorruptionTests",
    "DeleteTests",
    "DurabilityTests",
    "ErrorTests",
    "IdempotencyTests",
    "ImportTests",
    "LimitTests",
    "MultiProcessTests",
    "OptionTests",
    "ReadTests",
    "RunsTests",
    "SessionTests",
    "StatefulTests",
    "StoreContract",
    "SubscribeTests",
]

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar

from .._base import ContractBase
from .append import AppendTests
from .concurrency import ConcurrencyTests
from .corruption import CorruptionTests
from .delete import DeleteTests
from .durability import DurabilityTests
from .errors import ErrorTests
from .idempotency import IdempotencyTests
from .importing import ImportTests
from .limits import LimitTests
from .multiprocess import MultiProcessTests
from .options import OptionTests
from .read import ReadTests
from .runs import RunsTests
from .sessions import SessionTests
from .stateful import StatefulTests
from .subscribe import SubscribeTests


class StoreContract(
    AppendTests,
    ReadTests,
    LimitTests,
    IdempotencyTests,
    ConcurrencyTests,
    SessionTests,
    SubscribeTests,
    DurabilityTests,
    CorruptionTests,
    RunsTests,
    DeleteTests,
    ImportTests,
    ErrorTests,
    OptionTests,
    MultiProcessTests,
    StatefulTests,
    ContractBase,
):
    """Every rule of the eventstore contract, for one backend.

    Subclass it in a ``test_*.py`` file and override the ``store_factory`` fixture
    (and ``store_url`` to enable the multi-process tests)::

        class TestMyStoreContract(StoreContract):
            @pytest.fixture
            def store_factory(self, tmp_path):
                url = f"mystore://{tmp_path}/db"
                return lambda: eventstore.open_store(url)

    Tests needing a capability the backend does not declare are skipped, naming
    it. ``expected_failures`` maps a test name to the reason it is known to fail on
    this backend: such a test must fail (an unexpected pass is an error).
    """

    #: Test name -> why it is known to fail on this backend (strict expected failure).
    expected_failures: ClassVar[Mapping[str, str]] = MappingProxyType({})
