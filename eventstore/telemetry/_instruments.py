"""The tracer, the metric instruments, and the span-per-operation context manager.

Names, units and attributes here are the public observability surface documented
in ``docs/observability.md``; change them only together with that page.
"""

from __future__ import annotations

__all__ = [
    "APPEND_DURATION",
    "CORRUPT_ENTRIES",
    "ERRORS",
    "EVENTS_APPENDED",
    "EVENTS_READ",
    "INSTRUMENTATION_NAME",
    "READ_PAGES",
    "SUBSCRIBE_LAG",
    "Instruments",
    "Traced",
]

import time
import traceback
from collections.abc import Mapping
from types import MappingProxyType, TracebackType
from typing import Final

from opentelemetry import context, metrics, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from .. import __version__
from .._errors import CorruptEventError
from .._url import redact_text

#: Name of the tracer and the meter (the instrumentation scope).
INSTRUMENTATION_NAME: Final = "eventstore"

APPEND_DURATION: Final = "eventstore.append.duration"
EVENTS_APPENDED: Final = "eventstore.events.appended"
READ_PAGES: Final = "eventstore.read.pages"
EVENTS_READ: Final = "eventstore.events.read"
SUBSCRIBE_LAG: Final = "eventstore.subscribe.lag"
CORRUPT_ENTRIES: Final = "eventstore.corrupt_entries"
ERRORS: Final = "eventstore.errors"

# Appends take from tens of microseconds (memory) to tens of milliseconds (a remote
# database): the SDK's default buckets (0, 5, 10, ... 10000) assume milliseconds and
# would put every append into the first bucket.
# fmt: off
_APPEND_BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
)
# Lag spans live delivery (milliseconds) and catch-up over old events (minutes).
_LAG_BUCKETS: Final = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 3600.0,
)
# fmt: on

#: ``db.system.name`` values (OpenTelemetry database conventions) of backends whose
#: storage is a database the conventions name; other backends get none.
_DB_SYSTEMS: Final[Mapping[str, str]] = MappingProxyType(
    {"postgresql": "postgresql", "sqlite": "sqlite", "redis": "redis"}
)

Attributes = dict[str, AttributeValue]


class Instruments:
    """Everything one instrumented store records with, created once per store."""

    __slots__ = (
        "_by_operation",
        "append_duration",
        "base",
        "corrupt_entries",
        "errors",
        "events_appended",
        "events_read",
        "read_pages",
        "subscribe_lag",
        "tracer",
    )

    def __init__(
        self,
        backend: str,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
    ) -> None:
        self.tracer = trace.get_tracer(
            INSTRUMENTATION_NAME, __version__, tracer_provider=tracer_provider
        )
        meter = metrics.get_meter(INSTRUMENTATION_NAME, __version__, meter_provider=meter_provider)
        #: Attributes every span and data point of this store carries.
        self.base: Attributes = {"eventstore.backend": backend}
        self._by_operation: dict[str, Attributes] = {}
        db_system = _DB_SYSTEMS.get(backend)
        if db_system is not None:
            self.base["db.system.name"] = db_system
            # The pre-1.26 conventions' name, still what many backends index on.
            self.base["db.system"] = db_system
        self.append_duration = meter.create_histogram(
            APPEND_DURATION,
            unit="s",
            description="Duration of append and append_batch calls, failed ones included.",
            explicit_bucket_boundaries_advisory=_APPEND_BUCKETS,
        )
        self.events_appended = meter.create_counter(
            EVENTS_APPENDED,
            unit="{event}",
            description="Envelopes returned by successful appends and new events imported.",
        )
        self.read_pages = meter.create_counter(
            READ_PAGES, unit="{page}", description="Successful list_after calls."
        )
        self.events_read = meter.create_counter(
            EVENTS_READ,
            unit="{event}",
            description="Envelopes returned by list_after and delivered by subscribe.",
        )
        self.subscribe_lag = meter.create_histogram(
            SUBSCRIBE_LAG,
            unit="s",
            description="Time from an event's emitted_at to its delivery by subscribe.",
            explicit_bucket_boundaries_advisory=_LAG_BUCKETS,
        )
        self.corrupt_entries = meter.create_counter(
            CORRUPT_ENTRIES,
            unit="{entry}",
            description="Stored entries that could not be decoded (CorruptEventError raised).",
        )
        self.errors = meter.create_counter(
            ERRORS, unit="{error}", description="Failed store operations, by error type."
        )

    def metric_attributes(self, operation: str) -> Attributes:
        """The attributes of a data point recorded for ``operation``; do not mutate them.

        Built once per operation: the SDK hashes them on every data point anyway,
        and a fresh dict per call would only add to the cost.
        """
        attributes = self._by_operation.get(operation)
        if attributes is None:
            attributes = self._by_operation[operation] = {
                **self.base,
                "eventstore.operation": operation,
            }
        return attributes

    def record_error(self, span: Span, operation: str, exc: BaseException) -> str:
        """Mark ``span`` failed with ``exc`` and count the error; return its type name."""
        error_type = type(exc).__name__
        message = redact_text(str(exc))
        # Messages are credential-free by contract, but a third-party backend may slip:
        # redact what leaves the process in any case.
        span.record_exception(
            exc,
            attributes={
                "exception.message": message,
                "exception.stacktrace": redact_text("".join(traceback.format_exception(exc))),
            },
        )
        span.set_status(Status(StatusCode.ERROR, f"{error_type}: {message}"))
        span.set_attribute("error.type", error_type)
        attributes = {**self.metric_attributes(operation), "error.type": error_type}
        self.errors.add(1, attributes)
        if isinstance(exc, CorruptEventError):
            self.corrupt_entries.add(1, attributes)
        return error_type

    def start_span(self, operation: str, attributes: Attributes) -> Span:
        """A new client span ``eventstore.<operation>``, not made current."""
        return self.tracer.start_span(
            f"eventstore.{operation}",
            kind=SpanKind.CLIENT,
            attributes={**self.base, "db.operation.name": operation, **attributes},
        )


class Traced:
    """A span around one store call: current while it runs, ended with its outcome.

    A class rather than ``contextlib.contextmanager`` because it wraps every call,
    and a generator-based manager costs several times more. Exceptions propagate;
    on the way out they are recorded on the span and counted. The span returned by
    ``__enter__`` is there for the caller to add attributes about the result.
    """

    __slots__ = ("_attributes", "_instruments", "_operation", "_span", "_start", "_timed", "_token")

    def __init__(
        self,
        instruments: Instruments,
        operation: str,
        attributes: Attributes,
        *,
        timed: bool = False,
    ) -> None:
        self._instruments = instruments
        self._operation = operation
        self._attributes = attributes
        self._timed = timed

    def __enter__(self) -> Span:
        self._span = span = self._instruments.start_span(self._operation, self._attributes)
        self._token = context.attach(trace.set_span_in_context(span))
        self._start = time.perf_counter()
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        elapsed = time.perf_counter() - self._start
        instruments = self._instruments
        # Cancellation and interpreter exits are not failures of the store.
        error_type = (
            instruments.record_error(self._span, self._operation, exc)
            if isinstance(exc, Exception)
            else None
        )
        if self._timed:
            attributes = instruments.metric_attributes(self._operation)
            if error_type is not None:
                attributes = {**attributes, "error.type": error_type}
            instruments.append_duration.record(elapsed, attributes)
        context.detach(self._token)
        self._span.end()
