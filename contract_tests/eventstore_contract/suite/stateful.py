"""The whole contract at once: the stateful machine against the reference model."""

from __future__ import annotations

__all__ = ["StatefulTests"]

from .._harness import BackendInfo, ContractEnv, StoreFactory
from ..stateful import run_store_machine


class StatefulTests:
    """Random sequences of every operation agree with the plain model."""

    def test_stateful_store_matches_reference_model(
        self,
        store_factory: StoreFactory,
        eventstore_env: ContractEnv,
        eventstore_backend: BackendInfo,
    ) -> None:
        # The machine owns its event loops (one per example), so this test is sync
        # and only takes the env fixture for its settings and capability gate.
        run_store_machine(
            store_factory,
            settings=eventstore_env.hypothesis,
            capabilities=eventstore_backend.capabilities,
            timeout=eventstore_env.timeout,
        )
