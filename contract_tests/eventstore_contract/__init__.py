"""The eventstore conformance suite: what every backend must pass.

Two ways to run it:

- ``pytest --eventstore-url URL`` (or :func:`run_suite`) runs it against any
  installed backend;
- a backend's own tests subclass :class:`StoreContract` and override the
  ``store_factory`` fixture (or only ``store``, which skips the reopening tests).

:mod:`eventstore_contract.strategies` holds hypothesis strategies for every event
variant and for whole runs; :mod:`eventstore_contract.stateful` the state machine
that checks a store against a plain reference model.

This module holds no asserts and imports no suite module (they are imported on
first use), so ``eventstore check`` can import it to find :func:`run_suite` before
pytest starts. pytest rewrites the asserts of the package's modules as it imports
them; the package itself is imported already by then, so it opts out of assertion
rewriting (PYTEST_DONT_REWRITE) rather than have pytest warn that it cannot.
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

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

__version__: str = __import__("importlib.metadata").metadata.version("eventstore-contract-tests")

# Imported on first use, not here: `eventstore check` imports this package to find
# run_suite, and a suite module imported before pytest starts could not have its
# asserts rewritten (failures would show no detail).
_WHERE: dict[str, str] = {
    "BackendInfo": "._harness",
    "ContractEnv": "._harness",
    "StoreFactory": "._harness",
    "contract_test": "._harness",
    "needs_store_url": "._harness",
    "requires": "._harness",
    "PROFILES": "._profiles",
    "run_suite": "._runner",
    "StoreContract": ".suite",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'eventstore_contract' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
