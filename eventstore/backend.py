"""The backend SPI: everything a backend author uses, in one public, stable module.

Applications import :mod:`eventstore`; backends import this. A backend is a subclass
of :class:`EventStore` that implements a few underscore *primitives*; the base class's
public methods validate arguments, encode and size-check events, translate errors,
name the backend on every error, wake subscribers, and check what the primitives
return (a hole in a page, an envelope of another run, a retried event id holding a
different event are refused at run time, for every backend alike).

The primitives (signatures and rules in their docstrings on :class:`EventStore`):

``_append(run_id, events, expected_seq) -> list[EventEnvelope]`` (required)
    One atomic step: stored ids win (return the stored envelopes, or
    ``IdempotencyConflictError.partial_batch`` for a partly stored batch), then
    ``expected_seq`` (``ConcurrencyError``), then :func:`stamp` and store.
``_list_after(run_id, after_seq, limit) -> list[EventEnvelope]`` (required)
    Exactly the next ``limit`` envelopes; undecodable entries raise
    ``CorruptEventError``.
``_last_seq(run_id) -> int`` (required)
    0 for a run with no events.
``_list_runs(session_id, limit, after)`` (capability ``list_runs``),
``_delete_run(run_id)`` (``delete``), ``_import(batch: ImportBatch)``
(``import``)
    Optional; the defaults raise ``UnsupportedOperationError``.
``_do_open()`` / ``_do_close()``
    Connect and release; ``_release_surely`` keeps a release running through a
    cancelled ``close()``.
``_wait_for_append(run_id, after_seq, idle_rounds)`` / ``_poll_interval(idle_rounds)``
    Live ``subscribe``: the default waits on the store's notifier, which the base
    class sets after each append, import and delete through this store object. For
    writes it cannot hear of (other processes, other store objects) the waits of a
    store share one poller task per event loop, which looks at every waited run
    each ``_poll_interval`` (:func:`poll_delay`, 5 ms while it finds changes,
    backing off to 100 ms) and a few milliseconds after a new wait, and wakes the
    runs whose last seq moved. ``None`` from ``_poll_interval``: nothing else writes
    the storage, no poller. A backend with a wake-up of its own overrides
    ``_wait_for_append`` and may still register its waits with the poller
    (``self._watch(run_id, after_seq, recheck=False)``) for what its wake-up misses.
``_last_seqs(run_ids) -> dict[RunId, int]`` (optional)
    The poller's one look per round: the last seq of every waited run, runs left
    out reading as 0. The default calls ``_last_seq`` run by run; override it with
    one query or round trip per chunk of runs (``WHERE run_id IN (...)``, a
    pipeline) when the storage allows.
``_translate_error(exc, operation)``
    Driver exceptions to :class:`~eventstore.errors.BackendError` or
    :class:`~eventstore.errors.BackendUnavailableError`.
``backdoor()``
    A :class:`Backdoor` for the conformance suite (capability ``backdoor``).

Times (``emitted_at``, event ``timestamp``) are :class:`whenever.Instant` values with
nanosecond precision; a backend that keeps a time outside the envelope JSON keeps all
nine digits, and writes times as text with :func:`format_time` (chrono's form).

A backend is registered with a :class:`BackendSpec` returned by a
``@hookimpl``-decorated ``eventstore_register_backends()`` in a light plugin module
named by an entry point of the group ``eventstore``. Its factory receives the URL
already parsed (a :class:`StoreURL`) and the keyword options; :func:`parse_options`
validates them against a :class:`StoreOptions` subclass. See the docs' "Writing a
backend" page for a whole example.
"""

from __future__ import annotations

from ._capabilities import Capability
from ._envelope import (
    EventEnvelope,
    ImportBatch,
    PendingEvent,
    RunInfo,
    Stamped,
    decode_envelope,
    encode_envelope,
    envelope_json,
    new_envelope,
    stamp,
    stamp_sessions,
)
from ._notify import RunNotifier
from ._plugins import (
    BackendSpec,
    PluginFailure,
    RegisteredBackend,
    Registry,
    StoreFactory,
    default_registry,
    hookimpl,
    hookspec,
)
from ._store import (
    DEFAULT_MAX_EVENT_BYTES,
    MAX_LIMIT,
    MAX_SEQ,
    Backdoor,
    EventStore,
    poll_delay,
)
from ._time import format_time, parse_time, utc_now
from ._url import StoreOptions, StoreURL, parse_options, redact_text, redact_url

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "MAX_LIMIT",
    "MAX_SEQ",
    "Backdoor",
    "BackendSpec",
    "Capability",
    "EventEnvelope",
    "EventStore",
    "ImportBatch",
    "PendingEvent",
    "PluginFailure",
    "RegisteredBackend",
    "Registry",
    "RunInfo",
    "RunNotifier",
    "Stamped",
    "StoreFactory",
    "StoreOptions",
    "StoreURL",
    "decode_envelope",
    "default_registry",
    "encode_envelope",
    "envelope_json",
    "format_time",
    "hookimpl",
    "hookspec",
    "new_envelope",
    "parse_options",
    "parse_time",
    "poll_delay",
    "redact_text",
    "redact_url",
    "stamp",
    "stamp_sessions",
    "utc_now",
]
