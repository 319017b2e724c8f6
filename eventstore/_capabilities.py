"""Named capabilities a backend declares; the conformance suite reads them.

A capability is a promise: declaring it makes the suite run the tests that check
it. Not declaring it skips them, and the suite reports every skip by name.
"""

from __future__ import annotations

__all__ = ["Capability"]

import enum


class Capability(enum.StrEnum):
    """What a backend promises beyond the rules every backend obeys."""

    #: Every append that returned survives close/reopen and a killed writer process.
    DURABLE = "durable"
    #: Several OS processes may append to one run through the same URL.
    MULTI_PROCESS = "multi_process"
    #: ``subscribe`` is woken by appends (not only by polling with a long delay).
    LIVE_SUBSCRIBE = "live_subscribe"
    #: ``delete_run`` is supported.
    DELETE = "delete"
    #: ``list_runs`` is supported.
    LIST_RUNS = "list_runs"
    #: ``import_envelopes`` is supported (``eventstore copy`` into this backend).
    IMPORT = "import"
    #: The store offers a :class:`~eventstore.backend.Backdoor` for tests to inspect and
    #: corrupt raw storage, so the suite can check rule 8 (corruption).
    BACKDOOR = "backdoor"
