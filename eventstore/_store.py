"""The abstract :class:`EventStore`: public methods here, storage primitives in backends.

The public methods validate arguments, serialize and size-check events, guard the
open/closed state, translate driver errors and check what backends return, once,
for every backend (the checks are in :mod:`._guards`). A backend implements only the
underscore primitives (``_append``, ``_list_after``, ``_last_seq`` and, if it can,
``_list_runs``, ``_delete_run``, ``_import``, ``_last_seqs``, ``_wait_for_append``),
which receive arguments that are already valid. :mod:`eventstore.backend` is their
public home. Live subscribers that wait share one poller per store (:mod:`._poller`).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "MAX_LIMIT",
    "MAX_SEQ",
    "Backdoor",
    "EventStore",
    "poll_delay",
]

import abc
import asyncio
import itertools
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Final, Protocol, Self, TypeVar, runtime_checkable

from pydantic_core import PydanticSerializationError

from ._capabilities import Capability
from ._envelope import EventEnvelope, ImportBatch, PendingEvent, encode_envelope, envelope_texts
from ._errors import (
    BackendError,
    ConcurrencyError,
    EventStoreError,
    EventTooLargeError,
    HistoryUnavailableError,
    IdempotencyConflictError,
    InvalidArgumentError,
    RunDeletedError,
    RunDivergedError,
    StoreClosedError,
    UnsupportedOperationError,
)
from ._events import AgentEvent, encode_event_bytes, is_event
from ._guards import check_decodable, check_page, check_retry, event_run_id
from ._ids import EventId, RunId, SessionId
from ._notify import RunNotifier
from ._poller import Poller, Watch
from ._url import redact_text

if TYPE_CHECKING:
    from ._envelope import RunInfo

#: Default cap on one event's serialized size (1 MiB).
DEFAULT_MAX_EVENT_BYTES: Final = 1 << 20
#: Largest ``limit`` accepted by ``list_after`` and ``list_runs``.
MAX_LIMIT: Final = 10_000
#: Largest seq (a signed 64-bit integer, what SQL and Redis backends can hold).
MAX_SEQ: Final = (1 << 63) - 1


@runtime_checkable
class Backdoor(Protocol):
    """Raw access to a backend's storage, for tests only (capability ``backdoor``).

    It bypasses the store's read and write paths so the conformance suite can
    check what was really stored and how the store reacts to damaged data.
    """

    async def corrupt(self, run_id: RunId, seq: int) -> None:
        """Overwrite the stored entry of ``run_id`` at ``seq`` with undecodable data."""
        ...

    async def raw_seqs(self, run_id: RunId) -> list[int]:
        """The seqs stored for ``run_id``, in storage order, read without decoding."""
        ...

    async def remove(self, run_id: RunId, seq: int) -> None:
        """Delete the stored entry of ``run_id`` at ``seq`` and nothing else."""
        ...

    async def replace(self, run_id: RunId, seq: int, envelope_json: str) -> None:
        """Overwrite the stored entry of ``run_id`` at ``seq`` with ``envelope_json``.

        Only the stored text (or document) changes: the entry stays where it was,
        under the same seq, even if the new JSON names another seq or run.
        """
        ...


class _ErrorBoundary:
    """Translates anything but an :class:`EventStoreError` into the store's error.

    A class rather than ``contextlib.contextmanager``: it sits on every call's hot
    path and a generator-based manager costs several times more.
    """

    __slots__ = ("_operation", "_store")

    def __init__(self, store: EventStore, operation: str) -> None:
        self._store = store
        self._operation = operation

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or not isinstance(exc, Exception):
            return
        if isinstance(exc, EventStoreError):
            # The one place that names the backend on every error leaving a store.
            if exc.backend is None:
                exc.backend = self._store.backend_name
            return
        error = self._store._translate_error(exc, self._operation)
        if error.backend is None:
            error.backend = self._store.backend_name
        raise error from exc


def _check_limit(limit: object) -> int:
    if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgumentError(f"limit must be an int in 1..{MAX_LIMIT}, got {limit!r}")
    return limit


def _check_seq(name: str, value: object) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= MAX_SEQ:
        raise InvalidArgumentError(f"{name} must be None or an int in 0..{MAX_SEQ}, got {value!r}")
    return value


_Id = TypeVar("_Id", RunId, EventId, SessionId)


def _check_id(kind: type[_Id], value: object, name: str) -> _Id:
    """``value`` as a ``kind`` (a UUID or its text is accepted), else InvalidArgumentError."""
    if type(value) is kind:
        return value
    if isinstance(value, (uuid.UUID, str)):
        try:
            return kind.parse(value)
        except ValueError as exc:
            raise InvalidArgumentError(f"{name}: {exc}") from None
    raise InvalidArgumentError(f"{name} must be a {kind.__name__}, got {type(value).__name__}")


def _check_run_id(run_id: object, name: str = "run_id") -> RunId:
    return _check_id(RunId, run_id, name)


class EventStore(abc.ABC):
    """An append-only, per-run event log (the contract's §2).

    Use it as an async context manager (``async with store:``), or call
    :meth:`open` and :meth:`close`. Instances come from
    :func:`eventstore.open_store` or a backend's constructor.
    """

    #: Short backend name used in messages and by the CLI.
    backend_name: ClassVar[str] = "unnamed"
    #: What this backend promises beyond the base rules.
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    #: How many events ``subscribe`` reads per catch-up page.
    subscribe_page_size: ClassVar[int] = 500
    #: True if the store's connections belong to the event loop it was opened on
    #: (asyncio drivers): a call from another loop then raises
    #: :class:`UnsupportedOperationError` instead of failing inside the driver.
    bound_to_event_loop: ClassVar[bool] = False
    #: True if ``_list_after`` may legitimately skip seqs: a backend that skips
    #: corrupt entries on the user's explicit request, or reads a legacy layout with
    #: holes. The read guard then checks order and run ids only. A backend sets it
    #: per instance (``self.gaps_possible = True``) when such an option is on.
    gaps_possible: bool = False

    def __init__(self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        if type(max_event_bytes) is not int or max_event_bytes < 1:
            raise InvalidArgumentError(
                f"max_event_bytes must be a positive int, got {max_event_bytes!r}"
            )
        self.max_event_bytes = max_event_bytes
        #: Wakes this process's subscribers: the base class notifies it after every
        #: append, import and delete through this store, and on close; a backend
        #: notifies it too when it learns of another process's append.
        self._notifier = RunNotifier()
        self._is_open = False
        self._closed = False
        self._open_lock = asyncio.Lock()
        # Resource release that outlives a cancelled close(); later close() calls wait.
        self._cleanup: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop open() ran on
        self._boundaries = {
            name: _ErrorBoundary(self, name)
            for name in ("open", "close", "append", "read", "runs", "delete", "wait")
        }
        # The shared poller of each event loop with waiting subscribers (see _watch).
        self._pollers: dict[asyncio.AbstractEventLoop, Poller] = {}
        self._pollers_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True between a successful :meth:`open` and :meth:`close`."""
        return self._is_open

    async def open(self) -> Self:
        """Connect and prepare storage. Idempotent while open; returns the store."""
        if self._closed:
            raise StoreClosedError(f"{self.backend_name} store was closed; create a new one")
        async with self._open_lock:  # two concurrent open() calls connect once
            if self._closed:
                raise StoreClosedError(f"{self.backend_name} store was closed; create a new one")
            if not self._is_open:
                with self._boundaries["open"]:
                    await self._do_open()
                if self._was_closed():
                    # close() was called while this open() connected: it waits for
                    # the lock, so undo the open here and tell this caller.
                    with self._boundaries["close"]:
                        await self._do_close()
                    raise StoreClosedError(
                        f"{self.backend_name} store was closed while it was opening"
                    )
                self._loop = asyncio.get_running_loop()
                self._is_open = True
        return self

    async def close(self) -> None:
        """Release connections. Idempotent; the store cannot be reopened after it.

        An :meth:`open` still connecting is waited for, then undone. When ``close``
        returns, the store holds no connection; if an earlier ``close`` was
        cancelled, a later one waits for the release it left running.
        """
        self._closed = True
        async with self._open_lock:
            if self._is_open:
                self._is_open = False
                # Stopped before the backend releases what their looks would use.
                pollers = self._cancel_pollers()
                try:
                    with self._boundaries["close"]:
                        await self._do_close()
                finally:
                    self._notifier.notify_all()  # subscribers see the store closed
                    if pollers:
                        # Cancelled above; bounded, in case a backend's look swallows
                        # the cancellation (the task then ends on its own, later).
                        await asyncio.wait(pollers, timeout=_POLLER_STOP_TIMEOUT)
                return
        cleanup = self._cleanup
        if cleanup is not None and not cleanup.done():
            with self._boundaries["close"]:
                await asyncio.shield(cleanup)

    def _release_surely(self, cleanup: Coroutine[object, object, None]) -> Awaitable[None]:
        """Run ``cleanup`` to its end even if ``close()`` is cancelled meanwhile.

        For :meth:`_do_close`: ``await self._release_surely(self._release())``. The
        release runs as a task of its own; cancelling the ``close()`` that awaits it
        stops the waiting, not the release, and a later ``close()`` waits for it.
        """
        task = asyncio.ensure_future(cleanup)
        # Nobody may be left to await it (a cancelled close): mark its error seen.
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._cleanup = task
        return asyncio.shield(task)

    def _was_closed(self) -> bool:
        # A method, not the attribute: close() may set it while open() awaits.
        return self._closed

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _require_open(self) -> None:
        if not self._is_open:
            state = "closed" if self._closed else "not open"
            raise StoreClosedError(
                f"{self.backend_name} store is {state}: use 'async with store:' "
                "or 'await store.open()'"
            )
        if self.bound_to_event_loop:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # not in a coroutine: nothing runs here yet
                return
            if loop is not self._loop:
                raise UnsupportedOperationError(
                    f"{self.backend_name} store was opened on another event loop, and its "
                    "connections belong to that loop: open one store per event loop"
                )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"

    def describe(self) -> str:
        """Where this store keeps its data, with any credential redacted."""
        return self.backend_name

    def backdoor(self) -> Backdoor | None:
        """Raw storage access for tests (capability ``backdoor``), else ``None``."""
        return None

    # -- writing -----------------------------------------------------------------

    def _pending(self, event: AgentEvent, event_id: object) -> PendingEvent:
        if not is_event(event):
            raise InvalidArgumentError(
                f"expected an AgentEvent instance, got {type(event).__name__}"
            )
        try:
            data = encode_event_bytes(event)
        except PydanticSerializationError as exc:
            raise InvalidArgumentError(
                f"{event.event_type} event cannot be serialized to JSON: {exc}"
            ) from exc
        if len(data) > self.max_event_bytes:
            raise EventTooLargeError(
                size=len(data), limit=self.max_event_bytes, event_type=event.event_type
            )
        check_decodable(data, event.event_type)
        return PendingEvent(
            event,
            EventId.new() if event_id is None else _check_id(EventId, event_id, "event_id"),
            data.decode(),
        )

    @staticmethod
    def _event_run_id(event: AgentEvent) -> RunId:
        try:
            return event.run_id
        except ValueError as exc:
            raise InvalidArgumentError(str(exc)) from None

    async def append(
        self,
        event: AgentEvent,
        *,
        event_id: EventId | None = None,
        expected_seq: int | None = None,
    ) -> EventEnvelope:
        """Append ``event`` to its run's log and return its envelope.

        ``event_id`` makes retries safe: if an event with that id is already stored
        in the run, its envelope is returned and nothing is written (checked before
        ``expected_seq``). With ``expected_seq=N`` the append commits only if the
        run's last seq is ``N``, else :class:`ConcurrencyError` is raised.
        """
        # Everything inside the boundary: an error raised here names the backend.
        with self._boundaries["append"]:
            self._require_open()
            pending = self._pending(event, event_id)
            _check_seq("expected_seq", expected_seq)
            run_id = self._event_run_id(event)
            events = (pending,)
            envelopes = await self._append(run_id, events, expected_seq)
            check_retry(run_id, events, envelopes)
        self._notifier.notify(run_id)
        return envelopes[0]

    async def append_batch(
        self,
        events: Sequence[AgentEvent],
        *,
        expected_seq: int | None = None,
        event_ids: Sequence[EventId] | None = None,
    ) -> list[EventEnvelope]:
        """Append several events of one run atomically, with consecutive seqs.

        All or none are stored. ``event_ids`` (one per event) makes a retried batch
        return the stored envelopes; a batch whose ids are only partly stored raises
        :class:`IdempotencyConflictError`.
        """
        with self._boundaries["append"]:
            self._require_open()
            run_id, pending = self._pending_batch(events, event_ids)
            _check_seq("expected_seq", expected_seq)
            if not pending:
                return []
            envelopes = await self._append(run_id, pending, expected_seq)
            check_retry(run_id, pending, envelopes)
        self._notifier.notify(run_id)
        return envelopes

    def _pending_batch(
        self, events: Sequence[AgentEvent], event_ids: Sequence[EventId] | None
    ) -> tuple[RunId, list[PendingEvent]]:
        candidate: object = events
        if isinstance(candidate, (str, bytes)) or not isinstance(candidate, Iterable):
            raise InvalidArgumentError("events must be a sequence of AgentEvent")
        events = list(events)
        if not events:
            return RunId(int=0), []
        if event_ids is not None:
            event_ids = list(event_ids)
            if len(event_ids) != len(events):
                raise InvalidArgumentError(
                    f"event_ids has {len(event_ids)} ids for {len(events)} events"
                )
        ids: Sequence[EventId | None] = event_ids or [None] * len(events)
        pending = [self._pending(e, i) for e, i in zip(events, ids, strict=True)]
        if event_ids is not None and len({p.event_id for p in pending}) != len(pending):
            raise InvalidArgumentError("event_ids contains the same id twice")
        run_id = self._event_run_id(events[0])
        for other in events[1:]:
            if self._event_run_id(other) != run_id:
                raise InvalidArgumentError(
                    f"append_batch takes events of one run: {run_id} and {other.run_id}"
                )
        return run_id, pending

    # -- reading -----------------------------------------------------------------

    async def list_after(
        self, run_id: RunId, after_seq: int | None = None, limit: int = 100
    ) -> list[EventEnvelope]:
        """Up to ``limit`` envelopes with ``seq > after_seq``, ascending.

        ``after_seq=None`` starts at seq 1. ``limit`` must be in 1..10,000.
        """
        with self._boundaries["read"]:
            self._require_open()
            run_id = _check_run_id(run_id)
            after = _check_seq("after_seq", after_seq) or 0
            _check_limit(limit)
            return await self._read(run_id, after, limit)

    async def _read(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        """``_list_after``, with the page checked (see :func:`._guards.check_page`)."""
        page = await self._list_after(run_id, after_seq, limit)
        if len(page) > limit:
            raise BackendError(
                f"run {run_id}: list_after returned {len(page)} envelopes for limit {limit}"
            )
        check_page(run_id, after_seq, page, gaps_possible=self.gaps_possible)
        return page

    async def last_seq(self, run_id: RunId) -> int:
        """The run's highest seq; 0 for a run with no events."""
        with self._boundaries["read"]:
            self._require_open()
            run_id = _check_run_id(run_id)
            return await self._last_seq(run_id)

    def subscribe(
        self,
        run_id: RunId,
        after_seq: int | None = None,
        *,
        until_terminal: bool = False,
    ) -> AsyncIterator[EventEnvelope]:
        """Follow a run: catch up from ``after_seq``, then yield new envelopes live.

        Every envelope is yielded once, in seq order, however slowly the consumer
        iterates (the store is the buffer). With ``until_terminal=True`` the
        iteration ends after the run's terminal event; otherwise it ends when the
        consumer stops iterating. Resume after a disconnect by passing the last seq
        seen as ``after_seq``.
        """
        with self._boundaries["read"]:
            self._require_open()
            run_id = _check_run_id(run_id)
            after = _check_seq("after_seq", after_seq) or 0
        return self._subscribe(run_id, after, until_terminal)

    async def _subscribe(
        self, run_id: RunId, after_seq: int, until_terminal: bool
    ) -> AsyncIterator[EventEnvelope]:
        # Data is always read back through list_after from the last seq yielded, so
        # a wake-up that is late, spurious or lost can delay an event but never drop
        # or repeat one.
        last = after_seq
        idle = 0
        # The event id found at seq `last` during this subscription. Each read starts
        # one seq early to see that it is still there: a run deleted meanwhile (and
        # perhaps written again, shorter or longer) must not hang the subscriber or
        # hand it another log's events under seqs that look continuous.
        anchor: EventId | None = None
        if until_terminal and after_seq > 0 and await terminal_seq(self, run_id, after_seq):
            return
        while True:
            with self._boundaries["read"]:  # names RunDeletedError after the backend
                page, more = await self._page_after(run_id, last, anchor)
            if page:
                idle = 0
                for envelope in page:
                    yield envelope
                    last, anchor = envelope.seq, envelope.event_id
                    if until_terminal and envelope.event.is_terminal:
                        return
                # A backend whose reads never suspend (in memory) must not keep the
                # event loop from everything else, timeouts included, while a run
                # is read page after page.
                await asyncio.sleep(0)
                if more:
                    continue
            # A short page: the run was read to its end. Reading again would find
            # nothing; the wait looks for what came since (no wake-up is lost).
            waited_after = last
            if anchor is None and last > 0:
                # A resume point: learn what is stored there, if the run has got so far.
                anchor = await self._event_id_at(run_id, last)
                if anchor is None:
                    # Past the run's end (or its entry is gone): wait after the run's
                    # real end, so that the wait notices the run changing, not a run
                    # that merely ends before `last`.
                    waited_after = min(last, await self.last_seq(run_id))
            with self._boundaries["wait"]:
                self._require_open()
                await self._wait_for_append(run_id, waited_after, idle)
            idle += 1
            # A wait that returns at once every time (a backend whose reads miss what
            # its last seq says is stored) must still let the event loop turn, so that
            # a timeout, a cancel or the suite's time guard can end the subscription.
            await asyncio.sleep(0)

    async def _page_after(
        self, run_id: RunId, last: int, anchor: EventId | None
    ) -> tuple[list[EventEnvelope], bool]:
        """The next page of a subscription, checking that seq ``last`` is unchanged.

        Returned with whether the read was a full page (the run may hold more).
        """
        size = self.subscribe_page_size
        if anchor is None:
            page = await self.list_after(run_id, last, size)
            return page, len(page) == size
        limit = min(size + 1, MAX_LIMIT)
        try:
            page = await self.list_after(run_id, last - 1, limit)
        except HistoryUnavailableError:
            # Retention trimmed seq `last` itself: nothing to compare, read on.
            page = await self.list_after(run_id, last, size)
            return page, len(page) == size
        more = len(page) == limit
        if page and page[0].seq == last:
            if page[0].event_id != anchor:  # another log under the same run id
                current = await self.last_seq(run_id)
                raise RunDeletedError(run_id=run_id, seen_seq=last, last_seq=current)
            return page[1:], more
        # Seq `last` is not there. A run that still reaches it lost the entry in
        # place (retention of a store that reports none, a skipped corrupt entry):
        # read on. One that ends before it was deleted.
        current = await self.last_seq(run_id)
        if current < last:
            raise RunDeletedError(run_id=run_id, seen_seq=last, last_seq=current)
        return [envelope for envelope in page if envelope.seq > last], more

    async def _event_id_at(self, run_id: RunId, seq: int) -> EventId | None:
        page = await self.list_after(run_id, seq - 1, 1)
        return page[0].event_id if page and page[0].seq == seq else None

    # -- runs --------------------------------------------------------------------

    async def list_runs(
        self,
        *,
        session_id: SessionId | None = None,
        limit: int = 100,
        after: RunId | None = None,
    ) -> list[RunInfo]:
        """Runs in the store ordered by run id, optionally only one session's.

        Page with ``after=<last run id of the previous page>``.
        """
        with self._boundaries["runs"]:
            self._require_open()
            _check_limit(limit)
            if after is not None:
                after = _check_run_id(after, "after")
            session = None if session_id is None else _check_id(SessionId, session_id, "session_id")
            return await self._list_runs(session, limit, after)

    async def delete_run(self, run_id: RunId) -> int:
        """Remove a run's whole log; return how many events were removed.

        Afterwards ``last_seq`` is 0 and a new append to the run starts at seq 1.
        """
        with self._boundaries["delete"]:
            self._require_open()
            run_id = _check_run_id(run_id)
            removed = await self._delete_run(run_id)
        # Subscribers look again and find the run gone (RunDeletedError).
        self._notifier.notify(run_id)
        return removed

    # -- copying -----------------------------------------------------------------

    async def import_envelopes(self, envelopes: Sequence[EventEnvelope]) -> int:
        """Store envelopes copied from another store verbatim; return how many were new.

        Event ids, seqs, session ids and ``emitted_at`` are kept as given. The
        envelopes must be of one run with consecutive seqs. Those already stored
        (an equal envelope at the same seq) are skipped, so an interrupted copy can
        simply be run again; the first new one must follow the run's last seq, else
        :class:`ConcurrencyError`. A stored seq holding a different envelope (another
        event id, session, time or event) means the destination diverged:
        :class:`RunDivergedError` (a ``ConcurrencyError``). Needs capability ``import``.
        """
        with self._boundaries["append"]:
            self._require_open()
            envelopes, pending = self._copied(envelopes)
            if not envelopes:
                return 0
            run_id = envelopes[0].run_id
            last = await self._last_seq(run_id)
            first = envelopes[0].seq
            if first <= last:
                skip = min(last - first + 1, len(envelopes))
                kept_from, stored = await self._stored_overlap(run_id, first, skip)
                for envelope in envelopes[:skip]:
                    if envelope.seq >= kept_from and not _same_bytes(
                        stored.get(envelope.seq), envelope
                    ):
                        raise RunDivergedError(run_id=run_id, seq=envelope.seq, actual_seq=last)
                envelopes, pending = envelopes[skip:], pending[skip:]
                if not envelopes:
                    return 0
            elif first != last + 1:
                raise ConcurrencyError(run_id=run_id, expected_seq=first - 1, actual_seq=last)
            texts = envelope_texts(envelopes, [p.event_json for p in pending])
            await self._import(ImportBatch(run_id, envelopes, texts, last))
        self._notifier.notify(run_id)
        return len(envelopes)

    def _copied(
        self, envelopes: Sequence[EventEnvelope]
    ) -> tuple[list[EventEnvelope], list[PendingEvent]]:
        """Validated copies: one run, distinct ids, consecutive seqs, readable events."""
        envelopes = list(envelopes)
        if not envelopes:
            return [], []
        if not all(isinstance(e, EventEnvelope) for e in envelopes):
            raise InvalidArgumentError("import_envelopes takes EventEnvelope values")
        run_id = envelopes[0].run_id
        if len(envelopes) > MAX_LIMIT:
            raise InvalidArgumentError(f"import_envelopes takes at most {MAX_LIMIT} envelopes")
        if len({envelope.event_id for envelope in envelopes}) != len(envelopes):
            raise IdempotencyConflictError(
                f"run {run_id}: import_envelopes got one event id for two envelopes"
            )
        for previous, current in itertools.pairwise(envelopes):
            if current.run_id != run_id:
                raise InvalidArgumentError(
                    f"import_envelopes takes envelopes of one run: {run_id} and {current.run_id}"
                )
            if current.seq != previous.seq + 1:
                raise InvalidArgumentError(
                    f"run {run_id}: envelopes must have consecutive seqs, "
                    f"got {previous.seq} then {current.seq}"
                )
        for envelope in envelopes:
            # What the read guard would refuse must not be stored (rule 6).
            if event_run_id(envelope.event) not in (run_id, None):
                raise InvalidArgumentError(
                    f"run {run_id}: the {envelope.event.event_type} event at seq "
                    f"{envelope.seq} names run {envelope.event.run_id}"
                )
        return envelopes, [self._pending(e.event, e.event_id) for e in envelopes]

    async def _stored_overlap(
        self, run_id: RunId, first: int, count: int
    ) -> tuple[int, dict[int, EventEnvelope]]:
        """The stored envelopes of seqs ``first`` to ``first + count - 1``, by seq.

        Returned with the first seq that can be compared: those the store's own
        retention has trimmed were stored once and cannot be compared any more.
        """
        try:
            overlap = await self._read(run_id, first - 1, count)
        except HistoryUnavailableError as exc:
            kept_from = max(exc.first_available, first)
            if kept_from > first + count - 1:
                return kept_from, {}
            overlap = await self._read(run_id, kept_from - 1, first + count - kept_from)
            return kept_from, {e.seq: e for e in overlap}
        return first, {e.seq: e for e in overlap}

    # -- primitives for backends -------------------------------------------------

    async def _do_open(self) -> None:  # noqa: B027 - optional hook
        """Connect; called once by :meth:`open`."""

    async def _do_close(self) -> None:  # noqa: B027 - optional hook
        """Release resources; called once by :meth:`close`."""

    @abc.abstractmethod
    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        """Store ``events`` (all of ``run_id``) atomically; see the contract's rules.

        In one atomic step:

        1. if every event id is already stored in the run, return the stored
           envelopes (the base class then checks that they hold the same events,
           else ``IdempotencyConflictError``); if only some are, raise
           ``IdempotencyConflictError.partial_batch(...)``. Ids win over
           ``expected_seq``: a retry of an append that committed gets its envelopes.
        2. if ``expected_seq`` is set and differs from the run's last seq, raise
           ``ConcurrencyError`` (with the actual last seq).
        3. else give the events the next seqs, session ids and one commit time with
           :func:`~eventstore.backend.stamp`, store them (``Stamped.texts()`` is the
           envelope JSON), and return ``Stamped.envelopes()``.

        Nothing is written when it raises. The base class notifies subscribers.
        """

    @abc.abstractmethod
    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        """Up to ``limit`` envelopes with ``seq > after_seq`` (``after_seq >= 0``), ascending.

        Exactly ``limit`` whenever that many exist. The base class checks the page:
        seqs ``after_seq+1, after_seq+2, ...`` of this run and no other, else
        ``CorruptEventError`` (unless :attr:`gaps_possible`). A stored entry that
        cannot be decoded raises ``CorruptEventError`` naming run and seq; events
        removed by a documented retention policy raise ``HistoryUnavailableError``.
        """

    @abc.abstractmethod
    async def _last_seq(self, run_id: RunId) -> int:
        """The run's last seq, 0 if it has none (or was deleted)."""

    async def _list_runs(
        self, session_id: SessionId | None, limit: int, after: RunId | None
    ) -> list[RunInfo]:
        """Up to ``limit`` runs with events, by run id, after ``after``, of ``session_id``.

        Capability ``list_runs``. Each :class:`RunInfo` carries the run's session,
        last seq and first and last ``emitted_at``.
        """
        raise UnsupportedOperationError("this backend does not support list_runs")

    async def _delete_run(self, run_id: RunId) -> int:
        """Remove the run's events, session and event ids; return how many events went.

        Capability ``delete``. Afterwards ``_last_seq`` is 0 and the next append
        starts at seq 1. The base class wakes the run's subscribers.
        """
        raise UnsupportedOperationError("this backend does not support delete_run")

    async def _import(self, batch: ImportBatch) -> None:
        """Store copied envelopes verbatim if the run still ends at ``batch.expected_seq``.

        Capability ``import``. The base class has already validated the envelopes
        (one run, distinct event ids, consecutive seqs from ``expected_seq + 1``),
        skipped those the run holds equal, and built ``batch.texts``, each envelope's
        JSON. Atomically: check the run's last seq (else ``ConcurrencyError``); refuse
        an event id the run already holds
        (``IdempotencyConflictError.copied_id_taken(...)``); write every envelope with
        its own id, seq, session id and time, record the ids for idempotency, and
        leave the run's session at ``batch.session_after``.
        """
        raise UnsupportedOperationError("this backend does not support import_envelopes (copy)")

    async def _last_seqs(self, run_ids: Sequence[RunId]) -> dict[RunId, int]:
        """The last seq of each of ``run_ids`` (distinct), in as few looks as the backend can.

        What the shared poller of live subscribers asks every round, for every run
        waited on (a thousand subscribers: a thousand ids). A run left out of the
        result reads as 0 (no events). The default asks :meth:`_last_seq` run by
        run; a backend that can answer many runs in one query or round trip
        (``WHERE run_id IN (...)``, a pipeline) overrides it.
        """
        out: dict[RunId, int] = {}
        failure: Exception | None = None
        for run_id in run_ids:
            try:
                out[run_id] = await self._last_seq(run_id)
            except Exception as exc:
                # One damaged run must not blind the poller to every other run: its
                # waiters are woken (-1 is no one's seq) and their read reports it.
                out[run_id], failure = -1, exc
        if failure is not None and all(seq == -1 for seq in out.values()):
            raise failure  # nothing answered: the backend is down, back off
        return out

    async def _wait_for_append(self, run_id: RunId, after_seq: int, idle_rounds: int) -> None:
        """Return when the run may have events past ``after_seq``, or the store closed.

        ``after_seq`` is where the caller has read the run to its end. Returning
        early is harmless: the caller re-reads through ``list_after``. The default
        waits on the store's notifier, which the base class sets after every append,
        import and delete through this store. For writes it cannot hear of (other
        processes, other store objects) it registers the wait with the store's
        shared poller (:meth:`_watch`), which looks at every waited run in one
        :meth:`_last_seqs` call per round and wakes the run's waiters when its last
        seq is no longer ``after_seq``. If :meth:`_poll_interval` is ``None`` (only
        this object writes) it looks once, with :meth:`_last_seq`, and waits.
        Backends with their own wake-up (a blocking read, LISTEN) override this.
        """
        woken = self._notifier.listen(run_id)  # before any look: no wake-up is lost
        if not self._is_open:
            return
        if self._poll_interval(idle_rounds) is None:
            # A write between the caller's read and listen() woke no one: look
            # (a last seq below `after_seq` is a delete).
            if await self._last_seq(run_id) != after_seq:
                return
            await woken.wait()
            return
        with self._watch(run_id, after_seq):
            await woken.wait()

    def _watch(self, run_id: RunId, after_seq: int, *, recheck: bool = True) -> Watch:
        """Register a waiter with the shared poller of the running event loop.

        Use as a context manager around the wait, after ``self._notifier.listen``:
        the poller notifies the run when its last seq (from :meth:`_last_seqs`) is
        not ``after_seq``, within :meth:`_poll_interval` of the change. With
        ``recheck`` (the default) the run is also looked at a few milliseconds after
        the registration, for an append made between the waiter's last read and
        its registration; a backend whose own wake-up already covers that (a read
        from the registered seq) passes ``recheck=False``. The poller's task starts
        with the first waiter and is stopped by :meth:`close`.
        """
        loop = asyncio.get_running_loop()
        with self._pollers_lock:
            poller = self._pollers.get(loop)
            if poller is None:
                poller = self._pollers[loop] = Poller(self, loop, self._poller_exited)
        return poller.watch(run_id, after_seq, recheck=recheck)

    def _poller_exited(self, poller: Poller) -> None:
        with self._pollers_lock:
            if self._pollers.get(poller.loop) is poller:
                del self._pollers[poller.loop]

    def _cancel_pollers(self) -> list[asyncio.Task[None]]:
        """Stop every poller; return the tasks of this event loop's, to be awaited."""
        with self._pollers_lock:
            pollers, self._pollers = list(self._pollers.values()), {}
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        tasks = []
        for poller in pollers:
            task = poller.cancel()
            if task is not None and poller.loop is loop:
                tasks.append(task)
        return tasks

    def _poll_interval(self, idle_rounds: int) -> float | None:
        """Seconds between the shared poller's looks at every waited run.

        ``idle_rounds`` counts the poller's looks in a row that found nothing. The
        notifier only hears of writes through this store object; appends by other
        processes, other store objects, or another program writing the same
        storage are found by these looks, 5 ms apart while they find changes,
        backing off to 100 ms (:func:`poll_delay`). A backend with a wake-up of its
        own returns a long safety interval; return ``None`` only if every write the
        store can ever see goes through this object (nothing else can reach its
        storage): the default wait then never polls.
        """
        return poll_delay(idle_rounds)

    def _translate_error(self, exc: Exception, operation: str) -> EventStoreError:
        """Map a driver exception to an :class:`EventStoreError` (cause is chained).

        The base class names the backend (:attr:`EventStoreError.backend`); a
        backend's message says what failed, where (:meth:`describe`), and why.
        """
        return BackendError(f"{operation} failed: {type(exc).__name__}: {redact_text(str(exc))}")


#: How long ``close()`` waits for the shared pollers it cancelled.
_POLLER_STOP_TIMEOUT: Final = 5.0


def poll_delay(idle_rounds: int) -> float:
    """A polling backoff: 5 ms after a look that found something, doubling up to 100 ms."""
    return min(0.005 * 2.0 ** min(idle_rounds, 5), 0.1)


async def terminal_seq(store: EventStore, run_id: RunId, after_seq: int) -> int | None:
    """The seq of the run's terminal event if a consumer after ``after_seq`` has seen it.

    That is when the event at ``after_seq`` is terminal (a consumer resuming right
    after the end), or when the run's last event is terminal and ``after_seq`` is
    past it (a stale resume point). Nothing more will come for such a consumer.
    """
    last = await store.last_seq(run_id)
    if last == 0 or after_seq < 1:
        return None
    probe = min(after_seq, last)
    try:
        page = await store.list_after(run_id, probe - 1, 1)
    except HistoryUnavailableError:
        return None  # trimmed by retention: read on, as for a run that has not ended
    if page and page[0].seq == probe and page[0].event.is_terminal:
        return probe
    return None


def _same_bytes(stored: EventEnvelope | None, given: EventEnvelope) -> bool:
    """Whether ``stored`` is ``given`` as serde would write both, digit for digit.

    Model equality is not enough: ``1 == 1.0 == True`` in Python.
    """
    return stored is not None and encode_envelope(stored) == encode_envelope(given)
