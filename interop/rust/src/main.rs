//! `serde-roundtrip event|envelope`: reads JSON lines on stdin and, for each one,
//! writes one line on stdout: the value deserialized into behest's `AgentEvent` (or
//! `RuntimeEventEnvelope`) and serialized again by `serde_json::to_string`, or
//! `ERR: <serde's error message>` when serde refuses the line.
//!
//! The types below carry exactly the fields, field order and serde attributes of the
//! Rust runtime's event model (behest up to 0.5.9, with `CacheMetrics` and the three
//! optional cache fields of `TokenUsage`), as listed in the project's reference notes:
//! no serde attributes on `AgentEvent` or its payload structs (externally tagged,
//! fields in declaration order, `None` written as `null`), `ProviderId` and
//! `ModelName` transparent strings, ids `uuid::Uuid`, times `chrono::DateTime<Utc>`,
//! `usize` as `u64` (64-bit targets).

use std::io::{self, BufRead, BufWriter, Write};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

type RunId = Uuid;
type SessionId = Uuid;
type MessageId = Uuid;
type RuntimeEventId = Uuid;
/// `#[serde(transparent)]` newtypes over `String` in behest: the same JSON as a `String`.
type ProviderId = String;
type ModelName = String;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToolExecutionResult {
    Success { output: serde_json::Value },
    Failure { error: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
    pub cache_creation_input_tokens: Option<u64>,
    pub cache_read_input_tokens: Option<u64>,
    pub cached_input_tokens: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FinishReason {
    Stop,
    ToolCalls,
    Length,
    ContentFilter,
    Error,
    Unknown(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum AgentEvent {
    RunStarted {
        run_id: RunId,
        session_id: SessionId,
        provider: ProviderId,
        model: ModelName,
        timestamp: DateTime<Utc>,
    },
    ContextBuilt {
        run_id: RunId,
        message_count: u64,
        timestamp: DateTime<Utc>,
    },
    ModelStarted {
        run_id: RunId,
        provider: ProviderId,
        model: ModelName,
        iteration: u64,
        timestamp: DateTime<Utc>,
    },
    TextDelta {
        run_id: RunId,
        delta: String,
        timestamp: DateTime<Utc>,
    },
    ToolCallStarted {
        run_id: RunId,
        call_id: String,
        tool_name: String,
        timestamp: DateTime<Utc>,
    },
    ToolCallDelta {
        run_id: RunId,
        call_id: String,
        delta: String,
        timestamp: DateTime<Utc>,
    },
    ToolCallCompleted {
        run_id: RunId,
        call: ToolCall,
        timestamp: DateTime<Utc>,
    },
    ToolExecutionStarted {
        run_id: RunId,
        call_id: String,
        tool_name: String,
        timestamp: DateTime<Utc>,
    },
    ToolExecutionFinished {
        run_id: RunId,
        call_id: String,
        tool_name: String,
        result: ToolExecutionResult,
        duration_ms: u64,
        timestamp: DateTime<Utc>,
    },
    AssistantMessageCommitted {
        run_id: RunId,
        message_id: MessageId,
        timestamp: DateTime<Utc>,
    },
    ToolMessageCommitted {
        run_id: RunId,
        message_id: MessageId,
        timestamp: DateTime<Utc>,
    },
    UsageRecorded {
        run_id: RunId,
        usage: TokenUsage,
        timestamp: DateTime<Utc>,
    },
    CacheMetrics {
        run_id: RunId,
        cache_creation_input_tokens: u64,
        cache_read_input_tokens: u64,
        cached_input_tokens: u64,
        timestamp: DateTime<Utc>,
    },
    RunCompleted {
        run_id: RunId,
        finish_reason: FinishReason,
        iterations: u64,
        timestamp: DateTime<Utc>,
    },
    RunFailed {
        run_id: RunId,
        error: String,
        timestamp: DateTime<Utc>,
    },
    RunCancelled {
        run_id: RunId,
        timestamp: DateTime<Utc>,
    },
    DoomLoopDetected {
        run_id: RunId,
        description: String,
        timestamp: DateTime<Utc>,
    },
    CompactionCircuitOpened {
        run_id: RunId,
        consecutive_failures: u32,
        timestamp: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeEventEnvelope {
    pub event_id: RuntimeEventId,
    pub seq: u64,
    pub run_id: RunId,
    pub session_id: Option<SessionId>,
    pub event: AgentEvent,
    pub emitted_at: DateTime<Utc>,
}

fn roundtrip<T>(line: &str) -> String
where
    T: Serialize + for<'de> Deserialize<'de>,
{
    match serde_json::from_str::<T>(line) {
        Ok(value) => match serde_json::to_string(&value) {
            Ok(text) => text,
            Err(error) => format!("ERR: {error}"),
        },
        Err(error) => format!("ERR: {error}"),
    }
}

fn main() {
    let kind = std::env::args().nth(1).unwrap_or_default();
    let convert: fn(&str) -> String = match kind.as_str() {
        "event" => roundtrip::<AgentEvent>,
        "envelope" => roundtrip::<RuntimeEventEnvelope>,
        _ => {
            eprintln!("usage: serde-roundtrip event|envelope  (JSON lines on stdin)");
            std::process::exit(2);
        }
    };
    let stdin = io::stdin();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    // Lines are split on "\n" only: a JSON text never holds a raw newline, and a
    // lone "\r" (or U+2028) inside a line is the line's own business.
    for line in stdin.lock().split(b'\n') {
        let line = line.expect("reading stdin");
        let reply = match std::str::from_utf8(&line) {
            Ok(text) => convert(text),
            Err(error) => format!("ERR: {error}"),
        };
        writeln!(out, "{reply}").expect("writing stdout");
    }
    out.flush().expect("writing stdout");
}
