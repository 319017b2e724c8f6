"""The telemetry wrapper: a span per store operation, the documented metrics, and
enabling it by configuration (URL option, keyword, environment) at zero cost when off.

Providers are created per test and passed explicitly; no test touches the global
OpenTelemetry state."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from eventstore_contract import StoreContract, StoreFactory
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from whenever import Instant

import eventstore as es
import eventstore.backend as es_backend
from eventstore.memory import MemoryEventStore
from eventstore.telemetry import InstrumentedStore

SESSION = es.SessionId.new()


def run(coro: object) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def started(run_id: es.RunId) -> es.RunStarted:
    return es.RunStarted(run_id=run_id, session_id=SESSION, provider="acme", model="gpt-test")


def delta(run_id: es.RunId, text: str = "x") -> es.TextDelta:
    return es.TextDelta(run_id=run_id, delta=text)


def completed(run_id: es.RunId) -> es.RunCompleted:
    return es.RunCompleted(run_id=run_id, finish_reason="stop", iterations=1)


def moved(envelope: es.EventEnvelope, **changes: Any) -> es.EventEnvelope:
    """A copy of ``envelope`` with some fields changed."""
    fields: dict[str, Any] = {
        "event_id": envelope.event_id,
        "seq": envelope.seq,
        "run_id": envelope.run_id,
        "session_id": envelope.session_id,
        "event": envelope.event,
        "emitted_at": envelope.emitted_at,
    }
    return es_backend.new_envelope(**(fields | changes))


@dataclass
class Telemetry:
    """SDK providers writing to in-memory exporters, and ways to read them back."""

    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def wrap(self, inner: es.EventStore) -> InstrumentedStore:
        return InstrumentedStore(
            inner, tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def finished(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if name is None or s.name == name]

    def only(self, name: str) -> ReadableSpan:
        (span,) = self.finished(name)
        return span

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = [
            m
            for rm in (data.resource_metrics if data else [])
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == metric
        ]
        return [p for m in found for p in m.data.data_points]

    def assert_attributes(self, span: str, expected: dict[str, Any]) -> None:
        """The one span named ``span`` has (at least) the ``expected`` attributes."""
        attributes = dict(self.only(span).attributes or {})
        assert {key: attributes.get(key) for key in expected} == expected

    def unit(self, metric: str) -> str | None:
        data = self.reader.get_metrics_data()
        assert data is not None
        (unit,) = {
            m.unit
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == metric
        }
        return unit

    def value(self, metric: str, **attributes: str) -> float:
        """Sum of a counter's points (or count of a histogram's) matching ``attributes``."""
        total: float = 0
        for point in self.points(metric):
            attrs = dict(point.attributes or {})
            if all(attrs.get(k.replace("__", ".")) == v for k, v in attributes.items()):
                if isinstance(point, HistogramDataPoint):
                    total += point.count
                else:
                    assert isinstance(point, NumberDataPoint)
                    total += point.value
        return total


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Telemetry(spans, reader, tracer_provider, meter_provider)
    tracer_provider.shutdown()
    meter_provider.shutdown()


# -- the wrapper is the inner store, seen through telemetry ----------------------------


def test_wrapper_has_the_inner_stores_identity(telemetry: Telemetry) -> None:
    inner = MemoryEventStore(max_event_bytes=4096)
    store = telemetry.wrap(inner)
    assert isinstance(store, es.EventStore)
    assert store.inner is inner
    assert store.backend_name == "memory"
    assert store.capabilities == inner.capabilities
    assert store.describe() == inner.describe()
    assert store.max_event_bytes == 4096
    assert repr(store) == "<InstrumentedStore memory>"

    async def body() -> None:
        async with store:
            assert inner.is_open
            backdoor = store.backdoor()
            assert backdoor is not None
            run_id = es.RunId.new()
            await store.append(delta(run_id))
            assert await backdoor.raw_seqs(run_id) == [1]
        assert not inner.is_open

    run(body())


def test_every_operation_gets_one_client_span_with_its_attributes(telemetry: Telemetry) -> None:
    run_id, copied = es.RunId.new(), es.RunId.new()

    async def body() -> None:
        async with telemetry.wrap(MemoryEventStore()) as store:
            await store.append(started(run_id))
            await store.append_batch([delta(run_id), delta(run_id)], expected_seq=1)
            envelopes = await store.list_after(run_id, after_seq=1, limit=10)
            assert await store.last_seq(run_id) == 3
            following = store.subscribe(run_id, 1)
            assert isinstance(following, AsyncGenerator)
            async with contextlib.aclosing(following):
                async for envelope in following:
                    if envelope.seq == 3:
                        break
            assert len(await store.list_runs(session_id=SESSION, limit=5)) == 1
            source = [
                moved(e, run_id=copied, event=e.event.model_copy(update={"run_id": copied}))
                for e in envelopes
            ]
            # Seqs 2..3 of a new run do not follow its last seq (0): nothing imported.
            with pytest.raises(es.ConcurrencyError):
                await store.import_envelopes(source)
            assert await store.delete_run(run_id) == 3

    run(body())
    names = [s.name for s in telemetry.finished()]
    assert names == [
        "eventstore.open",
        "eventstore.append",
        "eventstore.append_batch",
        "eventstore.list_after",
        "eventstore.last_seq",
        "eventstore.subscribe",
        "eventstore.list_runs",
        "eventstore.import_envelopes",
        "eventstore.delete_run",
        "eventstore.close",
    ]
    for span in telemetry.finished():
        assert span.kind is SpanKind.CLIENT
        assert span.attributes is not None
        assert span.attributes["eventstore.backend"] == "memory"
        assert span.attributes["db.operation.name"] == span.name.removeprefix("eventstore.")
        assert "db.system.name" not in span.attributes  # memory is no database
    rid = str(run_id)
    telemetry.assert_attributes(
        "eventstore.append",
        {
            "eventstore.run_id": rid,
            "eventstore.event_type": "RunStarted",
            "eventstore.seq.first": 1,
            "eventstore.seq.last": 1,
            "eventstore.event_count": 1,
        },
    )
    telemetry.assert_attributes(
        "eventstore.append_batch",
        {
            "eventstore.run_id": rid,
            "eventstore.batch_size": 2,
            "eventstore.expected_seq": 1,
            "eventstore.seq.first": 2,
            "eventstore.seq.last": 3,
            "eventstore.event_count": 2,
        },
    )
    telemetry.assert_attributes(
        "eventstore.list_after",
        {
            "eventstore.run_id": rid,
            "eventstore.after_seq": 1,
            "eventstore.limit": 10,
            "eventstore.seq.first": 2,
            "eventstore.seq.last": 3,
            "eventstore.event_count": 2,
        },
    )
    telemetry.assert_attributes(
        "eventstore.last_seq",
        {
            "eventstore.run_id": rid,
            "eventstore.last_seq": 3,
        },
    )
    telemetry.assert_attributes(
        "eventstore.subscribe",
        {
            "eventstore.run_id": rid,
            "eventstore.after_seq": 1,
            "eventstore.until_terminal": False,
            "eventstore.seq.first": 2,
            "eventstore.seq.last": 3,
            "eventstore.event_count": 2,
        },
    )
    telemetry.assert_attributes(
        "eventstore.list_runs",
        {
            "eventstore.session_id": str(SESSION),
            "eventstore.limit": 5,
            "eventstore.run_count": 1,
        },
    )
    telemetry.assert_attributes(
        "eventstore.import_envelopes",
        {
            "eventstore.run_id": str(copied),
            "eventstore.batch_size": 2,
            "eventstore.seq.first": 2,
            "eventstore.seq.last": 3,
        },
    )
    telemetry.assert_attributes(
        "eventstore.delete_run",
        {
            "eventstore.run_id": rid,
            "eventstore.event_count": 3,
        },
    )


def test_import_span_counts_the_new_envelopes(telemetry: Telemetry) -> None:
    run_id = es.RunId.new()

    async def body() -> None:
        async with MemoryEventStore() as source, telemetry.wrap(MemoryEventStore()) as store:
            await source.append_batch([started(run_id), delta(run_id), delta(run_id)])
            envelopes = await source.list_after(run_id)
            assert await store.import_envelopes(envelopes[:2]) == 2
            assert await store.import_envelopes(envelopes) == 1  # resumed: only seq 3 is new

    run(body())
    counts = [
        (s.attributes or {})["eventstore.event_count"]
        for s in telemetry.finished("eventstore.import_envelopes")
    ]
    assert counts == [2, 1]
    assert (
        telemetry.value("eventstore.events.appended", eventstore__operation="import_envelopes") == 3
    )


def test_operation_spans_are_children_of_the_callers_span(telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("test")

    async def body() -> None:
        async with telemetry.wrap(MemoryEventStore()) as store:
            with tracer.start_as_current_span("agent turn"):
                await store.append(delta(es.RunId.new()))

    run(body())
    parent = telemetry.only("agent turn")
    child = telemetry.only("eventstore.append")
    assert child.parent is not None
    assert child.parent.span_id == parent.context.span_id


def test_backend_with_a_database_gets_db_system_attributes(telemetry: Telemetry) -> None:
    class FakeRedisStore(MemoryEventStore):
        backend_name: ClassVar[str] = "redis"

    async def body() -> None:
        async with telemetry.wrap(FakeRedisStore()) as store:
            await store.last_seq(es.RunId.new())

    run(body())
    attributes = telemetry.only("eventstore.last_seq").attributes or {}
    assert attributes["db.system.name"] == "redis"
    assert attributes["db.system"] == "redis"
    assert attributes["eventstore.backend"] == "redis"


# -- failures ------------------------------------------------------------------------


def test_failed_operation_has_error_status_exception_event_and_error_count(
    telemetry: Telemetry,
) -> None:
    run_id = es.RunId.new()

    async def body() -> None:
        async with telemetry.wrap(MemoryEventStore()) as store:
            await store.append(delta(run_id))
            with pytest.raises(es.ConcurrencyError):
                await store.append(delta(run_id), expected_seq=0)
            with pytest.raises(es.InvalidArgumentError):
                await store.list_after(run_id, limit=0)

    run(body())
    ok, failed = telemetry.finished("eventstore.append")
    assert ok.status.status_code is StatusCode.UNSET
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description is not None
    assert failed.status.description.startswith("ConcurrencyError: ")
    assert (failed.attributes or {})["error.type"] == "ConcurrencyError"
    (exception,) = [e for e in failed.events if e.name == "exception"]
    assert str((exception.attributes or {})["exception.type"]).endswith("ConcurrencyError")
    assert telemetry.only("eventstore.list_after").status.status_code is StatusCode.ERROR
    assert telemetry.value("eventstore.errors", error__type="ConcurrencyError") == 1
    assert telemetry.value("eventstore.errors", error__type="InvalidArgumentError") == 1
    # The failed append is timed too, labelled with its error.
    assert telemetry.value("eventstore.append.duration", error__type="ConcurrencyError") == 1
    assert telemetry.value("eventstore.corrupt_entries") == 0


def test_error_messages_on_spans_are_redacted(telemetry: Telemetry) -> None:
    class LeakyStore(MemoryEventStore):
        backend_name: ClassVar[str] = "leaky"

        async def _last_seq(self, run_id: es.RunId) -> int:
            raise es.BackendUnavailableError("cannot reach redis://app:hunter2@db.internal/0")

    async def body() -> None:
        async with telemetry.wrap(LeakyStore()) as store:
            with pytest.raises(es.BackendUnavailableError):
                await store.last_seq(es.RunId.new())

    run(body())
    span = telemetry.only("eventstore.last_seq")
    (exception,) = span.events
    shown = [str(span.status.description), *map(str, (exception.attributes or {}).values())]
    assert all("hunter2" not in text for text in shown)
    assert "redis://app:***@db.internal/0" in str(span.status.description)


def test_invalid_subscribe_arguments_fail_at_the_call_with_an_error_span(
    telemetry: Telemetry,
) -> None:
    async def body() -> None:
        async with telemetry.wrap(MemoryEventStore()) as store:
            with pytest.raises(es.InvalidArgumentError):
                store.subscribe(es.RunId.new(), after_seq=-1)

    run(body())
    span = telemetry.only("eventstore.subscribe")
    assert span.status.status_code is StatusCode.ERROR
    assert telemetry.value("eventstore.errors", eventstore__operation="subscribe") == 1


def test_corrupt_entries_are_counted_on_reads_and_subscriptions(telemetry: Telemetry) -> None:
    run_id = es.RunId.new()

    async def body() -> None:
        async with telemetry.wrap(MemoryEventStore()) as store:
            await store.append_batch([started(run_id), delta(run_id), delta(run_id)])
            backdoor = store.backdoor()
            assert backdoor is not None
            await backdoor.corrupt(run_id, 2)
            with pytest.raises(es.CorruptEventError):
                await store.list_after(run_id)

            async def follow() -> list[es.EventEnvelope]:
                return [envelope async for envelope in store.subscribe(run_id, 1)]

            with pytest.raises(es.CorruptEventError):
                await follow()

    run(body())
    assert telemetry.value("eventstore.corrupt_entries") == 2
    assert telemetry.value("eventstore.corrupt_entries", eventstore__operation="list_after") == 1
    assert telemetry.value("eventstore.corrupt_entries", eventstore__operation="subscribe") == 1
    assert telemetry.value("eventstore.errors", error__type="CorruptEventError") == 2
    assert telemetry.only("eventstore.subscribe").status.status_code is StatusCode.ERROR
    # A page that failed is not a page read.
    assert telemetry.value("eventstore.read.pages") == 0


# -- metrics -------------------------------------------------------------------------


def test_append_metrics_count_exactly(telemetry: Telemetry) -> None:
    run_id = es.RunId.new()

    async def body() -> None:
        async with telemetry.wrap(MemoryEventStore()) as store:
            await store.append(started(run_id))
            for _ in range(2):
                await store.append(delta(run_id))
            await store.append_batch([delta(run_id) for _ in range(4)])
            await store.append_batch([])

    run(body())
    assert telemetry.unit("eventstore.append.duration") == "s"
    assert telemetry.unit("eventstore.events.appended") == "{event}"
    assert telemetry.value("eventstore.append.duration") == 5  # one per call
    assert telemetry.value("eventstore.append.duration", eventstore__operation="append") == 3
    assert telemetry.value("eventstore.append.duration", eventstore__operation="append_batch") == 2
    assert telemetry.value("eventstore.events.appended") == 7
    assert telemetry.value("eventstore.events.appended", eventstore__operation="append") == 3
    assert telemetry.value("eventstore.events.appended", eventstore__operation="append_batch") == 4
    for point in telemetry.points("eventstore.append.duration"):
        assert point.attributes["eventstore.backend"] == "memory"
        assert point.sum >= 0
        # Seconds, with buckets fine enough for sub-millisecond appends.
        assert point.explicit_bounds[0] < 0.001
    assert telemetry.value("eventstore.errors") == 0


def test_read_metrics_count_pages_and_events(telemetry: Telemetry) -> None:
    run_id = es.RunId.new()

    async def body() -> None:
        async with telemetry.wrap(MemoryEventStore()) as store:
            await store.append_batch([delta(run_id) for _ in range(5)])
            assert len(await store.list_after(run_id, limit=2)) == 2
            assert len(await store.list_after(run_id, 2, limit=2)) == 2
            assert len(await store.list_after(run_id, 4, limit=2)) == 1
            assert await store.list_after(run_id, 5) == []

    run(body())
    assert telemetry.unit("eventstore.read.pages") == "{page}"
    assert telemetry.value("eventstore.read.pages") == 4
    assert telemetry.value("eventstore.events.read", eventstore__operation="list_after") == 5


def test_subscribe_records_lag_per_delivery(telemetry: Telemetry) -> None:
    run_id = es.RunId.new()
    old = Instant.now().subtract(seconds=30)

    async def body() -> None:
        async with telemetry.wrap(MemoryEventStore()) as store:
            # An envelope emitted 30 s ago, imported verbatim: its lag is at least 30 s.
            async with MemoryEventStore() as source:
                (first,) = await source.append_batch([started(run_id)])
            await store.import_envelopes([moved(first, emitted_at=old)])

            async def produce() -> None:
                await store.append(delta(run_id))
                await store.append(completed(run_id))

            producer = asyncio.create_task(produce())
            delivered = [e.seq async for e in store.subscribe(run_id, until_terminal=True)]
            await producer
            assert delivered == [1, 2, 3]

    run(body())
    assert telemetry.unit("eventstore.subscribe.lag") == "s"
    (lag,) = telemetry.points("eventstore.subscribe.lag")
    assert lag.count == 3
    assert lag.min >= 0
    assert lag.max >= 30
    assert lag.attributes["eventstore.operation"] == "subscribe"
    assert telemetry.value("eventstore.events.read", eventstore__operation="subscribe") == 3
    span = telemetry.only("eventstore.subscribe")
    assert span.status.status_code is StatusCode.UNSET
    assert (span.attributes or {})["eventstore.event_count"] == 3
    assert (span.attributes or {})["eventstore.until_terminal"] is True


def test_stopping_a_subscription_ends_its_span_and_the_inner_iteration(
    telemetry: Telemetry,
) -> None:
    run_id = es.RunId.new()

    async def body() -> None:
        async with telemetry.wrap(MemoryEventStore()) as store:
            await store.append(delta(run_id))
            following = store.subscribe(run_id)
            assert (await anext(following)).seq == 1
            # The next step waits for an append that never comes; cancel it.
            waiting = asyncio.ensure_future(anext(following))
            await asyncio.sleep(0)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            assert telemetry.finished("eventstore.subscribe") != []

    run(body())
    span = telemetry.only("eventstore.subscribe")
    # Cancellation is not a store failure.
    assert span.status.status_code is StatusCode.UNSET
    assert (span.attributes or {})["eventstore.event_count"] == 1
    assert telemetry.value("eventstore.errors") == 0


# -- enabling by configuration -------------------------------------------------------


@pytest.fixture
def no_telemetry_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVENTSTORE_TELEMETRY", raising=False)


@pytest.mark.usefixtures("no_telemetry_env")
def test_open_store_keyword_enables_telemetry() -> None:
    store = es.open_store("memory://", telemetry=True)
    assert isinstance(store, InstrumentedStore)
    assert isinstance(store.inner, MemoryEventStore)


@pytest.mark.usefixtures("no_telemetry_env")
@pytest.mark.parametrize("value", ["1", "true", "otel", "TRUE", "on"])
def test_url_option_enables_telemetry_and_is_not_passed_to_the_backend(value: str) -> None:
    store = es.open_store(f"memory://?max_event_bytes=2048&telemetry={value}")
    assert isinstance(store, InstrumentedStore)
    # The backend got its own option and, validating strictly, no 'telemetry'.
    assert store.inner.max_event_bytes == 2048


def test_env_variable_enables_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTSTORE_TELEMETRY", "1")
    assert isinstance(es.open_store("memory://"), InstrumentedStore)
    # An explicit choice wins over the environment.
    assert type(es.open_store("memory://", telemetry=False)) is MemoryEventStore
    assert type(es.open_store("memory://?telemetry=0")) is MemoryEventStore


@pytest.mark.usefixtures("no_telemetry_env")
def test_keyword_wins_over_url_option() -> None:
    assert type(es.open_store("memory://?telemetry=1", telemetry=False)) is MemoryEventStore
    assert isinstance(es.open_store("memory://?telemetry=off", telemetry="otel"), InstrumentedStore)


@pytest.mark.usefixtures("no_telemetry_env")
def test_bad_telemetry_value_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(es.ConfigurationError, match="option 'telemetry'"):
        es.open_store("memory://?telemetry=maybe")
    with pytest.raises(es.ConfigurationError, match="option 'telemetry'"):
        es.open_store("memory://", telemetry=2)
    monkeypatch.setenv("EVENTSTORE_TELEMETRY", "yes please")
    with pytest.raises(es.ConfigurationError, match="EVENTSTORE_TELEMETRY"):
        es.open_store("memory://")


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "EVENTSTORE_TELEMETRY"}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environ,
        check=False,
    )


def test_without_the_option_nothing_is_wrapped_or_imported() -> None:
    result = _python(
        """
        import sys
        import eventstore
        store = eventstore.open_store("memory://")
        assert type(store).__name__ == "MemoryEventStore", type(store)
        loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry", "eventstore.telemetry")))
        assert not loaded, loaded
        print("clean")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"


def test_enabled_without_opentelemetry_says_what_to_install() -> None:
    result = _python(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if it were not installed
        import eventstore
        try:
            eventstore.open_store("memory://?telemetry=1")
        except eventstore.ConfigurationError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "pip install './[otel]'" in result.stdout


# -- the wrapped store still obeys the whole contract ----------------------------------


class TestInstrumentedMemoryContract(StoreContract):
    @pytest.fixture
    def store_factory(self, telemetry: Telemetry) -> StoreFactory:
        return lambda: telemetry.wrap(MemoryEventStore())


def test_subscribe_closes_an_inner_iterator_that_is_not_a_generator(telemetry: Telemetry) -> None:
    """A backend may return its own async iterator class; stopping must still close it."""
    closed: list[bool] = []

    class Iterator_:
        def __init__(self, inner: AsyncIterator[es.EventEnvelope]) -> None:
            self._inner = inner

        def __aiter__(self) -> Iterator_:
            return self

        async def __anext__(self) -> es.EventEnvelope:
            return await anext(self._inner)

        async def aclose(self) -> None:
            closed.append(True)

    class Custom(MemoryEventStore):
        def subscribe(
            self, run_id: es.RunId, after_seq: int | None = None, *, until_terminal: bool = False
        ) -> AsyncIterator[es.EventEnvelope]:
            return Iterator_(super().subscribe(run_id, after_seq, until_terminal=until_terminal))

    async def body() -> None:
        run_id = es.RunId.new()
        async with telemetry.wrap(Custom()) as store:
            await store.append(es.TextDelta(run_id=run_id, delta="x"))
            stream = store.subscribe(run_id)
            assert (await anext(aiter(stream))).seq == 1
            await stream.aclose()  # type: ignore[attr-defined]

    asyncio.run(body())
    assert closed == [True]


def test_a_backends_own_public_attributes_pass_through_the_wrapper(telemetry: Telemetry) -> None:
    # Turning telemetry on by configuration must not break code that uses what a
    # backend offers beyond the interface (SQL's engine, Redis's skipped_corrupt...).
    class Special(MemoryEventStore):
        answer = 42

        def pool_status(self) -> str:
            return "idle"

    store = telemetry.wrap(Special())
    assert store.answer == 42
    assert store.pool_status() == "idle"
    with pytest.raises(AttributeError):
        _ = store._runs  # private state stays private
    with pytest.raises(AttributeError):
        _ = store.no_such_attribute


def test_wrapping_an_instrumented_store_again_records_each_operation_once(
    telemetry: Telemetry,
) -> None:
    inner = MemoryEventStore()
    twice = telemetry.wrap(telemetry.wrap(inner))
    assert twice.inner is inner

    async def body() -> None:
        async with twice as store:
            await store.append(delta(es.RunId.new()))

    run(body())
    assert len(telemetry.finished("eventstore.append")) == 1
    (point,) = telemetry.points("eventstore.events.appended")
    assert point.value == 1


def test_closing_a_subscription_before_its_first_step_closes_the_inner_one(
    telemetry: Telemetry,
) -> None:
    closed: list[str] = []

    class Inner:
        def __aiter__(self) -> Inner:
            return self

        async def __anext__(self) -> es.EventEnvelope:
            raise StopAsyncIteration

        async def aclose(self) -> None:
            closed.append("inner")

    class Custom(MemoryEventStore):
        def subscribe(
            self, run_id: es.RunId, after_seq: int | None = None, *, until_terminal: bool = False
        ) -> AsyncIterator[es.EventEnvelope]:
            return Inner()

    async def body() -> None:
        async with telemetry.wrap(Custom()) as store:
            stream = store.subscribe(es.RunId.new())
            assert isinstance(stream, AsyncGenerator)
            await stream.aclose()
            await stream.aclose()
            thrown = store.subscribe(es.RunId.new())
            assert isinstance(thrown, AsyncGenerator)
            with pytest.raises(RuntimeError, match="stop"):
                await thrown.athrow(RuntimeError("stop"))

    run(body())
    assert closed == ["inner", "inner"]
