""":class:`InstrumentedStore`: OpenTelemetry spans and metrics around any store.

The wrapper calls the inner store's *public* methods, so the inner store still does
its own validation, error translation and (for backends that override it)
subscription; the wrapper's public methods are overridden so that the base class's
validation does not run a second time. The primitives delegate too, only so that the
class is concrete and correct if anything calls them directly.
"""

from __future__ import annotations

__all__ = ["InstrumentedStore"]

import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Self

from .._envelope import EventEnvelope, ImportBatch, PendingEvent
from .._events import is_event
from .._store import Backdoor, EventStore
from ._instruments import Attributes, Instruments, Traced

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

    from .._envelope import RunInfo
    from .._errors import EventStoreError
    from .._events import AgentEvent
    from .._ids import EventId, RunId, SessionId


def _run_id_of(event: object) -> str | None:
    # Arguments are not validated yet (the inner store does that), so anything goes.
    try:
        run_id = getattr(event, "run_id", None)
    except ValueError:
        return None
    return None if run_id is None else str(run_id)


def _set_envelopes(span: Span, envelopes: Sequence[EventEnvelope]) -> None:
    if envelopes:
        span.set_attributes(
            {
                "eventstore.event_count": len(envelopes),
                "eventstore.seq.first": envelopes[0].seq,
                "eventstore.seq.last": envelopes[-1].seq,
            }
        )
    else:
        span.set_attribute("eventstore.event_count", 0)


class InstrumentedStore(EventStore):
    """An :class:`EventStore` that records OpenTelemetry spans and metrics for ``inner``.

    It has the inner store's ``backend_name``, ``capabilities``, ``describe()`` and
    ``backdoor()``; opening and closing it opens and closes the inner store. Pass
    ``tracer_provider`` / ``meter_provider`` to record somewhere other than the
    global OpenTelemetry providers. See ``docs/observability.md`` for the span and
    metric names.
    """

    def __init__(
        self,
        inner: EventStore,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        # Wrapping twice (EVENTSTORE_TELEMETRY=1 and a wrap by hand) would record
        # every operation twice; the outer wrap, with its providers, is the one kept.
        while isinstance(inner, InstrumentedStore):
            inner = inner.inner
        super().__init__(max_event_bytes=inner.max_event_bytes)
        self._inner = inner
        # backend_name and capabilities are class attributes of a backend; the wrapper
        # serves any backend, so it shadows them per instance.
        self.__dict__["backend_name"] = inner.backend_name
        self.__dict__["capabilities"] = inner.capabilities
        self._instruments = Instruments(inner.backend_name, tracer_provider, meter_provider)

    @property
    def inner(self) -> EventStore:
        """The wrapped store."""
        return self._inner

    def __getattr__(self, name: str) -> Any:
        """The inner store's own public attributes (``engine``, ``skipped_corrupt``...).

        Turning telemetry on is configuration: code that uses what one backend
        offers beyond the EventStore interface must keep working. Such calls are
        not traced.
        """
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    def describe(self) -> str:
        """The inner store's description (credentials redacted)."""
        return self._inner.describe()

    def backdoor(self) -> Backdoor | None:
        """The inner store's backdoor, if it has one."""
        return self._inner.backdoor()

    def _traced(self, operation: str, attributes: Attributes, *, timed: bool = False) -> Traced:
        return Traced(self._instruments, operation, attributes, timed=timed)

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> Self:
        """Open the inner store (span ``eventstore.open``)."""
        with self._traced("open", {}):
            return await super().open()

    async def close(self) -> None:
        """Close the inner store (span ``eventstore.close``)."""
        with self._traced("close", {}):
            await super().close()

    async def _do_open(self) -> None:
        await self._inner.open()

    async def _do_close(self) -> None:
        await self._inner.close()

    # -- writing -----------------------------------------------------------------

    async def append(
        self,
        event: AgentEvent,
        *,
        event_id: EventId | None = None,
        expected_seq: int | None = None,
    ) -> EventEnvelope:
        """Append through the inner store (span ``eventstore.append``)."""
        attributes: Attributes = {
            "eventstore.event_type": event.event_type if is_event(event) else type(event).__name__
        }
        run_id = _run_id_of(event)
        if run_id is not None:
            attributes["eventstore.run_id"] = run_id
        if isinstance(expected_seq, int):
            attributes["eventstore.expected_seq"] = expected_seq
        with self._traced("append", attributes, timed=True) as span:
            envelope = await self._inner.append(event, event_id=event_id, expected_seq=expected_seq)
            span.set_attributes(
                {
                    "eventstore.seq.first": envelope.seq,
                    "eventstore.seq.last": envelope.seq,
                    "eventstore.event_count": 1,
                }
            )
        self._instruments.events_appended.add(1, self._instruments.metric_attributes("append"))
        return envelope

    async def append_batch(
        self,
        events: Sequence[AgentEvent],
        *,
        expected_seq: int | None = None,
        event_ids: Sequence[EventId] | None = None,
    ) -> list[EventEnvelope]:
        """Append a batch through the inner store (span ``eventstore.append_batch``)."""
        attributes: Attributes = {}
        # Only look inside real lists and tuples: any other iterable is handed over
        # untouched, for the inner store to consume (or reject) once.
        if isinstance(events, (list, tuple)) and events:
            attributes["eventstore.batch_size"] = len(events)
            run_id = _run_id_of(events[0])
            if run_id is not None:
                attributes["eventstore.run_id"] = run_id
        if isinstance(expected_seq, int):
            attributes["eventstore.expected_seq"] = expected_seq
        with self._traced("append_batch", attributes, timed=True) as span:
            envelopes = await self._inner.append_batch(
                events, expected_seq=expected_seq, event_ids=event_ids
            )
            _set_envelopes(span, envelopes)
        if envelopes:
            self._instruments.events_appended.add(
                len(envelopes), self._instruments.metric_attributes("append_batch")
            )
        return envelopes

    async def import_envelopes(self, envelopes: Sequence[EventEnvelope]) -> int:
        """Import through the inner store (span ``eventstore.import_envelopes``)."""
        attributes: Attributes = {}
        if isinstance(envelopes, (list, tuple)) and envelopes:
            attributes["eventstore.batch_size"] = len(envelopes)
            first, last = envelopes[0], envelopes[-1]
            if isinstance(first, EventEnvelope) and isinstance(last, EventEnvelope):
                attributes["eventstore.run_id"] = str(first.run_id)
                attributes["eventstore.seq.first"] = first.seq
                attributes["eventstore.seq.last"] = last.seq
        with self._traced("import_envelopes", attributes) as span:
            imported = await self._inner.import_envelopes(envelopes)
            span.set_attribute("eventstore.event_count", imported)
        if imported:
            self._instruments.events_appended.add(
                imported, self._instruments.metric_attributes("import_envelopes")
            )
        return imported

    # -- reading -----------------------------------------------------------------

    async def list_after(
        self, run_id: RunId, after_seq: int | None = None, limit: int = 100
    ) -> list[EventEnvelope]:
        """Read a page through the inner store (span ``eventstore.list_after``)."""
        attributes: Attributes = {"eventstore.run_id": str(run_id)}
        if isinstance(after_seq, int):
            attributes["eventstore.after_seq"] = after_seq
        if isinstance(limit, int):
            attributes["eventstore.limit"] = limit
        with self._traced("list_after", attributes) as span:
            page = await self._inner.list_after(run_id, after_seq, limit)
            _set_envelopes(span, page)
        instruments = self._instruments
        metric_attributes = instruments.metric_attributes("list_after")
        instruments.read_pages.add(1, metric_attributes)
        if page:
            instruments.events_read.add(len(page), metric_attributes)
        return page

    async def last_seq(self, run_id: RunId) -> int:
        """The run's last seq from the inner store (span ``eventstore.last_seq``)."""
        with self._traced("last_seq", {"eventstore.run_id": str(run_id)}) as span:
            last = await self._inner.last_seq(run_id)
            span.set_attribute("eventstore.last_seq", last)
        return last

    def subscribe(
        self,
        run_id: RunId,
        after_seq: int | None = None,
        *,
        until_terminal: bool = False,
    ) -> AsyncIterator[EventEnvelope]:
        """Follow a run through the inner store (span ``eventstore.subscribe``).

        One span covers the whole iteration, from the first step to its end; it is
        not made current, since the consumer's code runs between deliveries. Each
        delivery records the subscribe lag.
        """
        attributes: Attributes = {
            "eventstore.run_id": str(run_id),
            "eventstore.until_terminal": bool(until_terminal),
        }
        if isinstance(after_seq, int):
            attributes["eventstore.after_seq"] = after_seq
        try:
            # The inner store validates its arguments now, not at the first step.
            iterator = self._inner.subscribe(run_id, after_seq, until_terminal=until_terminal)
        except Exception:
            with self._traced("subscribe", attributes):
                raise
        return _Subscription(self._follow(iterator, attributes), iterator)

    async def _follow(
        self, iterator: AsyncIterator[EventEnvelope], attributes: Attributes
    ) -> AsyncGenerator[EventEnvelope, None]:
        instruments = self._instruments
        metric_attributes = instruments.metric_attributes("subscribe")
        span = instruments.start_span("subscribe", attributes)
        delivered = 0
        try:
            async for envelope in iterator:
                # In nanoseconds: emitted_at has them, and float seconds since 1970
                # would round them away.
                emitted = envelope.emitted_at.timestamp(unit="nanosecond")
                lag = (time.time_ns() - emitted) / 1e9
                # Clocks of different hosts may disagree: a lag below zero means zero.
                instruments.subscribe_lag.record(max(lag, 0.0), metric_attributes)
                instruments.events_read.add(1, metric_attributes)
                delivered += 1
                if delivered == 1:
                    span.set_attribute("eventstore.seq.first", envelope.seq)
                span.set_attribute("eventstore.seq.last", envelope.seq)
                yield envelope
        except Exception as exc:
            instruments.record_error(span, "subscribe", exc)
            raise
        finally:
            try:
                # Stopping the outer iteration must stop the inner one (and its waits).
                # Any async iterator that can be closed, not only async generators:
                # a backend may return its own iterator class with an aclose().
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
            finally:
                span.set_attribute("eventstore.event_count", delivered)
                span.end()

    # -- runs --------------------------------------------------------------------

    async def list_runs(
        self,
        *,
        session_id: SessionId | None = None,
        limit: int = 100,
        after: RunId | None = None,
    ) -> list[RunInfo]:
        """List runs through the inner store (span ``eventstore.list_runs``)."""
        attributes: Attributes = {}
        if session_id is not None:
            attributes["eventstore.session_id"] = str(session_id)
        if isinstance(limit, int):
            attributes["eventstore.limit"] = limit
        if after is not None:
            attributes["eventstore.after_run_id"] = str(after)
        with self._traced("list_runs", attributes) as span:
            runs = await self._inner.list_runs(session_id=session_id, limit=limit, after=after)
            span.set_attribute("eventstore.run_count", len(runs))
        return runs

    async def delete_run(self, run_id: RunId) -> int:
        """Delete a run through the inner store (span ``eventstore.delete_run``)."""
        with self._traced("delete_run", {"eventstore.run_id": str(run_id)}) as span:
            deleted = await self._inner.delete_run(run_id)
            span.set_attribute("eventstore.event_count", deleted)
        return deleted

    # -- primitives, by delegation -----------------------------------------------

    async def _append(
        self, run_id: RunId, events: Sequence[PendingEvent], expected_seq: int | None
    ) -> list[EventEnvelope]:
        return await self._inner._append(run_id, events, expected_seq)

    async def _list_after(self, run_id: RunId, after_seq: int, limit: int) -> list[EventEnvelope]:
        return await self._inner._list_after(run_id, after_seq, limit)

    async def _last_seq(self, run_id: RunId) -> int:
        return await self._inner._last_seq(run_id)

    async def _last_seqs(self, run_ids: Sequence[RunId]) -> dict[RunId, int]:
        return await self._inner._last_seqs(run_ids)

    async def _list_runs(
        self, session_id: SessionId | None, limit: int, after: RunId | None
    ) -> list[RunInfo]:
        return await self._inner._list_runs(session_id, limit, after)

    async def _delete_run(self, run_id: RunId) -> int:
        return await self._inner._delete_run(run_id)

    async def _import(self, batch: ImportBatch) -> None:
        await self._inner._import(batch)

    async def _wait_for_append(self, run_id: RunId, after_seq: int, idle_rounds: int) -> None:
        await self._inner._wait_for_append(run_id, after_seq, idle_rounds)

    def _poll_interval(self, idle_rounds: int) -> float | None:
        return self._inner._poll_interval(idle_rounds)

    def _translate_error(self, exc: Exception, operation: str) -> EventStoreError:
        return self._inner._translate_error(exc, operation)


class _Subscription(AsyncGenerator[EventEnvelope, None]):
    """The instrumented iteration, closing the inner one even if never started.

    Closing an async generator that has not run its first step skips its
    ``finally``; the inner subscription, already created (it validated its
    arguments), would then stay open. This closes it in that case; once started,
    the instrumented generator's own ``finally`` closes it.
    """

    def __init__(
        self, outer: AsyncGenerator[EventEnvelope, None], inner: AsyncIterator[EventEnvelope]
    ) -> None:
        self._outer = outer
        self._inner = inner
        self._started = False

    async def asend(self, value: None) -> EventEnvelope:
        """The next envelope (a generator's ``asend``)."""
        self._started = True
        return await self._outer.asend(value)

    async def athrow(self, *args: Any) -> EventEnvelope:
        """Raise inside the iteration (a generator's ``athrow``)."""
        if not self._started:
            # Thrown into before its first step, the generator ends without running
            # its ``finally``: close the inner subscription as aclose() would.
            try:
                return await self._outer.athrow(*args)
            finally:
                await self.aclose()
        return await self._outer.athrow(*args)

    async def aclose(self) -> None:
        """Stop the iteration and the inner store's subscription."""
        try:
            await self._outer.aclose()
        finally:
            aclose = None if self._started else getattr(self._inner, "aclose", None)
            self._started = True  # closed: a second aclose() has nothing left to do
            if aclose is not None:
                await aclose()
