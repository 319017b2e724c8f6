"""The ASGI app: the JSON endpoints, the run stream and the viewer page."""

from __future__ import annotations

__all__ = ["create_app"]

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from importlib.resources import files
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .._envelope import encode_envelope
from .._errors import EventStoreError
from .._plugins import open_store
from .._store import EventStore
from ._hosts import LOOPBACK_HOSTS, HostCheck, normalize_hosts
from ._params import parse_limit, parse_run_id, parse_seq, parse_session_id
from ._problems import error_response, unexpected_error_response
from ._request_id import REQUEST_ID_HEADER, RequestId, request_id_of
from ._sse import EventStreamResponse, StreamSettings, run_frames

logger = logging.getLogger("eventstore.serve")


def _json_list(texts: Iterable[str]) -> Response:
    # Each item is already JSON text; joining the strings avoids a round trip through
    # Python dicts.
    body = "[" + ",".join(texts) + "]"
    return Response(body, media_type="application/json")


class _Endpoints:
    """Request handlers bound to one store."""

    def __init__(self, store: EventStore, settings: StreamSettings) -> None:
        self.store = store
        self.settings = settings
        # Set when the server shuts down: open streams end so connections drain.
        self.closing = asyncio.Event()

    async def index(self, request: Request) -> Response:
        page = files(__package__).joinpath("static", "index.html").read_text("utf-8")
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    async def runs(self, request: Request) -> Response:
        query = request.query_params
        after = query.get("after")
        infos = await self.store.list_runs(
            session_id=parse_session_id(query.get("session_id")),
            limit=parse_limit(query.get("limit")),
            after=parse_run_id(after, "after") if after else None,
        )
        return _json_list(info.model_dump_json() for info in infos)

    async def events(self, request: Request) -> Response:
        run_id = parse_run_id(request.path_params["run_id"])
        query = request.query_params
        envelopes = await self.store.list_after(
            run_id, parse_seq(query.get("after_seq")), parse_limit(query.get("limit"))
        )
        # serde's exact bytes (behest's envelope form), as stored: times with all
        # their digits, floats as Rust writes them.
        return _json_list(encode_envelope(envelope) for envelope in envelopes)

    async def stream(self, request: Request) -> Response:
        run_id = parse_run_id(request.path_params["run_id"])
        # A reconnecting EventSource sends the last id it saw; it wins over the query
        # string, which still holds what the page asked for the first time.
        header = request.headers.get("last-event-id")
        if header is not None and header.strip():
            after_seq = parse_seq(header.strip(), "Last-Event-ID")
        else:
            after_seq = parse_seq(request.query_params.get("after_seq"))
        # Touch the store before the 200 goes out, so an unreachable backend is a 503
        # rather than a stream that fails after its headers.
        await self.store.last_seq(run_id)
        # During shutdown the stream ends right after its "retry:" line; a 503 would
        # make a browser's EventSource give up instead of reconnecting later.
        frames = run_frames(
            self.store,
            run_id,
            after_seq or 0,
            self.settings,
            self.closing,
            request_id=request_id_of(request.scope),
        )
        return EventStreamResponse(frames)


async def _store_error(request: Request, exc: Exception) -> Response:
    return error_response(request, exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    # Starlette's own: 404 and 405, whose details ("Not Found") say nothing of the store.
    assert isinstance(exc, HTTPException)
    request_id = request_id_of(request.scope)
    headers = {**(exc.headers or {}), REQUEST_ID_HEADER: request_id}
    return JSONResponse(
        {"error": exc.detail, "request_id": request_id},
        status_code=exc.status_code,
        headers=headers,
    )


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    return unexpected_error_response(request, exc)


class _StaticFiles(StaticFiles):
    """The viewer's assets, revalidated on every load.

    Without ``Cache-Control`` a browser may reuse a cached ``viewer.js`` with the
    (always revalidated) page of a newer release; the ETag keeps revalidation cheap.
    """

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def create_app(
    store_or_url: EventStore | str,
    *,
    keepalive_seconds: float = 15.0,
    retry_ms: int = 1000,
    max_events_per_stream: int | None = None,
    allowed_hosts: Sequence[str] = LOOPBACK_HOSTS,
) -> Starlette:
    """The ASGI app serving ``store_or_url`` (a store instance or a store URL).

    The app opens the store when it starts and closes it when it shuts down.
    ``keepalive_seconds`` spaces the comment lines an idle stream sends,
    ``retry_ms`` is the reconnect delay suggested to browsers, and
    ``max_events_per_stream`` ends each stream response after that many events so
    the client reconnects and resumes (``None``: no limit). ``allowed_hosts`` lists
    the ``Host`` header names served (exact host names or IP addresses,
    ``*.example.com`` patterns, or ``*`` for any; :class:`ConfigurationError` for
    anything else); other requests, and any whose ``Host`` is not exactly a host
    name with an optional port, get a 400, which keeps web pages that rebind their
    DNS name to this machine from reading the API. The default is the loopback
    names.

    Every response carries an ``X-Request-ID``. Error bodies are
    ``{"error": ..., "request_id": ...}``; for a 5xx the message is generic and
    the detail (which names the store) goes to the ``eventstore.serve`` log under
    that id.

    ``app.state.close_streams()`` ends every open stream without ``end`` (clients
    reconnect and resume later); call it when the server begins to shut down, as
    :func:`~eventstore.serve.serve_command` does, or connections never drain.
    """
    if keepalive_seconds <= 0:
        raise ValueError(f"keepalive_seconds must be > 0, got {keepalive_seconds!r}")
    if retry_ms < 0:
        raise ValueError(f"retry_ms must be >= 0, got {retry_ms!r}")
    if max_events_per_stream is not None and max_events_per_stream < 1:
        raise ValueError(f"max_events_per_stream must be >= 1, got {max_events_per_stream!r}")
    allowed = normalize_hosts(allowed_hosts)
    store = open_store(store_or_url) if isinstance(store_or_url, str) else store_or_url
    endpoints = _Endpoints(
        store,
        StreamSettings(
            keepalive_seconds=keepalive_seconds,
            retry_ms=retry_ms,
            max_events=max_events_per_stream,
        ),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.open()
        logger.info("serving %r", store)
        try:
            yield
        finally:
            endpoints.closing.set()
            await store.close()

    app = Starlette(
        routes=[
            Route("/", endpoints.index, methods=["GET"]),
            Route("/runs", endpoints.runs, methods=["GET"]),
            Route("/runs/{run_id}/events", endpoints.events, methods=["GET"]),
            Route("/runs/{run_id}/stream", endpoints.stream, methods=["GET"]),
            Mount(
                "/static",
                _StaticFiles(packages=[(__package__ or "eventstore.serve", "static")]),
                name="static",
            ),
        ],
        exception_handlers={
            EventStoreError: _store_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        },
        # RequestId first, so that every response carries X-Request-ID, the Host
        # check's 400 included.
        middleware=[Middleware(RequestId), Middleware(HostCheck, allowed=allowed)],
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.close_streams = endpoints.closing.set
    return app
