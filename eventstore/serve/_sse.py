"""Server-Sent Events for one run: framing, resume and the streaming response.

A stream sends one ``event: envelope`` frame per stored event, whose ``id:`` is the
event's seq, so a browser ``EventSource`` that reconnects sends ``Last-Event-ID``
and the stream resumes right after it: nothing lost, nothing repeated. After the
run's terminal event comes ``event: end`` and the stream closes. While the run is
idle, comment lines keep proxies and browsers from timing the connection out.
"""

from __future__ import annotations

__all__ = ["EventStreamResponse", "StreamSettings", "run_frames"]

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .._envelope import EventEnvelope, encode_envelope
from .._errors import EventStoreError
from .._ids import RunId
from .._store import EventStore, terminal_seq
from ._problems import error_body

logger = logging.getLogger("eventstore.serve")

KEEP_ALIVE = b": keep-alive\n\n"


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """Tunables of ``/runs/{id}/stream``.

    ``max_events`` ends each response after that many envelopes (without ``end``)
    so the client reconnects and resumes: it bounds how long one response lives
    behind proxies that dislike endless responses, and lets tests force a
    reconnect the way a network drop does.
    """

    keepalive_seconds: float = 15.0
    retry_ms: int = 1000
    max_events: int | None = None


def envelope_frame(envelope: EventEnvelope) -> bytes:
    """The SSE frame of one envelope: serde's JSON, one line as ``data:`` requires."""
    return f"event: envelope\nid: {envelope.seq}\ndata: {encode_envelope(envelope)}\n\n".encode()


def _end_frame(last_seq: int) -> bytes:
    return f"event: end\ndata: {json.dumps({'last_seq': last_seq})}\n\n".encode()


def _failure_frame(exc: Exception, request_id: str, run_id: RunId) -> bytes:
    """``event: failure`` with what a plain request would have answered, and its status.

    Like an error response, a 5xx failure says only what kind of failure it was;
    its detail goes to the server log under the stream's request id.
    """
    status, body = error_body(exc, request_id, f"stream of run {run_id}")
    body["status"] = status
    return f"event: failure\ndata: {json.dumps(body)}\n\n".encode()


async def _next(events: AsyncIterator[EventEnvelope]) -> EventEnvelope | None:
    # None marks the end: a task cannot carry StopAsyncIteration cleanly.
    try:
        return await anext(events)
    except StopAsyncIteration:
        return None


async def _aclose(events: AsyncIterator[EventEnvelope]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()


async def run_frames(
    store: EventStore,
    run_id: RunId,
    after_seq: int,
    settings: StreamSettings,
    closing: asyncio.Event,
    *,
    request_id: str,
) -> AsyncGenerator[bytes, None]:
    """The byte frames of a run's stream, resuming after ``after_seq``.

    The store is the buffer: a slow client just reads further behind through
    ``subscribe``, which never skips or repeats an envelope. When ``closing`` is
    set (the server is shutting down) the stream ends without ``end``, so the
    client reconnects later and resumes where it was. A failure frame carries
    ``request_id``, the id its detail is logged under.
    """
    yield f"retry: {settings.retry_ms}\n\n".encode()
    last = after_seq
    try:
        ended = await terminal_seq(store, run_id, after_seq)
        if ended is not None:
            yield _end_frame(ended)
            return
        events = store.subscribe(run_id, after_seq, until_terminal=True)
    except EventStoreError as exc:
        yield _failure_frame(exc, request_id, run_id)
        return
    sent = 0
    # One pending read at a time, carried across keep-alive timeouts: cancelling a
    # read inside the subscription on every timeout would end the subscription.
    pending: asyncio.Task[EventEnvelope | None] | None = None
    closed = asyncio.ensure_future(closing.wait())
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(_next(events))
            done, _ = await asyncio.wait(
                {pending, closed},
                timeout=settings.keepalive_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if closed in done:
                return
            if not done:
                yield KEEP_ALIVE
                continue
            task, pending = pending, None
            try:
                envelope = task.result()
            except EventStoreError as exc:
                yield _failure_frame(exc, request_id, run_id)
                return
            if envelope is None:
                yield _end_frame(last)
                return
            yield envelope_frame(envelope)
            last = envelope.seq
            sent += 1
            # Stopping at the terminal event would leave the client without "end".
            limit = settings.max_events
            if limit is not None and sent >= limit and not envelope.event.is_terminal:
                return
    finally:
        closed.cancel()
        if pending is not None:
            pending.cancel()
        await asyncio.gather(closed, *([pending] if pending else []), return_exceptions=True)
        await _aclose(events)


class EventStreamResponse(Response):
    """A ``text/event-stream`` response that stops as soon as the client leaves.

    Starlette's ``StreamingResponse`` only notices a departed client on its next
    write under newer ASGI servers; a run that stays idle would keep its
    subscription open until the next keep-alive. This one watches ``receive`` for
    ``http.disconnect`` whatever the server's ASGI version.
    """

    media_type = "text/event-stream"

    def __init__(self, frames: AsyncGenerator[bytes, None]) -> None:
        self._frames = frames
        self.status_code = 200
        self.background = None
        self.init_headers(
            {
                "Cache-Control": "no-cache",
                # nginx buffers proxied responses unless told not to.
                "X-Accel-Buffering": "no",
            }
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") == "HEAD":
            # Headers only: a stream held open for a HEAD would tie up the
            # connection of the health check or proxy that sent it.
            await self._frames.aclose()
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        writer = asyncio.ensure_future(self._write(send))
        watcher = asyncio.ensure_future(self._wait_for_disconnect(receive))
        try:
            await asyncio.wait({writer, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (writer, watcher):
                task.cancel()
            results = await asyncio.gather(writer, watcher, return_exceptions=True)
        error = results[0]
        if isinstance(error, Exception) and not isinstance(error, OSError):
            raise error

    async def _write(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        try:
            async for frame in self._frames:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
        finally:
            await self._frames.aclose()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _wait_for_disconnect(receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
