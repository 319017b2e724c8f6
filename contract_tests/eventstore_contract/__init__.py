"""The eventstore conformance suite: what every backend must pass.

Two ways to run it:

- ``pytest --eventstore-url URL`` (or :func:`run_suite`) runs it against any
  installed backend;
- a backend's own tests subclass :class:`StoreContract` and override the
  ``store_factory`` fixture.

:mod:`eventstore_contract.strategies` holds hypothesis strategies for every event
variant and for whole runs; :mod:`eventstore_contract.stateful` the state machine
that checks a store against a plain reference model.
"""

from __future__ import annotations

__all__ = [
    "BackendInfo",
    "ContractEnv",
    "PROFILES",
    "StoreContract",
    "StoreFactory",
    "contract_test",
    "needs_store_url",
    "requires",
    "run_suite",
]

from ._harness import (
    BackendInfo,
    ContractEnv,
    StoreFactory,
    contract_test,
    needs_store_url,
    requires,
)
from ._profiles import PROFILES
from ._runner import run_suite
from .suite import StoreContract

__version__ = "0.1.0"
