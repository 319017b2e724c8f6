"""The run viewer in real headless Chromium: a page opened mid-run shows every event
exactly once, in order, across reconnects forced by the server.

Needs Debian's ``chromium`` at /usr/bin/chromium and the ``playwright`` package (its
own browser downloads are never used). Without them the test skips, unless
``EVENTSTORE_REQUIRE_BROWSER=1``, where it fails.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Coroutine, Iterator, MutableMapping
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn

import eventstore as es
from eventstore.backend import format_time
from eventstore.serve import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path("/tmp/viewer.png")
# Bounds on waiting for the page, so a broken stream fails instead of hanging.
WAIT_MS = 15_000
EVENTS_PER_RESPONSE = 4

T = TypeVar("T")


def _require_browser() -> None:
    reasons = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reasons.append("the playwright package is not installed (pip install playwright)")
    if not os.access(CHROMIUM, os.X_OK):
        reasons.append(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    if reasons:
        message = "; ".join(reasons)
        if os.environ.get("EVENTSTORE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"EVENTSTORE_REQUIRE_BROWSER=1 but {message}")
        pytest.skip(message)


class StreamRecorder:
    """ASGI wrapper noting the ``Last-Event-ID`` of every stream request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last_event_ids: list[str] = []

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/stream"):
            headers = dict(scope["headers"])
            self.last_event_ids.append(headers.get(b"last-event-id", b"").decode())
        await self.app(scope, receive, send)


class LiveServer:
    """uvicorn on a free loopback port, on its own event loop in a thread.

    The memory store lives on that loop too; the test appends through :meth:`call`.
    """

    def __init__(self, store: es.EventStore) -> None:
        self.store = store
        self.recorder = StreamRecorder(
            create_app(store, max_events_per_stream=EVENTS_PER_RESPONSE, retry_ms=100)
        )
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        config = uvicorn.Config(
            self.recorder, log_level="warning", lifespan="on", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="viewer-test-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._server.serve(sockets=[self._socket]))

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + WAIT_MS / 1000
        # uvicorn offers a flag, not an event, for "listening".
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(WAIT_MS / 1000)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(WAIT_MS / 1000)
        self._socket.close()


@pytest.fixture
def server() -> Iterator[LiveServer]:
    live = LiveServer(es.open_store("memory://"))
    live.start()
    try:
        yield live
    finally:
        live.stop()


def agent_run(run_id: es.RunId) -> list[es.AgentEvent]:
    """Two model iterations with tool calls (one failing), usage and text deltas."""
    r = run_id
    return [
        es.RunStarted(run_id=r, session_id=es.SessionId.new(), provider="acme", model="m-1"),
        es.ContextBuilt(run_id=r, message_count=3),
        es.ModelStarted(run_id=r, provider="acme", model="m-1", iteration=1),
        es.TextDelta(run_id=r, delta="Let me "),
        es.TextDelta(run_id=r, delta="look that "),
        es.TextDelta(run_id=r, delta="up."),
        es.ToolCallStarted(run_id=r, call_id="c1", tool_name="weather"),
        es.ToolCallDelta(run_id=r, call_id="c1", delta='{"city":'),
        es.ToolCallDelta(run_id=r, call_id="c1", delta='"Oslo"}'),
        es.ToolCallCompleted(
            run_id=r, call=es.ToolCall(id="c1", name="weather", arguments={"city": "Oslo"})
        ),
        es.ToolExecutionStarted(run_id=r, call_id="c1", tool_name="weather"),
        es.ToolExecutionFinished(
            run_id=r,
            call_id="c1",
            tool_name="weather",
            result=es.Success(output={"sky": "clear"}),
            duration_ms=1234,
        ),
        es.ToolCallStarted(run_id=r, call_id="c2", tool_name="calendar"),
        es.ToolCallCompleted(run_id=r, call=es.ToolCall(id="c2", name="calendar", arguments={})),
        es.ToolExecutionStarted(run_id=r, call_id="c2", tool_name="calendar"),
        es.ToolExecutionFinished(
            run_id=r,
            call_id="c2",
            tool_name="calendar",
            result=es.Failure(error="timed out"),
            duration_ms=5000,
        ),
        es.ToolMessageCommitted(run_id=r, message_id=es.EventId.new()),
        es.UsageRecorded(
            run_id=r, usage=es.TokenUsage(input_tokens=100, output_tokens=20, total_tokens=120)
        ),
        es.ModelStarted(run_id=r, provider="acme", model="m-1", iteration=2),
        es.TextDelta(run_id=r, delta="It is "),
        es.TextDelta(run_id=r, delta="clear in Oslo "),
        # Markup in event data must show as text, never as HTML.
        es.TextDelta(run_id=r, delta="<b>today</b>."),
        es.AssistantMessageCommitted(run_id=r, message_id=es.EventId.new()),
        es.UsageRecorded(
            run_id=r, usage=es.TokenUsage(input_tokens=150, output_tokens=30, total_tokens=180)
        ),
        es.RunCompleted(run_id=r, finish_reason=es.FinishReason.STOP, iterations=2),
    ]


def test_page_opened_mid_run_shows_every_event_once_in_order_across_reconnects(
    server: LiveServer,
) -> None:
    _require_browser()
    from playwright.sync_api import sync_playwright

    run_id = es.RunId.new()
    events = agent_run(run_id)
    opened_at = 5
    for event in events[:opened_at]:
        server.call(server.store.append(event))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{server.url}/#run={run_id}")

            def shown(count: int) -> None:
                page.wait_for_function(
                    "n => Number(document.getElementById('timeline').dataset.count) >= n",
                    arg=count,
                    timeout=WAIT_MS,
                )

            shown(opened_at)
            # The rest arrives while the page watches: alternately one event that
            # the page must show live, and a burst of two that may land while the
            # EventSource is reconnecting (the server ends each response after
            # EVENTS_PER_RESPONSE events).
            seq = opened_at
            rest = events[opened_at:]
            while rest:
                burst, rest = rest[: 1 + seq % 2], rest[1 + seq % 2 :]
                for event in burst:
                    server.call(server.store.append(event))
                seq += len(burst)
                shown(seq)
            page.wait_for_selector("#connection[data-state='ended']", timeout=WAIT_MS)

            seqs = page.eval_on_selector_all("#timeline li", "rows => rows.map(r => r.dataset.seq)")
            assert seqs == [str(n) for n in range(1, len(events) + 1)]
            assert page.get_attribute("#timeline", "data-anomalies") == "0"
            types = page.eval_on_selector_all(
                "#timeline li", "rows => rows.map(r => r.dataset.type)"
            )
            assert types == [event.event_type for event in events]
            # Each row's time of day with every digit the server sent (up to nine).
            stored = server.call(server.store.list_after(run_id, 0))
            times = page.eval_on_selector_all(
                "#timeline li .time", "cells => cells.map(c => c.textContent)"
            )
            assert times == [format_time(e.emitted_at)[11:-1] for e in stored]

            messages = page.eval_on_selector_all(
                "#assistant-text .message", "nodes => nodes.map(n => n.textContent)"
            )
            assert messages == ["Let me look that up.", "It is clear in Oslo <b>today</b>."]
            assert page.locator("#assistant-text b").count() == 0

            c1 = page.locator("#tool-rows tr[data-call-id='c1']")
            assert c1.get_attribute("data-status") == "ok"
            assert c1.get_attribute("data-duration-ms") == "1234"
            assert c1.locator(".duration").text_content() == "1234 ms"
            c2 = page.locator("#tool-rows tr[data-call-id='c2']")
            assert c2.get_attribute("data-status") == "failed"
            assert "timed out" in (c2.locator(".result").text_content() or "")

            usage = page.locator("#usage")
            assert usage.get_attribute("data-input-tokens") == "250"
            assert usage.get_attribute("data-output-tokens") == "50"
            assert usage.get_attribute("data-total-tokens") == "300"
            assert usage.get_attribute("data-calls") == "2"

            status = page.locator("#run-status")
            assert status.get_attribute("data-status") == "completed"
            assert status.text_content() == "completed (stop)"

            # Each response ended after EVENTS_PER_RESPONSE events and the browser
            # reconnected with the last seq it had as Last-Event-ID; the rows above
            # show the server resumed exactly there.
            step = EVENTS_PER_RESPONSE
            expected_resumes = ["", *(str(s) for s in range(step, len(events), step))]
            assert server.recorder.last_event_ids == expected_resumes
            assert page.get_attribute("#connection", "data-opens") == str(len(expected_resumes))

            page.click("#refresh-runs")
            page.wait_for_selector(f"#runs a[data-run-id='{run_id}'].selected", timeout=WAIT_MS)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()


def _run_id_at(ms: int, serial: int) -> es.RunId:
    """A UUIDv7 run id created at ``ms`` (milliseconds since the epoch)."""
    value = (ms << 80) | (0x7 << 76) | (serial & 0xFFF) << 64 | (0b10 << 62) | serial
    return es.RunId(int=value)


def test_run_list_shows_the_newest_runs_of_a_large_store(server: LiveServer) -> None:
    # More runs than the page lists: it must show the newest, not stop at the oldest.
    _require_browser()
    from playwright.sync_api import sync_playwright

    now_ms = int(time.time() * 1000)
    total, span_ms = 6000, 40 * 24 * 3600 * 1000
    runs = [_run_id_at(now_ms - span_ms + i * span_ms // total, i) for i in range(total)]

    async def fill() -> None:
        for run_id in runs:
            await server.store.append(es.TextDelta(run_id=run_id, delta="x"))

    server.call(fill())
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.goto(server.url)
            page.wait_for_selector(f"#runs a[data-run-id='{runs[-1]}']", timeout=WAIT_MS)
            listed = page.eval_on_selector_all(
                "#runs a[data-run-id]", "links => links.map(a => a.dataset.runId)"
            )
            # Newest first, a contiguous recent stretch of the runs.
            assert listed[0] == str(runs[-1])
            assert listed == [str(r) for r in reversed(runs[-len(listed) :])]
        finally:
            browser.close()
