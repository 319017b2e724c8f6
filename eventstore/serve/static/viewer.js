// The run viewer: lists the store's runs and follows one live over Server-Sent
// Events. Everything is drawn with textContent (event data is never parsed as
// HTML). Rows are rendered as received, without dropping repeats, so a server that
// repeated or skipped an event would show it (rows get data-anomaly) instead of
// hiding it.
"use strict";

const $ = (id) => document.getElementById(id);

const view = {
  source: null,
  runId: null,
  lastSeq: 0,
  message: null,
  tools: new Map(),
  usage: { input: 0, output: 0, total: 0, calls: 0 },
};

function element(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text) node.textContent = text;
  return node;
}

// A server-side failure's message is generic; its request id finds the detail in
// the server's log.
function problemText(body, status) {
  const text = (body && body.error) || `HTTP ${status}`;
  return body && body.request_id ? `${text} (request ${body.request_id})` : text;
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

// Times arrive as chrono writes them: UTC, "Z", 0, 3, 6 or 9 fraction digits
// ("2026-01-01T12:00:00.123456789Z"). The time of day is shown with exactly the
// digits received; a JavaScript Date holds milliseconds only, so it is used just
// for the runs list's local date and time (to the second).
const RFC3339 = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function timeOf(iso) {
  const match = typeof iso === "string" ? RFC3339.exec(iso) : null;
  if (!match) return "";
  const [, , clock, fraction = "", zone] = match;
  return zone === "Z" || zone === "z" ? clock + fraction : `${clock}${fraction}${zone}`;
}

function dateOf(iso) {
  const match = typeof iso === "string" ? RFC3339.exec(iso) : null;
  if (!match) return null;
  const [, day, clock, fraction = "", zone] = match;
  // At most 3 fraction digits: what Date.parse is specified to read.
  const date = new Date(`${day}T${clock}${fraction.slice(0, 4)}${zone.toUpperCase()}`);
  return Number.isNaN(date.getTime()) ? null : date;
}

function shorten(value, max = 160) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

// ---------------------------------------------------------------- runs list

async function fetchJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json();
  if (!response.ok) throw new Error(problemText(body, response.status));
  return body;
}

const RUNS_PAGE = 500;
const RUNS_SHOWN = 5000;
const HOUR_MS = 3600 * 1000;
// Windows tried, smallest first, when the store holds more runs than are shown.
const RUN_WINDOWS_MS = [HOUR_MS, 24 * HOUR_MS, 7 * 24 * HOUR_MS, 30 * 24 * HOUR_MS, 365 * 24 * HOUR_MS];

// The lowest run id created at `ms` or later: run ids are UUIDv7, whose first 48 bits
// are the creation time in milliseconds, and /runs orders by id.
function runIdAt(ms) {
  const hex = Math.max(0, Math.floor(ms)).toString(16).padStart(12, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-0000-0000-000000000000`;
}

// Up to RUNS_SHOWN runs with an id after `after`, in id order; `complete` when no
// more follow.
async function listRuns(after) {
  const runs = [];
  while (runs.length < RUNS_SHOWN) {
    const batch = await fetchJson(`runs?limit=${RUNS_PAGE}${after ? `&after=${after}` : ""}`);
    runs.push(...batch);
    if (batch.length < RUNS_PAGE) return { runs, complete: true };
    after = batch[batch.length - 1].run_id;
  }
  return { runs, complete: false };
}

// The newest runs: all of them when they fit, else those of the largest recent
// window that fits, so the list never stops at the oldest few thousand.
async function newestRuns() {
  const all = await listRuns("");
  if (all.complete) return all.runs;
  let best = null;
  for (const span of RUN_WINDOWS_MS) {
    const recent = await listRuns(runIdAt(Date.now() - span));
    // More than RUNS_SHOWN runs even in the last hour: that hour's first ones.
    if (!recent.complete) return (best ?? recent).runs;
    best = recent;
  }
  return best.runs;
}

async function loadRuns() {
  const runs = await newestRuns();
  const list = $("runs");
  list.replaceChildren();
  for (const run of runs.reverse()) {
    const link = element("a", {
      href: `#run=${run.run_id}`,
      class: "run-link",
      "data-run-id": run.run_id,
      "data-last-seq": run.last_seq,
    });
    link.append(element("code", {}, run.run_id));
    const last = dateOf(run.last_emitted_at);
    const when = last ? last.toLocaleString() : "";
    link.append(element("span", { class: "run-meta" }, `${run.last_seq} events · ${when}`));
    if (run.run_id === view.runId) link.classList.add("selected");
    const item = element("li");
    item.append(link);
    list.append(item);
  }
  list.dataset.count = String(runs.length);
  $("runs-empty").hidden = runs.length > 0;
}

function refreshRuns() {
  loadRuns().then(() => showError(""), (error) => showError(`Listing runs failed: ${error.message}`));
}

// ---------------------------------------------------------------- one run

function setStatus(status, text) {
  const badge = $("run-status");
  badge.dataset.status = status;
  badge.textContent = text || status;
}

function setConnection(state) {
  const badge = $("connection");
  badge.dataset.state = state;
  badge.textContent = state;
}

function resetRun(runId) {
  view.runId = runId;
  view.lastSeq = 0;
  view.message = null;
  view.tools = new Map();
  view.usage = { input: 0, output: 0, total: 0, calls: 0 };
  $("run").dataset.runId = runId;
  $("run-id").textContent = runId;
  $("session-id").textContent = "–";
  $("model").textContent = "–";
  $("event-count").textContent = "0";
  $("assistant-text").replaceChildren();
  $("tool-rows").replaceChildren();
  const timeline = $("timeline");
  timeline.replaceChildren();
  timeline.dataset.count = "0";
  timeline.dataset.anomalies = "0";
  $("connection").dataset.opens = "0";
  renderUsage();
  setStatus("waiting");
  for (const link of document.querySelectorAll(".run-link")) {
    link.classList.toggle("selected", link.dataset.runId === runId);
  }
}

function renderUsage() {
  const usage = view.usage;
  const table = $("usage");
  table.dataset.inputTokens = String(usage.input);
  table.dataset.outputTokens = String(usage.output);
  table.dataset.totalTokens = String(usage.total);
  table.dataset.calls = String(usage.calls);
  $("usage-input").textContent = usage.input.toLocaleString();
  $("usage-output").textContent = usage.output.toLocaleString();
  $("usage-total").textContent = usage.total.toLocaleString();
  $("usage-calls").textContent = String(usage.calls);
}

function currentMessage() {
  if (!view.message) {
    view.message = element("div", { class: "message" });
    $("assistant-text").append(view.message);
  }
  return view.message;
}

function toolRow(callId, toolName) {
  let row = view.tools.get(callId);
  if (!row) {
    row = element("tr", { "data-call-id": callId, "data-status": "requested" });
    row.append(
      element("td", { class: "name" }, toolName || "?"),
      element("td", { class: "args mono" }),
      element("td", { class: "result" }, "requested"),
      element("td", { class: "duration" }, "–"),
    );
    view.tools.set(callId, row);
    $("tool-rows").append(row);
  }
  if (toolName) row.querySelector(".name").textContent = toolName;
  return row;
}

function finishReason(reason) {
  return typeof reason === "string" ? reason : reason && reason.unknown ? reason.unknown : "?";
}

// Updates the panels for one event and returns the timeline row's detail text.
function apply(type, body, envelope) {
  switch (type) {
    case "RunStarted":
      setStatus("running");
      $("session-id").textContent = body.session_id;
      $("model").textContent = `${body.provider} / ${body.model}`;
      return `${body.provider} / ${body.model}`;
    case "ContextBuilt":
      return `${body.message_count} messages`;
    case "ModelStarted":
      view.message = null;
      return `iteration ${body.iteration} · ${body.provider} / ${body.model}`;
    case "TextDelta":
      currentMessage().textContent += body.delta;
      return JSON.stringify(body.delta);
    case "ToolCallStarted":
      toolRow(body.call_id, body.tool_name);
      return `${body.tool_name} (${body.call_id})`;
    case "ToolCallDelta": {
      const args = toolRow(body.call_id).querySelector(".args");
      args.textContent += body.delta;
      return shorten(body.delta);
    }
    case "ToolCallCompleted": {
      const row = toolRow(body.call.id, body.call.name);
      row.querySelector(".args").textContent = shorten(body.call.arguments, 400);
      return `${body.call.name}(${shorten(body.call.arguments)})`;
    }
    case "ToolExecutionStarted": {
      const row = toolRow(body.call_id, body.tool_name);
      row.dataset.status = "running";
      row.querySelector(".result").textContent = "running…";
      return `${body.tool_name} (${body.call_id})`;
    }
    case "ToolExecutionFinished": {
      const row = toolRow(body.call_id, body.tool_name);
      const failed = "Failure" in body.result;
      const outcome = failed ? body.result.Failure.error : shorten(body.result.Success.output);
      row.dataset.status = failed ? "failed" : "ok";
      row.dataset.durationMs = String(body.duration_ms);
      row.querySelector(".result").textContent = failed ? `failed: ${outcome}` : outcome;
      row.querySelector(".duration").textContent = `${body.duration_ms} ms`;
      return `${body.tool_name} ${failed ? "failed" : "ok"} in ${body.duration_ms} ms`;
    }
    case "AssistantMessageCommitted":
    case "ToolMessageCommitted":
      return `message ${body.message_id}`;
    case "UsageRecorded":
      view.usage.input += body.usage.input_tokens;
      view.usage.output += body.usage.output_tokens;
      view.usage.total += body.usage.total_tokens;
      view.usage.calls += 1;
      renderUsage();
      return `in ${body.usage.input_tokens} · out ${body.usage.output_tokens} · total ${body.usage.total_tokens}`;
    case "CacheMetrics":
      return `cache read ${body.cache_read_input_tokens} · created ${body.cache_creation_input_tokens}`;
    case "RunCompleted":
      setStatus("completed", `completed (${finishReason(body.finish_reason)})`);
      return `${finishReason(body.finish_reason)} after ${body.iterations} iterations`;
    case "RunFailed":
      setStatus("failed", `failed: ${body.error}`);
      return body.error;
    case "RunCancelled":
      setStatus("cancelled");
      return "cancelled";
    case "DoomLoopDetected":
      return body.description;
    case "CompactionCircuitOpened":
      return `${body.consecutive_failures} consecutive compaction failures`;
    default:
      return shorten(body, 200);
  }
}

const TERMINAL = new Set(["RunCompleted", "RunFailed", "RunCancelled"]);

function onEnvelope(message) {
  const envelope = JSON.parse(message.data);
  const [type, body] = Object.entries(envelope.event)[0];
  const timeline = $("timeline");
  const row = element("li", { "data-seq": envelope.seq, "data-type": type });
  if (envelope.seq !== view.lastSeq + 1) {
    row.dataset.anomaly = envelope.seq <= view.lastSeq ? "repeat" : "gap";
    timeline.dataset.anomalies = String(Number(timeline.dataset.anomalies) + 1);
  }
  view.lastSeq = Math.max(view.lastSeq, envelope.seq);
  let detail;
  try {
    detail = apply(type, body, envelope);
  } catch (error) {
    detail = `(could not display: ${error.message})`;
  }
  if (TERMINAL.has(type)) row.dataset.terminal = "true";
  row.append(
    element("span", { class: "seq" }, String(envelope.seq)),
    element("span", { class: "time", title: envelope.emitted_at ?? "" }, timeOf(envelope.emitted_at)),
    element("span", { class: "type" }, type),
    element("span", { class: "detail" }, detail),
  );
  const follow = timeline.scrollTop + timeline.clientHeight >= timeline.scrollHeight - 4;
  timeline.append(row);
  if (follow) timeline.scrollTop = timeline.scrollHeight;
  timeline.dataset.count = String(timeline.children.length);
  $("event-count").textContent = timeline.dataset.count;
}

// How long the page waits before reopening a stream the browser gave up on.
const REOPEN_MS = 5000;

function follow(runId) {
  if (view.source) view.source.close();
  resetRun(runId);
  $("run").hidden = false;
  $("placeholder").hidden = true;
  connect(runId, 0);
}

function connect(runId, afterSeq) {
  setConnection("connecting");
  // EventSource reconnects by itself when the response ends or the network drops,
  // sending the last id (the last seq) as Last-Event-ID; the server resumes there.
  const query = afterSeq > 0 ? `?after_seq=${afterSeq}` : "";
  const source = new EventSource(`runs/${encodeURIComponent(runId)}/stream${query}`);
  view.source = source;
  source.addEventListener("open", () => {
    const badge = $("connection");
    badge.dataset.opens = String(Number(badge.dataset.opens) + 1);
    setConnection("open");
  });
  source.addEventListener("envelope", onEnvelope);
  source.addEventListener("end", () => {
    source.close();
    setConnection("ended");
  });
  source.addEventListener("failure", (message) => {
    const problem = JSON.parse(message.data);
    showError(`Stream failed: ${problemText(problem, problem.status)}`);
    // Only an unavailable backend is worth retrying; anything else would fail again.
    if (problem.status !== 503) {
      source.close();
      setConnection("error");
    }
  });
  source.addEventListener("error", () => {
    if (source !== view.source) return;
    if (source.readyState !== EventSource.CLOSED) {
      setConnection("reconnecting");
      return;
    }
    // The browser gives up on an HTTP error (e.g. 503 while the backend is down);
    // try again later from the last seq shown, unless the user moved on.
    if ($("connection").dataset.state === "error") return;
    setConnection("reconnecting");
    setTimeout(() => {
      if (view.source === source && view.runId === runId) connect(runId, view.lastSeq);
    }, REOPEN_MS);
  });
}

function route() {
  const match = /^#run=([0-9a-fA-F-]{36})$/.exec(window.location.hash);
  const runId = match ? match[1].toLowerCase() : null;
  if (runId && runId !== view.runId) follow(runId);
}

window.addEventListener("hashchange", route);
$("refresh-runs").addEventListener("click", refreshRuns);
refreshRuns();
// New runs appear without a reload; the list is cheap to fetch.
setInterval(refreshRuns, 10000);
route();
