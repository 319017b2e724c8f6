"""``eventstore serve``: the HTTP endpoints, their errors and the SSE run stream."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Coroutine, MutableMapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from whenever import Instant

import eventstore as es
import eventstore.backend as es_backend
import eventstore.errors as es_errors
from eventstore.memory import MemoryEventStore
from eventstore.serve import create_app

T = TypeVar("T")
# A guard against hangs, never an assertion about speed.
HANG_GUARD = 20.0


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, HANG_GUARD))


def sample_events(run_id: es.RunId, session_id: es.SessionId) -> list[es.AgentEvent]:
    return [
        es.RunStarted(run_id=run_id, session_id=session_id, provider="acme", model="m-1"),
        es.ModelStarted(run_id=run_id, provider="acme", model="m-1", iteration=1),
        es.TextDelta(run_id=run_id, delta="Hello, "),
        es.TextDelta(run_id=run_id, delta="world"),
        es.ToolCallStarted(run_id=run_id, call_id="c1", tool_name="search"),
        es.ToolCallCompleted(
            run_id=run_id, call=es.ToolCall(id="c1", name="search", arguments={"q": "x"})
        ),
        es.ToolExecutionStarted(run_id=run_id, call_id="c1", tool_name="search"),
        es.ToolExecutionFinished(
            run_id=run_id,
            call_id="c1",
            tool_name="search",
            result=es.Success(output=["hit"]),
            duration_ms=42,
        ),
        es.UsageRecorded(
            run_id=run_id,
            usage=es.TokenUsage(input_tokens=10, output_tokens=5, total_tokens=15),
        ),
        es.RunCompleted(run_id=run_id, finish_reason=es.FinishReason.STOP, iterations=1),
    ]


@asynccontextmanager
async def served(
    store: es.EventStore | None = None, **settings: Any
) -> AsyncIterator[tuple[es.EventStore, httpx.AsyncClient, Starlette]]:
    """An opened store, the app over it and a client; httpx runs no lifespan."""
    store = store or es.open_store("memory://")
    app = create_app(store, **settings)
    async with store:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield store, client, app


async def append_run(
    store: es.EventStore, events: Sequence[es.AgentEvent]
) -> list[es.EventEnvelope]:
    return [await store.append(event) for event in events]


def parse_sse(text: str) -> list[dict[str, str]]:
    """Frames of an SSE body, each as {field: value}; comments under ':'."""
    frames = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        frame: dict[str, str] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            frame[name] = value[1:] if value.startswith(" ") else value
        frames.append(frame)
    return frames


def envelope_frames(frames: list[dict[str, str]]) -> list[dict[str, str]]:
    return [f for f in frames if f.get("event") == "envelope"]


# ------------------------------------------------------------------ JSON endpoints


def test_runs_lists_run_infos_as_json() -> None:
    async def body() -> None:
        async with served() as (store, client, _):
            session = es.SessionId.new()
            first, second = es.RunId.new(), es.RunId.new()
            await append_run(store, sample_events(first, session)[:3])
            await append_run(store, sample_events(second, es.SessionId.new())[:1])

            response = await client.get("/runs")
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            infos = response.json()
            assert [i["run_id"] for i in infos] == [str(first), str(second)]
            assert set(infos[0]) == {
                "run_id",
                "session_id",
                "last_seq",
                "first_emitted_at",
                "last_emitted_at",
            }
            assert infos[0]["session_id"] == str(session)
            assert infos[0]["last_seq"] == 3
            expected = [i.model_dump(mode="json") for i in await store.list_runs()]
            assert infos == expected

            only = await client.get("/runs", params={"session_id": str(session)})
            assert [i["run_id"] for i in only.json()] == [str(first)]
            page = await client.get("/runs", params={"limit": "1"})
            assert [i["run_id"] for i in page.json()] == [str(first)]
            rest = await client.get("/runs", params={"after": str(first)})
            assert [i["run_id"] for i in rest.json()] == [str(second)]

    run(body())


def test_events_are_envelopes_in_the_behest_json_form() -> None:
    async def body() -> None:
        async with served() as (store, client, _):
            run_id = es.RunId.new()
            stored = await append_run(store, sample_events(run_id, es.SessionId.new()))

            response = await client.get(f"/runs/{run_id}/events")
            assert response.status_code == 200
            # serde's exact bytes of each envelope, as a Rust client would read them.
            assert response.text == "[" + ",".join(map(es_backend.encode_envelope, stored)) + "]"
            first = response.json()[0]
            assert set(first) == {"event_id", "seq", "run_id", "session_id", "event", "emitted_at"}
            assert list(first["event"]) == ["RunStarted"]
            decoded = [es.EventEnvelope.model_validate(e) for e in response.json()]
            assert decoded == stored

    run(body())


def test_events_page_with_after_seq_and_limit_visits_every_envelope_once() -> None:
    async def body() -> None:
        async with served() as (store, client, _):
            run_id = es.RunId.new()
            await append_run(store, sample_events(run_id, es.SessionId.new()))
            seen: list[int] = []
            after = 0
            while True:
                page = await client.get(
                    f"/runs/{run_id}/events", params={"after_seq": after, "limit": 3}
                )
                seqs = [e["seq"] for e in page.json()]
                if not seqs:
                    break
                assert len(seqs) <= 3
                seen += seqs
                after = seqs[-1]
            assert seen == list(range(1, 11))

    run(body())


def test_events_of_an_unknown_run_are_an_empty_list() -> None:
    async def body() -> None:
        async with served() as (_, client, _app):
            response = await client.get(f"/runs/{es.RunId.new()}/events")
            assert response.status_code == 200
            assert response.json() == []

    run(body())


# ------------------------------------------------------------------ errors are 4xx JSON

RUN = "01a21b16-a22e-73f7-ad79-f713fef2fd40"
BAD_REQUESTS = [
    "/runs/not-a-uuid/events",
    "/runs/123/events",
    f"/runs/{RUN}/events?limit=0",
    f"/runs/{RUN}/events?limit=10001",
    f"/runs/{RUN}/events?limit=abc",
    f"/runs/{RUN}/events?limit=-5",
    f"/runs/{RUN}/events?limit=1.5",
    f"/runs/{RUN}/events?after_seq=-1",
    f"/runs/{RUN}/events?after_seq=abc",
    f"/runs/{RUN}/events?after_seq=%2B3",
    "/runs?limit=0",
    "/runs?limit=10001",
    "/runs?limit=abc",
    "/runs?after=nope",
    "/runs?session_id=nope",
    "/runs/not-a-uuid/stream",
    f"/runs/{RUN}/stream?after_seq=-1",
    f"/runs/{RUN}/stream?after_seq=x",
    f"/runs/{RUN}/events?after_seq=99999999999999999999999",
    f"/runs/{RUN}/stream?after_seq=99999999999999999999999",
    # Past int()'s own 4300-digit limit: still a message about the parameter.
    f"/runs/{RUN}/events?after_seq={'9' * 5000}",
    f"/runs?limit={'1' * 5000}",
]


@pytest.mark.parametrize("path", BAD_REQUESTS)
def test_bad_ids_and_parameters_are_400_with_a_json_error(path: str) -> None:
    async def body() -> None:
        async with served() as (_, client, _app):
            response = await client.get(path)
            assert response.status_code == 400, response.text
            assert response.headers["content-type"] == "application/json"
            error = response.json()["error"]
            assert isinstance(error, str)
            assert error
            assert "set_int_max_str_digits" not in error

    run(body())


def test_bad_last_event_id_is_400() -> None:
    async def body() -> None:
        async with served() as (_, client, _app):
            response = await client.get(f"/runs/{RUN}/stream", headers={"Last-Event-ID": "seven"})
            assert response.status_code == 400
            assert "Last-Event-ID" in response.json()["error"]

    run(body())


def test_unknown_paths_and_methods_get_json_errors() -> None:
    async def body() -> None:
        async with served() as (_, client, _app):
            missing = await client.get("/nothing/here")
            assert missing.status_code == 404
            assert missing.json() == {
                "error": "Not Found",
                "request_id": missing.headers["X-Request-ID"],
            }
            wrong = await client.post("/runs")
            assert wrong.status_code == 405
            assert "error" in wrong.json()
            assert wrong.json()["request_id"] == wrong.headers["X-Request-ID"]

    run(body())


class _NoListRunsStore(MemoryEventStore):
    async def _list_runs(
        self, session_id: es.SessionId | None, limit: int, after: es.RunId | None
    ) -> list[es.RunInfo]:
        raise es_errors.UnsupportedOperationError("this test store does not list runs")


class _UnreachableStore(MemoryEventStore):
    """A store whose backend connection is down for every read."""

    async def _last_seq(self, run_id: es.RunId) -> int:
        raise ConnectionRefusedError("connect to redis://user:hunter2@db:6379 refused")

    async def _list_after(
        self, run_id: es.RunId, after_seq: int, limit: int
    ) -> list[es.EventEnvelope]:
        await self._last_seq(run_id)
        return []

    def _translate_error(self, exc: Exception, operation: str) -> es.EventStoreError:
        return es.BackendUnavailableError(f"unreachable: {es_backend.redact_text(str(exc))}")


def test_unsupported_operation_is_501_with_a_generic_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body() -> None:
        async with served(_NoListRunsStore()) as (_, client, _app):
            response = await client.get("/runs")
            assert response.status_code == 501
            request_id = response.headers["X-Request-ID"]
            assert response.json() == {
                "error": "the store does not offer this operation",
                "request_id": request_id,
            }
            (record,) = [r for r in caplog.records if request_id in r.getMessage()]
            assert "memory: this test store does not list runs" in record.getMessage()

    with caplog.at_level(logging.INFO, logger="eventstore.serve"):
        run(body())


@pytest.mark.parametrize("path", [f"/runs/{RUN}/events", f"/runs/{RUN}/stream"])
def test_unavailable_backend_is_503_with_a_request_id_and_the_detail_only_in_the_log(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        async with served(_UnreachableStore()) as (_, client, _app):
            response = await client.get(path)
            assert response.status_code == 503
            request_id = response.headers["X-Request-ID"]
            assert response.json() == {
                "error": "the store is unavailable",
                "request_id": request_id,
            }
            # The operator finds the detail under the id the client reports.
            (record,) = [r for r in caplog.records if request_id in r.getMessage()]
            logged = record.getMessage()
            assert "memory: unreachable" in logged and "503" in logged
            assert "hunter2" not in logged

    with caplog.at_level(logging.INFO, logger="eventstore.serve"):
        run(body())


def test_corrupt_event_is_a_server_error_with_a_generic_json_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body() -> None:
        async with served() as (store, client, _):
            run_id = es.RunId.new()
            await append_run(store, sample_events(run_id, es.SessionId.new())[:3])
            backdoor = store.backdoor()
            assert backdoor is not None
            await backdoor.corrupt(run_id, 1)
            response = await client.get(f"/runs/{run_id}/events")
            assert response.status_code == 500
            request_id = response.headers["X-Request-ID"]
            assert response.json() == {"error": "internal server error", "request_id": request_id}
            (record,) = [r for r in caplog.records if request_id in r.getMessage()]
            assert "corrupt" in record.getMessage()
            assert "\n" not in record.getMessage()  # one line, whatever the cause quotes

            stream = await client.get(f"/runs/{run_id}/stream")
            frames = parse_sse(stream.text)
            assert envelope_frames(frames) == []
            failure = frames[-1]
            assert failure["event"] == "failure"
            stream_id = stream.headers["X-Request-ID"]
            assert json.loads(failure["data"]) == {
                "error": "internal server error",
                "request_id": stream_id,
                "status": 500,
            }
            (record,) = [r for r in caplog.records if stream_id in r.getMessage()]
            assert "corrupt" in record.getMessage()

    with caplog.at_level(logging.INFO, logger="eventstore.serve"):
        run(body())


# A store's own messages name where it keeps its data; clients must never read them.
_STORE_DETAIL = "redis://db.internal:6379/7 prefix='tenant-a:'"


class _DetailedFailureStore(MemoryEventStore):
    """Reads fail with ``error`` (its message naming the store) while ``failing``."""

    def __init__(self, error: type[es.EventStoreError]) -> None:
        super().__init__()
        self.error = error
        self.failing = True

    async def _list_after(
        self, run_id: es.RunId, after_seq: int, limit: int
    ) -> list[es.EventEnvelope]:
        if self.failing:
            raise self.error(f"store {_STORE_DETAIL}: read failed")
        return await super()._list_after(run_id, after_seq, limit)

    async def _list_runs(
        self, session_id: es.SessionId | None, limit: int, after: es.RunId | None
    ) -> list[es.RunInfo]:
        raise self.error(f"store {_STORE_DETAIL}: read failed")


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (es_errors.BackendUnavailableError, 503, "the store is unavailable"),
        (es_errors.StoreClosedError, 503, "the store is unavailable"),
        (es_errors.BackendError, 500, "internal server error"),
        (es_errors.UnsupportedOperationError, 501, "the store does not offer this operation"),
        # A misconfigured store is the server's fault, though a ValueError.
        (es_errors.ConfigurationError, 500, "internal server error"),
        (es_errors.EventStoreError, 500, "internal server error"),
    ],
)
def test_server_side_failures_show_clients_no_store_detail(
    error: type[es.EventStoreError], status: int, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        async with served(_DetailedFailureStore(error)) as (store, client, _app):
            run_id = es.RunId.new()
            await store.append(es.TextDelta(run_id=run_id, delta="x"))
            for path in ("/runs", f"/runs/{run_id}/events"):
                response = await client.get(path)
                assert response.status_code == status, response.text
                request_id = response.headers["X-Request-ID"]
                assert response.json() == {"error": message, "request_id": request_id}
                # The request id is random text: it may hold "6379" by chance.
                shown = response.text.replace(request_id, "")
                for detail in ("db.internal", "tenant-a", "6379", "memory", "read failed"):
                    assert detail not in shown
                (record,) = [r for r in caplog.records if request_id in r.getMessage()]
                assert _STORE_DETAIL in record.getMessage()
                assert path in record.getMessage()
            # Failing after the stream's 200: the failure frame is generic too.
            stream = await client.get(f"/runs/{run_id}/stream", headers={"Last-Event-ID": "1"})
            assert stream.status_code == 200
            stream_id = stream.headers["X-Request-ID"]
            failure = parse_sse(stream.text)[-1]
            assert failure["event"] == "failure"
            assert json.loads(failure["data"]) == {
                "error": message,
                "request_id": stream_id,
                "status": status,
            }
            shown = stream.text.replace(stream_id, "")
            assert "db.internal" not in shown and "memory" not in shown
            (record,) = [r for r in caplog.records if stream_id in r.getMessage()]
            assert _STORE_DETAIL in record.getMessage()

    with caplog.at_level(logging.INFO, logger="eventstore.serve"):
        run(body())


def test_a_sqlite_stores_file_path_never_reaches_a_client(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        store = es.open_store(f"sqlite+aiosqlite:///{tmp_path / 'secret-place.db'}")
        async with served(store) as (_, client, _app):
            await store.close()  # every request now fails: StoreClosedError, a 503
            response = await client.get("/runs")
            assert response.status_code == 503
            assert "secret-place" not in response.text and "sqlite" not in response.text
            assert response.json()["error"] == "the store is unavailable"

    with caplog.at_level(logging.INFO, logger="eventstore.serve"):
        run(body())


def test_client_errors_keep_their_message_without_the_backend_name() -> None:
    class _Trimmed(MemoryEventStore):
        async def _list_after(
            self, run_id: es.RunId, after_seq: int, limit: int
        ) -> list[es.EventEnvelope]:
            raise es_errors.HistoryUnavailableError(
                run_id=run_id, requested_after=after_seq, first_available=5
            )

    async def body() -> None:
        async with served(_Trimmed()) as (_, client, _app):
            response = await client.get(f"/runs/{RUN}/events?after_seq=1")
            assert response.status_code == 410
            assert response.json() == {
                "error": f"run {RUN}: events after seq 1 were trimmed by retention; "
                "the first available seq is 5",
                "request_id": response.headers["X-Request-ID"],
            }
            bad = await client.get(f"/runs/{RUN}/events?limit=0")
            assert bad.status_code == 400
            assert bad.json()["error"] == "limit must be in 1..10000, got 0"

    run(body())


def test_an_unexpected_exception_is_a_generic_500_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class _Buggy(MemoryEventStore):
        # Past the store's error boundary, which would make a BackendError of it.
        async def list_runs(self, *args: Any, **kwargs: Any) -> list[es.RunInfo]:
            raise ValueError(f"bug near {_STORE_DETAIL}")

    async def body() -> None:
        store = _Buggy()
        app = create_app(store)
        async with store:
            # The ASGI server would log the re-raised exception; the client gets a 500.
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                response = await c.get("/runs")
        assert response.status_code == 500
        request_id = response.headers["X-Request-ID"]
        assert response.json() == {"error": "internal server error", "request_id": request_id}
        (record,) = [r for r in caplog.records if request_id in r.getMessage()]
        assert record.exc_info is not None

    with caplog.at_level(logging.INFO, logger="eventstore.serve"):
        run(body())


def test_every_response_has_its_own_request_id() -> None:
    async def body() -> None:
        async with served() as (store, client, _app):
            run_id = es.RunId.new()
            await append_run(store, sample_events(run_id, es.SessionId.new()))
            responses = [
                await client.get("/runs"),
                await client.get(f"/runs/{run_id}/events"),
                await client.get(f"/runs/{run_id}/stream"),
                await client.get("/"),
                await client.get("/runs/nope/events"),
                await client.get("/runs", headers={"Host": "evil.example"}),
            ]
            ids = [r.headers["X-Request-ID"] for r in responses]
            assert all(len(i) == 32 for i in ids) and len(set(ids)) == len(ids)
            for response in responses[4:]:
                assert response.json()["request_id"] == response.headers["X-Request-ID"]
            # Chosen by the server, never by the client.
            chosen = await client.get("/runs", headers={"X-Request-ID": "forged"})
            assert chosen.headers.get_list("X-Request-ID") != ["forged"]
            assert len(chosen.headers.get_list("X-Request-ID")) == 1

    run(body())


def test_extreme_event_times_are_served() -> None:
    async def body() -> None:
        async with served() as (store, client, _app):
            run_id = es.RunId.new()
            earliest, latest = Instant.MIN, Instant.MAX
            await store.append(es.TextDelta(run_id=run_id, delta="x", timestamp=earliest))
            await store.append(es.RunCancelled(run_id=run_id, timestamp=latest))
            response = await client.get(f"/runs/{run_id}/events")
            assert response.status_code == 200
            events = [e["event"] for e in response.json()]
            assert events[0]["TextDelta"]["timestamp"] == "0001-01-01T00:00:00Z"
            assert events[1]["RunCancelled"]["timestamp"] == "9999-12-31T23:59:59.999999999Z"
            stream = await client.get(f"/runs/{run_id}/stream")
            assert parse_sse(stream.text)[-1]["event"] == "end"

    run(body())


def test_times_and_floats_are_served_with_every_digit_they_were_stored_with() -> None:
    async def body() -> None:
        async with served() as (store, client, _app):
            run_id = es.RunId.new()
            when = Instant.from_timestamp(1_767_225_600_123_456_789, unit="nanosecond")
            output = {"big": 1e16, "small": 1.5e-7}
            stored = [
                await store.append(
                    es.ToolExecutionFinished(
                        run_id=run_id,
                        call_id="c1",
                        tool_name="t",
                        result=es.Success(output=output),
                        duration_ms=1,
                        timestamp=when,
                    )
                ),
                await store.append(es.RunCancelled(run_id=run_id, timestamp=when.add(seconds=1))),
            ]
            texts = [es_backend.encode_envelope(e) for e in stored]
            assert '"timestamp":"2026-01-01T00:00:00.123456789Z"' in texts[0]
            assert '"big":1e16' in texts[0]
            listed = await client.get(f"/runs/{run_id}/events")
            assert listed.text == "[" + ",".join(texts) + "]"
            stream = await client.get(f"/runs/{run_id}/stream")
            assert [f["data"] for f in envelope_frames(parse_sse(stream.text))] == texts
            (info,) = (await client.get("/runs")).json()
            assert info["first_emitted_at"] == es_backend.format_time(stored[0].emitted_at)
            assert info["last_emitted_at"] == es_backend.format_time(stored[1].emitted_at)

    run(body())


# ------------------------------------------------------------------ the SSE stream


def test_stream_sends_every_event_with_its_seq_as_id_then_end() -> None:
    async def body() -> None:
        async with served() as (store, client, _):
            run_id = es.RunId.new()
            stored = await append_run(store, sample_events(run_id, es.SessionId.new()))

            response = await client.get(f"/runs/{run_id}/stream")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            assert response.headers["x-accel-buffering"] == "no"
            frames = parse_sse(response.text)
            assert frames[0] == {"retry": "1000"}
            envelopes = envelope_frames(frames)
            assert [f["id"] for f in envelopes] == [str(e.seq) for e in stored]
            assert [es_backend.decode_envelope(f["data"]) for f in envelopes] == stored
            assert frames[-1]["event"] == "end"
            assert json.loads(frames[-1]["data"]) == {"last_seq": 10}

    run(body())


@pytest.mark.parametrize("resume", ["header", "query"])
def test_stream_resumes_after_last_event_id_with_exactly_the_rest(resume: str) -> None:
    async def body() -> None:
        async with served() as (store, client, _):
            run_id = es.RunId.new()
            await append_run(store, sample_events(run_id, es.SessionId.new()))
            if resume == "header":
                response = await client.get(
                    f"/runs/{run_id}/stream", headers={"Last-Event-ID": "4"}
                )
            else:
                response = await client.get(f"/runs/{run_id}/stream?after_seq=4")
            ids = [f["id"] for f in envelope_frames(parse_sse(response.text))]
            assert ids == [str(seq) for seq in range(5, 11)]

    run(body())


def test_last_event_id_wins_over_the_query_string() -> None:
    async def body() -> None:
        async with served() as (store, client, _):
            run_id = es.RunId.new()
            await append_run(store, sample_events(run_id, es.SessionId.new()))
            # A reconnecting EventSource repeats its original URL; the header is newer.
            response = await client.get(
                f"/runs/{run_id}/stream?after_seq=2", headers={"Last-Event-ID": "8"}
            )
            ids = [f["id"] for f in envelope_frames(parse_sse(response.text))]
            assert ids == ["9", "10"]

    run(body())


@pytest.mark.parametrize("resume", ["10", "50"])
def test_resuming_at_or_past_the_terminal_event_only_ends_with_the_real_last_seq(
    resume: str,
) -> None:
    # 50: a stale id, past the end of a run that ended at seq 10.
    async def body() -> None:
        async with served() as (store, client, _):
            run_id = es.RunId.new()
            await append_run(store, sample_events(run_id, es.SessionId.new()))
            response = await client.get(f"/runs/{run_id}/stream", headers={"Last-Event-ID": resume})
            frames = parse_sse(response.text)
            assert envelope_frames(frames) == []
            assert frames[-1] == {"event": "end", "data": '{"last_seq": 10}'}

    run(asyncio.wait_for(body(), 10))


def test_head_of_a_live_stream_returns_headers_and_finishes() -> None:
    async def body() -> None:
        async with served() as (store, client, _):
            run_id = es.RunId.new()
            await store.append(sample_events(run_id, es.SessionId.new())[0])  # not ended
            response = await client.head(f"/runs/{run_id}/stream")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.content == b""

    run(asyncio.wait_for(body(), 10))


def test_stream_follows_a_live_run_and_ends_after_its_terminal_event() -> None:
    async def body() -> None:
        async with served() as (store, client, _):
            run_id = es.RunId.new()
            events = sample_events(run_id, es.SessionId.new())
            await append_run(store, events[:2])
            request = asyncio.create_task(client.get(f"/runs/{run_id}/stream"))
            for event in events[2:]:
                await asyncio.sleep(0)  # let the stream catch up and wait
                await store.append(event)
            response = await request
            frames = parse_sse(response.text)
            assert [f["id"] for f in envelope_frames(frames)] == [str(s) for s in range(1, 11)]
            assert frames[-1]["event"] == "end"

    run(body())


def test_max_events_per_stream_forces_reconnects_that_lose_and_repeat_nothing() -> None:
    async def body() -> None:
        async with served(max_events_per_stream=3) as (store, client, _):
            run_id = es.RunId.new()
            await append_run(store, sample_events(run_id, es.SessionId.new()))
            received: list[int] = []
            responses = 0
            ended = False
            while not ended:
                headers = {"Last-Event-ID": str(received[-1])} if received else {}
                response = await client.get(f"/runs/{run_id}/stream", headers=headers)
                responses += 1
                frames = parse_sse(response.text)
                received += [int(f["id"]) for f in envelope_frames(frames)]
                ended = frames[-1].get("event") == "end"
                assert responses <= 10
            assert received == list(range(1, 11))
            assert responses == 4  # 3 + 3 + 3 + the terminal event with "end"

    run(body())


# ------------------------------------------------------------------ raw ASGI: keep-alive, disconnect


class RawStream:
    """Drives the app directly, so a test can read chunks live and hang up."""

    def __init__(self, app: Starlette, path: str) -> None:
        self.chunks: asyncio.Queue[bytes] = asyncio.Queue()
        self.status: int | None = None
        self._disconnect = asyncio.Event()
        self._request_sent = False
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"127.0.0.1:8000")],
            "client": ("127.0.0.1", 1),
            "server": ("serve.test", 80),
            "state": {},
        }
        self.task = asyncio.create_task(app(scope, self._receive, self._send))

    async def _receive(self) -> dict[str, Any]:
        if not self._request_sent:
            self._request_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._disconnect.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message.get("body"):
            await self.chunks.put(message["body"])

    async def read_until(self, marker: bytes) -> bytes:
        seen = b""
        while marker not in seen:
            seen += await self.chunks.get()
        return seen

    async def hang_up(self) -> None:
        self._disconnect.set()
        await self.task


def test_idle_stream_sends_keep_alive_comments_and_stops_when_the_client_leaves() -> None:
    async def body() -> None:
        store = es.open_store("memory://")
        app = create_app(store, keepalive_seconds=0.01)
        async with store:
            run_id = es.RunId.new()
            stream = RawStream(app, f"/runs/{run_id}/stream")
            assert b": keep-alive\n\n" in await stream.read_until(b": keep-alive")
            assert stream.status == 200
            await store.append(sample_events(run_id, es.SessionId.new())[0])
            assert b"id: 1\n" in await stream.read_until(b"id: 1\n")
            await stream.hang_up()
            assert stream.task.done()

    run(body())


# ------------------------------------------------------------------ app lifecycle


def test_app_opens_the_store_at_startup_and_closes_it_at_shutdown() -> None:
    async def body() -> None:
        store = MemoryEventStore()
        app = create_app(store)
        states = [store.is_open]
        async with app.router.lifespan_context(app):
            states.append(store.is_open)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://127.0.0.1"
            ) as client:
                assert (await client.get("/runs")).json() == []
        states.append(store.is_open)
        assert states == [False, True, False]

    run(body())


def test_app_from_a_url_serves_that_store() -> None:
    async def body() -> None:
        app = create_app("memory://")
        assert isinstance(app.state.store, MemoryEventStore)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://127.0.0.1"
            ) as client:
                assert (await client.get("/runs")).status_code == 200

    run(body())


def test_app_from_an_unknown_scheme_is_a_configuration_error() -> None:
    with pytest.raises(es.ConfigurationError):
        create_app("nosuchbackend://x")


@pytest.mark.parametrize(
    "settings",
    [{"keepalive_seconds": 0}, {"retry_ms": -1}, {"max_events_per_stream": 0}],
)
def test_app_rejects_bad_settings(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(settings))):
        create_app("memory://", **settings)


def test_viewer_page_and_its_assets_are_served() -> None:
    async def body() -> None:
        async with served() as (_, client, _app):
            page = await client.get("/")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            assert 'id="timeline"' in page.text
            for asset, kind in (("static/viewer.js", "javascript"), ("static/viewer.css", "css")):
                assert asset in page.text
                response = await client.get(f"/{asset}")
                assert response.status_code == 200
                assert kind in response.headers["content-type"]
                # Revalidated, so a new release's page never runs an old script.
                assert response.headers["cache-control"] == "no-cache"

    run(body())


# ------------------------------------------------------------------ Host check


async def _status_for_host(host: str, **settings: Any) -> int:
    app = create_app("memory://", **settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return (await client.get("/runs", headers={"Host": host})).status_code


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:8000", 200),
        ("localhost:8000", 200),
        ("LOCALHOST", 200),
        ("[::1]:8000", 200),
        # A page whose DNS name was rebound to 127.0.0.1 sends its own name.
        ("evil.example:8000", 400),
        ("127.0.0.1.evil.example", 400),
        ("", 400),
        ("[::1", 400),
        # Exactly a host and an optional port: nothing a URL parser would skip over.
        ("evil.com@localhost", 400),
        ("evil.com@localhost:8000", 400),
        ("localhost#@evil.com", 400),
        ("localhost?@evil.com", 400),
        ("localhost/evil.com", 400),
        ("localhost\\evil.com", 400),
        ("user:pw@127.0.0.1", 400),
        ("localhost:8000:8000", 400),
        ("localhost:", 400),
        ("localhost:99999", 400),
        ("localhost:80a", 400),
        ("local host", 400),
        ("localhost ", 400),
        ("-localhost", 400),
        ("localhost..", 400),
        ("[::1]evil.com", 400),
        ("[::1]:80:80", 400),
        ("[::1%25eth0]", 400),
        ("127.0.0.1.", 200),
        ("localhost.:8000", 200),
        ("[0:0:0:0:0:0:0:1]:8000", 200),
        ("127.000.000.001", 400),
        ("2130706433", 400),
        ("0x7f.0.0.1", 400),
    ],
)
def test_only_loopback_host_names_are_served_by_default(host: str, status: int) -> None:
    assert run(_status_for_host(host)) == status


def test_host_names_are_read_strictly() -> None:
    from eventstore.serve._hosts import host_name

    assert host_name("LocalHost.:8000") == "localhost"
    assert host_name("[0:0::1]:1") == "::1"
    assert host_name("l\u043ecalhost") is None  # a Cyrillic o
    assert host_name("a" * 64 + ".example") is None  # a label is at most 63 characters
    assert host_name(".".join(["a" * 63] * 4)) is None  # a name at most 253
    assert host_name("xn--80ak6aa92e.com") == "xn--80ak6aa92e.com"  # punycode is ASCII


@pytest.mark.parametrize(
    ("allowed", "host", "status"),
    [
        (["events.example.com"], "events.example.com", 200),
        (["events.example.com"], "127.0.0.1:8000", 400),
        (["*.example.com"], "a.b.example.com:443", 200),
        (["*.example.com"], "example.com.evil", 400),
        (["*.example.com"], "example.com", 400),
        (["*.example.com"], "evil.com@a.example.com", 400),
        (["*.example.com"], "evil.com#.example.com", 400),
        (["*"], "anything.at.all", 200),
        (["Events.Example.COM."], "events.example.com:8000", 200),
        (["[::1]"], "[::1]:8000", 200),
        (["0:0::1"], "[::1]", 200),
        (["10.1.2.3"], "10.1.2.3:8000", 200),
    ],
)
def test_allowed_hosts_names_exact_names_patterns_or_any(
    allowed: list[str], host: str, status: int
) -> None:
    assert run(_status_for_host(host, allowed_hosts=allowed)) == status


@pytest.mark.parametrize(
    "allowed",
    [
        [],
        [""],
        "localhost",
        ["evil.com@localhost"],
        ["localhost:8000"],
        ["my_service"],
        ["*.1.2.3.4"],
        ["*evil.com"],
        ["example.*"],
        [42],
    ],
)
def test_allowed_hosts_must_be_a_non_empty_list_of_names(allowed: Any) -> None:
    with pytest.raises(es.ConfigurationError, match="allowed_hosts"):
        create_app("memory://", allowed_hosts=allowed)


@pytest.mark.parametrize(
    ("bind", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", "localhost", "::1")),
        ("::1", ("127.0.0.1", "localhost", "::1")),
        ("10.1.2.3", ("127.0.0.1", "localhost", "::1", "10.1.2.3")),
        ("0.0.0.0", ("*",)),
        ("::", ("*",)),
    ],
)
def test_serve_allows_loopback_and_the_bound_address_by_default(
    bind: str, expected: tuple[str, ...]
) -> None:
    from eventstore.serve._hosts import hosts_for_bind

    assert hosts_for_bind(bind) == expected


def test_serve_command_runs_uvicorn_on_the_given_address(monkeypatch: pytest.MonkeyPatch) -> None:
    from eventstore.serve import _command, serve_command

    configs: list[Any] = []

    def fake_run(server: Any, sockets: Any = None) -> None:
        configs.append(server.config)

    monkeypatch.setattr(_command._Server, "run", fake_run)
    serve_command("memory://", "127.0.0.1", 8123)
    (config,) = configs
    assert isinstance(config.app, Starlette)
    assert (config.host, config.port) == ("127.0.0.1", 8123)
    assert config.timeout_graceful_shutdown > 0


def test_a_run_deleted_while_streamed_ends_the_stream_with_a_410_failure() -> None:
    async def body() -> None:
        store = es.open_store("memory://")
        app = create_app(store)
        async with store:
            run_id = es.RunId.new()
            await store.append_batch(sample_events(run_id, es.SessionId.new())[:2])
            stream = RawStream(app, f"/runs/{run_id}/stream")
            await stream.read_until(b"id: 2\n")
            await store.delete_run(run_id)
            received = await stream.read_until(b"event: failure")
            (failure,) = [f for f in parse_sse(received.decode()) if f.get("event") == "failure"]
            assert json.loads(failure["data"])["status"] == 410
            await stream.task

    run(asyncio.wait_for(body(), 10))


def test_close_streams_ends_open_streams_without_end_so_clients_resume() -> None:
    async def body() -> None:
        store = es.open_store("memory://")
        app = create_app(store)
        async with store:
            run_id = es.RunId.new()
            await store.append(sample_events(run_id, es.SessionId.new())[0])
            stream = RawStream(app, f"/runs/{run_id}/stream")
            received = await stream.read_until(b"id: 1\n")
            app.state.close_streams()
            await stream.task
            while not stream.chunks.empty():
                received += stream.chunks.get_nowait()
            assert b"event: end" not in received
            # A stream opened during shutdown is empty, not an error: a browser
            # EventSource retries after an empty 200 but gives up after a 503.
            late = await _get(app, f"/runs/{run_id}/stream")
            assert late.status_code == 200
            assert parse_sse(late.text) == [{"retry": "1000"}]

    run(body())


def test_serve_command_server_closes_streams_when_shutdown_begins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from eventstore.serve._command import _Server

    order: list[str] = []

    async def uvicorn_shutdown(self: Any, sockets: Any = None) -> None:
        order.append("uvicorn shutdown")

    monkeypatch.setattr(uvicorn.Server, "shutdown", uvicorn_shutdown)
    server = _Server(uvicorn.Config(create_app("memory://")), lambda: order.append("close"))
    asyncio.run(server.shutdown())
    assert order == ["close", "uvicorn shutdown"]


async def _get(app: Starlette, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        return await client.get(path)


def test_importing_eventstore_does_not_import_the_web_stack() -> None:
    code = "import sys, eventstore; print(sorted({'starlette', 'uvicorn'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
