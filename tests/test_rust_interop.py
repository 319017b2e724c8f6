"""Python writes and reads events exactly as serde does, checked against real serde (issue 12).

``interop/rust`` is a small Rust program with the Rust runtime's event types (behest's
``AgentEvent`` and ``RuntimeEventEnvelope``, field for field) that reads JSON lines
and writes each back with ``serde_json::to_string``, or ``ERR: <serde's message>``
when serde refuses the line. A session fixture builds it offline from Debian's
packaged crates; without cargo or those crates the tests that need it are skipped
with the reason, or fail when ``EVENTSTORE_REQUIRE_RUST=1`` (CI).

- The Rust types are checked first: the serde vectors in ``tests/data/serde`` (lines
  serde wrote) go through the program unchanged.
- Python reads every vector line and writes the same bytes back (no Rust needed).
- Generated events of every variant, and envelopes around them, are written by
  Python and must come back from serde byte for byte; Python reads serde's line
  back to the same bytes.
- Boundary values (integer limits, extreme and nanosecond times, awkward floats
  and strings) are written identically, inputs serde normalises are normalised the
  same way by Python, and values serde refuses Python refuses too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, NoReturn, cast

import pytest
from eventstore_contract import PROFILES, strategies
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from whenever import Instant

import eventstore as es
import eventstore.backend as es_backend
import eventstore.events as es_events

ROOT: Final = Path(__file__).resolve().parent.parent
CRATE: Final = ROOT / "interop" / "rust"
TARGET: Final = CRATE / "target"
BINARY: Final = TARGET / "release" / "serde-roundtrip"
DATA: Final = Path(__file__).parent / "data"
SERDE: Final = DATA / "serde"
#: Where Debian's librust-*-dev packages put the crates (.cargo/config.toml points there).
REGISTRY: Final = Path("/usr/share/cargo/registry")
CRATES: Final = ("serde", "serde_derive", "serde_json", "chrono", "uuid")
APT_PACKAGES: Final = (
    "librust-serde-json-dev librust-chrono-dev librust-uuid-dev librust-serde-derive-dev"
)
REQUIRE_ENV: Final = "EVENTSTORE_REQUIRE_RUST"
PROFILE_ENV: Final = "EVENTSTORE_HYPOTHESIS_PROFILE"
BUILD_TIMEOUT: Final = 600.0
RUN_TIMEOUT: Final = 120.0

U64_MAX: Final = 2**64 - 1
U32_MAX: Final = 2**32 - 1

Kind = Literal["event", "envelope"]


def _lines(name: str) -> list[str]:
    return (SERDE / name).read_text(encoding="utf-8").split("\n")[:-1]


EVENT_VECTORS: Final = _lines("events.jsonl") + _lines("timestamps.jsonl")
ENVELOPE_VECTORS: Final = _lines("envelopes.jsonl")
#: The vector file's one refusal: serde's answer to the unknown-variant envelope (the
#: hand-written vector one folder up, as compact JSON), not an envelope.
REFUSAL_PREFIX: Final = "ERR: "
UNKNOWN_VARIANT_ENVELOPE: Final = json.dumps(
    json.loads((DATA / "unknown_variant_envelope.json").read_text(encoding="utf-8")),
    separators=(",", ":"),
    ensure_ascii=False,
)


# --- the Rust program -------------------------------------------------------------


@dataclass(frozen=True)
class SerdeRoundTrip:
    """The built ``serde-roundtrip`` binary: one process per batch of lines."""

    binary: Path

    def run(self, kind: Kind, lines: Sequence[str]) -> list[str]:
        """Serde's line for each of ``lines``: the value written again, or ``ERR: ...``."""
        assert all("\n" not in line for line in lines), "a JSON line holds no raw newline"
        done = subprocess.run(
            [str(self.binary), kind],
            input="".join(f"{line}\n" for line in lines).encode(),
            capture_output=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"serde-roundtrip exited {done.returncode}: {done.stderr.decode()}")
        # Bytes split on "\n" only: serde writes U+2028 and friends raw, which
        # str.splitlines() and text-mode pipes would treat as line ends.
        replies = done.stdout.decode("utf-8").split("\n")
        assert replies[-1] == "", "output ends with a newline"
        assert len(replies) - 1 == len(lines), "one output line per input line"
        return replies[:-1]

    def events(self, lines: Sequence[str]) -> list[str]:
        return self.run("event", lines)

    def envelopes(self, lines: Sequence[str]) -> list[str]:
        return self.run("envelope", lines)


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set)")
    print(f"SKIP Rust interop: {reason}")
    pytest.skip(reason)


def _missing_toolchain() -> str | None:
    if shutil.which("cargo") is None:
        return "cargo is not on PATH: the Rust interop tests need a Rust toolchain"
    missing = [name for name in CRATES if not any(REGISTRY.glob(f"{name}-[0-9]*"))]
    if missing:
        return (
            f"Debian's Rust crates are not installed ({REGISTRY} lacks "
            f"{', '.join(missing)}): apt-get install -y {APT_PACKAGES}"
        )
    return None


@pytest.fixture(scope="session")
def serde() -> SerdeRoundTrip:
    """Build interop/rust offline (incrementally: target/ stays under interop/rust)."""
    reason = _missing_toolchain()
    if reason is not None:
        _unavailable(reason)
    env = {**os.environ, "CARGO_TARGET_DIR": str(TARGET), "CARGO_TERM_COLOR": "never"}
    try:
        done = subprocess.run(
            ["cargo", "build", "--offline", "--release"],
            cwd=CRATE,
            env=env,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"cargo build did not finish in {BUILD_TIMEOUT:.0f} s: {exc.stderr!r}")
    if done.returncode != 0 or not BINARY.exists():
        pytest.fail(f"cargo build --offline --release failed in {CRATE}:\n{done.stderr}")
    return SerdeRoundTrip(BINARY)


# --- comparing lines --------------------------------------------------------------


def _first_difference(expected: str, got: str) -> str:
    index = next(
        (i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b),
        min(len(expected), len(got)),
    )
    start = max(0, index - 40)
    return (
        f"first difference at character {index}:\n"
        f"  serde: ...{expected[start : index + 40]!r}\n"
        f"  got:   ...{got[start : index + 40]!r}"
    )


def _assert_same_lines(
    expected: Sequence[str], got: Sequence[str], what: str, inputs: Sequence[str]
) -> None:
    """``got[i] == expected[i]`` (serde's bytes) for every line, else the first differences."""
    problems = [
        f"{what} #{i}: {_first_difference(e, g)}\n  input: {line!r}"
        for i, (e, g, line) in enumerate(zip(expected, got, inputs, strict=True))
        if e != g
    ]
    assert not problems, f"{len(problems)} of {len(inputs)} differ; " + "\n".join(problems[:5])


def _python_event(line: str) -> str:
    return es_events.encode_event(es_events.decode_event(line))


def _python_envelope(line: str) -> str:
    return es_backend.encode_envelope(es_backend.decode_envelope(line))


# --- a. the Rust types against the serde vectors ----------------------------------


def test_rust_writes_the_serde_event_vectors_unchanged(serde: SerdeRoundTrip) -> None:
    rust = serde.events(EVENT_VECTORS)
    _assert_same_lines(EVENT_VECTORS, rust, "event vector (rust)", EVENT_VECTORS)


def test_rust_writes_the_serde_envelope_vectors_unchanged(serde: SerdeRoundTrip) -> None:
    refusals = [line for line in ENVELOPE_VECTORS if line.startswith(REFUSAL_PREFIX)]
    assert len(refusals) == 1
    inputs = [
        UNKNOWN_VARIANT_ENVELOPE if line.startswith(REFUSAL_PREFIX) else line
        for line in ENVELOPE_VECTORS
    ]
    rust = serde.envelopes(inputs)
    _assert_same_lines(ENVELOPE_VECTORS, rust, "envelope vector (rust)", inputs)


# --- b. Python against the serde vectors (no Rust needed) -------------------------


def _vector_id(line: str) -> str:
    value: dict[str, Any] = json.loads(line)
    return str(next(iter(value.get("event", value))))


@pytest.mark.parametrize("line", EVENT_VECTORS, ids=_vector_id)
def test_python_writes_the_serde_event_vectors_back_unchanged(line: str) -> None:
    _assert_same_lines([line], [_python_event(line)], "event vector (python)", [line])


@pytest.mark.parametrize(
    "line", [v for v in ENVELOPE_VECTORS if not v.startswith(REFUSAL_PREFIX)], ids=_vector_id
)
def test_python_writes_the_serde_envelope_vectors_back_unchanged(line: str) -> None:
    _assert_same_lines([line], [_python_envelope(line)], "envelope vector (python)", [line])


# --- c. generated events and envelopes --------------------------------------------

# The project's hypothesis profile (EVENTSTORE_HYPOTHESIS_PROFILE; "ci" under CI, else
# "quick"): 10 batches per test on a developer machine, 40 in CI, 400 when thorough.
_PROFILE: Final = os.environ.get(PROFILE_ENV) or ("ci" if os.environ.get("CI") else "quick")
_GENERATED: Final = settings(
    PROFILES.get(_PROFILE, PROFILES["quick"]),
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _variant_strategy(variant: type[BaseModel]) -> st.SearchStrategy[es.AgentEvent]:
    # strategies names each variant's strategy after the class: RunStarted -> run_started.
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", variant.__name__).lower()
    return cast("st.SearchStrategy[es.AgentEvent]", getattr(strategies, name)())


def _check_python_events(serde: SerdeRoundTrip, events: Sequence[es.AgentEvent]) -> None:
    written = [es_events.encode_event(event) for event in events]
    rust = serde.events(written)
    _assert_same_lines(rust, written, "python-written event", written)
    _assert_same_lines(rust, [_python_event(line) for line in rust], "serde line reread", rust)


@pytest.mark.parametrize("variant", es_events.EVENT_TYPES, ids=lambda cls: cls.__name__)
@_GENERATED
@given(data=st.data())
def test_generated_events_are_written_as_serde_writes_them(
    serde: SerdeRoundTrip, variant: type[BaseModel], data: st.DataObject
) -> None:
    events = data.draw(st.lists(_variant_strategy(variant), min_size=1, max_size=20))
    _check_python_events(serde, events)


_SEQS: Final = (1, 2, 2**32, es_backend.MAX_SEQ, U64_MAX)
_SESSION: Final = es.SessionId.parse("6f1c2b9e-8d7a-4c3b-a5e4-1f2e3d4c5b6a")


@_GENERATED
@given(
    items=st.lists(
        st.tuples(strategies.events(include_unknown=False), strategies.timestamps()),
        min_size=1,
        max_size=30,
    )
)
def test_generated_envelopes_are_written_as_serde_writes_them(
    serde: SerdeRoundTrip, items: list[tuple[es.AgentEvent, Instant]]
) -> None:
    envelopes = [
        es.EventEnvelope(
            event_id=es.EventId.parse(f"0191d2a4-8000-7abc-8def-{i:012x}"),
            seq=_SEQS[i % len(_SEQS)],
            run_id=event.run_id,
            session_id=_SESSION if i % 2 else None,
            event=event,
            emitted_at=emitted_at,
        )
        for i, (event, emitted_at) in enumerate(items)
    ]
    written = [es_backend.encode_envelope(envelope) for envelope in envelopes]
    rust = serde.envelopes(written)
    _assert_same_lines(rust, written, "python-written envelope", written)
    _assert_same_lines(rust, [_python_envelope(line) for line in rust], "serde line reread", rust)


# --- d. boundary values -----------------------------------------------------------

RUN: Final = "0191d2a4-6c3e-4b8a-9f10-2d4c8e7a1b23"
TIME: Final = "2026-11-26T10:15:30.123456789Z"


def _event(variant: str, fields: str = "", timestamp: str = TIME, run_id: str = RUN) -> str:
    """An event line in serde's form: ``fields`` go between run_id and timestamp."""
    middle = f",{fields}" if fields else ""
    return f'{{"{variant}":{{"run_id":"{run_id}"{middle},"timestamp":"{timestamp}"}}}}'


def _arguments(value: str) -> str:
    return _event("ToolCallCompleted", f'"call":{{"id":"c","name":"n","arguments":{value}}}')


def _text(json_string: str) -> str:
    return _event("TextDelta", f'"delta":"{json_string}"')


def _usage(*counts: int | None) -> str:
    names = ("input", "output", "total", "cache_creation_input", "cache_read_input", "cached_input")
    usage = ",".join(
        f'"{name}_tokens":{"null" if count is None else count}'
        for name, count in zip(names, counts, strict=True)
    )
    return _event("UsageRecorded", f'"usage":{{{usage}}}')


def _envelope(
    *,
    seq: int | str = 1,
    session_id: str | None = None,
    event: str = _event("RunCancelled"),
    emitted_at: str = TIME,
    event_id: str = "0191d2a4-8000-7abc-8def-0123456789ab",
) -> str:
    session = "null" if session_id is None else f'"{session_id}"'
    return (
        f'{{"event_id":"{event_id}","seq":{seq},"run_id":"{RUN}","session_id":{session},'
        f'"event":{event},"emitted_at":"{emitted_at}"}}'
    )


_FINISHED = '"call_id":"c","tool_name":"t","result":{{"Success":{{"output":0}}}},"duration_ms":{}'

#: Lines in serde's own form (the Rust test proves it) at the edges of every field.
BOUNDARY_EVENTS: Final = [
    # u64 (and usize) fields at 0 and u64::MAX, u32 at u32::MAX.
    _event("ContextBuilt", '"message_count":0'),
    _event("ContextBuilt", f'"message_count":{U64_MAX}'),
    _event("ModelStarted", '"provider":"","model":"m","iteration":0'),
    _event("ModelStarted", f'"provider":"p","model":"m","iteration":{U64_MAX}'),
    _event("ToolExecutionFinished", _FINISHED.format(0)),
    _event("ToolExecutionFinished", _FINISHED.format(U64_MAX)),
    _usage(0, 0, 0, None, None, None),
    _usage(U64_MAX, U64_MAX, U64_MAX, U64_MAX, U64_MAX, U64_MAX),
    _usage(1, 2, 3, 0, None, U64_MAX),
    _event(
        "CacheMetrics",
        f'"cache_creation_input_tokens":0,"cache_read_input_tokens":{U64_MAX},"cached_input_tokens":0',
    ),
    _event("RunCompleted", '"finish_reason":"content_filter","iterations":0'),
    _event("RunCompleted", f'"finish_reason":{{"unknown":"\\u0000😀"}},"iterations":{U64_MAX}'),
    _event("CompactionCircuitOpened", '"consecutive_failures":0'),
    _event("CompactionCircuitOpened", f'"consecutive_failures":{U32_MAX}'),
    # Times: the first and last instants both sides hold; 0, 3, 6 and 9 fraction
    # digits (the fewest that hold the value); around the Unix epoch.
    _event("RunCancelled", timestamp="0001-01-01T00:00:00Z"),
    _event("RunCancelled", timestamp="9999-12-31T23:59:59.999999999Z"),
    _event("RunCancelled", timestamp="2026-11-26T10:15:30Z"),
    _event("RunCancelled", timestamp="2026-11-26T10:15:30.100Z"),
    _event("RunCancelled", timestamp="2026-11-26T10:15:30.999Z"),
    _event("RunCancelled", timestamp="2026-11-26T10:15:30.000100Z"),
    _event("RunCancelled", timestamp="2026-11-26T10:15:30.123400Z"),
    _event("RunCancelled", timestamp="2026-11-26T10:15:30.000000001Z"),
    _event("RunCancelled", timestamp="2026-11-26T10:15:30.100000001Z"),
    _event("RunCancelled", timestamp="1970-01-01T00:00:00Z"),
    _event("RunCancelled", timestamp="1969-12-31T23:59:59.999999999Z"),
    _event("RunCancelled", timestamp="2028-02-29T00:00:00.000001Z"),
    # Floats as serde (ryu) writes them, and the integer edges of a JSON value.
    *(
        _arguments(number)
        for number in (
            "1e16",
            "1e-7",
            "1e-6",
            "0.00001",
            "0.0001",
            "0.1",
            "0.30000000000000004",
            "1.0",
            "0.0",
            "-0.0",
            "1.5",
            "1000000000000000.0",
            "1.2345678901234568e17",
            "1e20",
            "1e21",
            "1e300",
            "-2.5e-300",
            "5e-324",
            "1e-320",
            "2.2250738585072014e-308",
            "1.7976931348623157e308",
            "-1.7976931348623157e308",
            "0",
            "-1",
            "-9223372036854775808",
            "9223372036854775807",
            "18446744073709551615",
        )
    ),
    _arguments('{"z":1e-7,"a":[],"m":{},"":null,"n":[true,false,-0.0,{"x":"y"}]}'),
    _arguments("[]"),
    _arguments('"{\\"raw\\":1}"'),
    # Strings: NUL and the other controls (serde escapes them, \u00XX or short),
    # quotes and backslashes, and characters it writes raw: "/", DEL, non-ASCII,
    # U+2028/U+2029, a BOM, characters beyond the BMP.
    _text("\\u0000"),
    _text("\\u0000\\u0001\\u001f\\b\\f\\n\\r\\t\\u000b\\u001b"),
    _text('\\"\\\\/'),
    _text("\x7f\u0080é\u2028\u2029\ufeff😀𝄞\U0010ffff"),
    _text(""),
    _event(
        "RunStarted",
        '"session_id":"6f1c2b9e-8d7a-4c3b-a5e4-1f2e3d4c5b6a","provider":"😀","model":"\\u0000"',
    ),
    _event("ToolCallStarted", '"call_id":"","tool_name":"\\n"'),
    _event("ToolCallDelta", '"call_id":"c","delta":"{\\"q\\":"'),
    _event("ToolExecutionStarted", '"call_id":"c","tool_name":"t"'),
    _event(
        "ToolExecutionFinished",
        '"call_id":"c","tool_name":"t","result":{"Failure":{"error":"\\u0000"}},"duration_ms":1',
    ),
    _event("AssistantMessageCommitted", '"message_id":"00000000-0000-0000-0000-000000000000"'),
    _event("ToolMessageCommitted", '"message_id":"ffffffff-ffff-ffff-ffff-ffffffffffff"'),
    _event("RunFailed", '"error":"\\r\\n"'),
    _event("DoomLoopDetected", '"description":"é"'),
    _event("RunCancelled", run_id="00000000-0000-0000-0000-000000000000"),
]

BOUNDARY_ENVELOPES: Final = [
    _envelope(seq=1, emitted_at="0001-01-01T00:00:00Z"),
    _envelope(seq=es_backend.MAX_SEQ, emitted_at="9999-12-31T23:59:59.999999999Z"),
    _envelope(seq=U64_MAX, session_id="6f1c2b9e-8d7a-4c3b-a5e4-1f2e3d4c5b6a"),
    _envelope(seq=2, emitted_at="2026-11-26T10:15:30.200Z", event=_arguments("-0.0")),
    _envelope(
        seq=3, emitted_at="2026-11-26T10:15:30Z", event_id="ffffffff-ffff-ffff-ffff-ffffffffffff"
    ),
]

#: Lines serde reads but writes differently (case, escapes, number forms, spacing,
#: field order, offsets, fraction digits): Python must write what serde writes.
NORMALISED_EVENTS: Final = [
    _event("RunCancelled", run_id=RUN.upper()),
    _event("RunCancelled", run_id=RUN.replace("-", "")),
    _text("\\u00e9\\/\\ud83d\\ude00\\u2028\\u007f\\u0041"),
    *(
        _arguments(number)
        for number in (
            "1E5",
            "0.1e1",
            "1e2",
            "1.50",
            "100e-2",
            "0e0",
            "1e-5",
            "123456789012345680.0",
            "-0.0e0",
            "4.9e-324",
        )
    ),
    _arguments(' { "b" : [ 1 , 2 ] , "a" : { } } '),
    f' {{ "RunCancelled" : {{ "run_id" : "{RUN}" , "timestamp" : "{TIME}" }} }} ',
    f'{{"RunCancelled":{{"timestamp":"{TIME}","run_id":"{RUN}"}}}}',
    f'{{"ContextBuilt":{{"message_count":7,"timestamp":"{TIME}","run_id":"{RUN}"}}}}',
    _event("RunCancelled", timestamp="2026-11-26T10:15:30.5Z"),
    _event("RunCancelled", timestamp="2026-11-26T10:15:30.12Z"),
    _event("RunCancelled", timestamp="2026-11-26T10:15:30.1234Z"),
    _event("RunCancelled", timestamp="2026-11-26T10:15:30.000000000Z"),
    _event("RunCancelled", timestamp="2026-11-26T10:15:30.1234567891234Z"),
    _event("RunCancelled", timestamp="2026-11-26T10:15:30+01:00"),
    _event("RunCancelled", timestamp="2026-11-26T10:15:30.5-00:30"),
    _event("RunCancelled", timestamp="2026-01-01T00:30:00+01:00"),
    _event("RunCancelled", timestamp="2026-11-26T10:15:30-00:00"),
    _event("RunCancelled", timestamp="2026-11-26 10:15:30Z"),
    _event("UsageRecorded", '"usage":{"input_tokens":1,"output_tokens":2,"total_tokens":3}'),
    _event(
        "UsageRecorded",
        '"usage":{"cached_input_tokens":5,"input_tokens":1,"output_tokens":2,"total_tokens":3}',
    ),
    _arguments('{"a":1,"a":2}'),
]

#: Lines serde refuses; Python must refuse them too (``ValidationError``).
REFUSED_EVENTS: Final = [
    # Past the Rust integer types, negative, or not integers at all.
    _event("ContextBuilt", f'"message_count":{U64_MAX + 1}'),
    _event("ContextBuilt", '"message_count":-1'),
    _event("ContextBuilt", '"message_count":1.0'),
    _event("ContextBuilt", '"message_count":1e2'),
    _event("ContextBuilt", '"message_count":"3"'),
    _event("ContextBuilt", '"message_count":true'),
    _event("ContextBuilt", '"message_count":null'),
    _event("ModelStarted", f'"provider":"p","model":"m","iteration":{U64_MAX + 1}'),
    _event("ToolExecutionFinished", _FINISHED.format(U64_MAX + 1)),
    _event("ToolExecutionFinished", _FINISHED.format(-1)),
    _usage(U64_MAX + 1, 0, 0, None, None, None),
    _usage(0, U64_MAX + 1, 0, None, None, None),
    _usage(0, 0, U64_MAX + 1, None, None, None),
    _usage(0, 0, 0, U64_MAX + 1, None, None),
    _usage(0, 0, 0, None, U64_MAX + 1, None),
    _usage(0, 0, 0, None, None, U64_MAX + 1),
    _usage(0, 0, 0, None, None, -1),
    _event(
        "CacheMetrics",
        f'"cache_creation_input_tokens":{U64_MAX + 1},"cache_read_input_tokens":0,"cached_input_tokens":0',
    ),
    _event(
        "CacheMetrics",
        f'"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cached_input_tokens":{U64_MAX + 1}',
    ),
    _event("RunCompleted", f'"finish_reason":"stop","iterations":{U64_MAX + 1}'),
    _event("CompactionCircuitOpened", f'"consecutive_failures":{U32_MAX + 1}'),
    _event("CompactionCircuitOpened", '"consecutive_failures":-1'),
    # Times no chrono reads, or outside years 1 to 9999.
    _event("RunCancelled", timestamp="10000-01-01T00:00:00Z"),
    _event("RunCancelled", timestamp="2026-02-30T10:15:30Z"),
    _event("RunCancelled", timestamp="2026-11-26T24:00:00Z"),
    _event("RunCancelled", timestamp="2026-11-26T10:15:30"),
    _event("RunCancelled", timestamp="2026-11-26T10:15Z"),
    _event("RunCancelled", timestamp="2026-11-26"),
    _event("RunCancelled", timestamp=""),
    f'{{"RunCancelled":{{"run_id":"{RUN}","timestamp":1764152130}}}}',
    # Missing or malformed fields, JSON serde_json refuses.
    f'{{"RunCancelled":{{"run_id":"{RUN}"}}}}',
    f'{{"RunCancelled":{{"timestamp":"{TIME}"}}}}',
    _event("RunCancelled", run_id="not-a-uuid"),
    _event("RunCancelled", run_id=RUN[:-1]),
    _event("ToolCallCompleted", '"call":{"id":"c","name":"n"}'),
    _arguments("1e400"),
    _arguments("-1e400"),
    _arguments("NaN"),
    _arguments('"\\ud800"'),
    _arguments("01"),
    _text("\x01"),
    _event(
        "ToolExecutionFinished",
        '"call_id":"c","tool_name":"t","result":{"Success":{"output":1},"Failure":{"error":"e"}},"duration_ms":0',
    ),
    _event(
        "ToolExecutionFinished",
        '"call_id":"c","tool_name":"t","result":{"Success":{}},"duration_ms":0',
    ),
    _event(
        "ToolExecutionFinished", '"call_id":"c","tool_name":"t","result":"Success","duration_ms":0'
    ),
    _event("RunCompleted", '"finish_reason":{"unknown":1},"iterations":0'),
    _event("RunCompleted", '"finish_reason":null,"iterations":0'),
    _event("RunStarted", '"session_id":null,"provider":"p","model":"m"'),
    _event("TextDelta", '"delta":null'),
    _event("RunCancelled") + " x",
    "{}",
    "[]",
    "null",
    "",
]

REFUSED_ENVELOPES: Final = [
    _envelope(seq=U64_MAX + 1),
    _envelope(seq=-1),
    _envelope(seq='"1"'),
    _envelope(seq="1.0"),
    _envelope(session_id="not-a-uuid"),
    _envelope(emitted_at="2026-11-26T10:15:30"),
    _envelope(emitted_at="10000-01-01T00:00:00Z"),
    _envelope(event=_event("ContextBuilt", f'"message_count":{U64_MAX + 1}')),
    _envelope(event="null"),
]


def _line_id(line: str) -> str:
    return re.sub(r'"(run_id|event_id)":"[^"]*",?', "", line)[:70]


def test_rust_writes_the_boundary_lines_unchanged(serde: SerdeRoundTrip) -> None:
    # Proves the lines below are serde's own form, so the Python tests can use them.
    _assert_same_lines(
        BOUNDARY_EVENTS, serde.events(BOUNDARY_EVENTS), "boundary event (rust)", BOUNDARY_EVENTS
    )
    _assert_same_lines(
        BOUNDARY_ENVELOPES,
        serde.envelopes(BOUNDARY_ENVELOPES),
        "boundary envelope (rust)",
        BOUNDARY_ENVELOPES,
    )


@pytest.mark.parametrize("line", BOUNDARY_EVENTS, ids=_line_id)
def test_python_writes_boundary_events_as_serde(line: str) -> None:
    _assert_same_lines([line], [_python_event(line)], "boundary event (python)", [line])


@pytest.mark.parametrize("line", BOUNDARY_ENVELOPES, ids=_line_id)
def test_python_writes_boundary_envelopes_as_serde(line: str) -> None:
    _assert_same_lines([line], [_python_envelope(line)], "boundary envelope (python)", [line])


def test_python_normalises_what_serde_normalises(serde: SerdeRoundTrip) -> None:
    rust = serde.events(NORMALISED_EVENTS)
    refused = [
        (line, reply)
        for line, reply in zip(NORMALISED_EVENTS, rust, strict=True)
        if reply.startswith(REFUSAL_PREFIX)
    ]
    assert not refused, f"serde refuses lines meant to be normalised: {refused}"
    changed = [line for line, reply in zip(NORMALISED_EVENTS, rust, strict=True) if line == reply]
    assert not changed, f"lines already in serde's form: {changed}"
    _assert_same_lines(
        rust,
        [_python_event(line) for line in NORMALISED_EVENTS],
        "normalised event",
        NORMALISED_EVENTS,
    )


def test_rust_refuses_the_refused_lines(serde: SerdeRoundTrip) -> None:
    # Proves serde refuses the lines the Python tests below expect refused.
    for lines, replies in (
        (REFUSED_EVENTS, serde.events(REFUSED_EVENTS)),
        (REFUSED_ENVELOPES, serde.envelopes(REFUSED_ENVELOPES)),
    ):
        accepted = [
            f"{line!r} -> {reply!r}"
            for line, reply in zip(lines, replies, strict=True)
            if not reply.startswith(REFUSAL_PREFIX)
        ]
        assert not accepted, "serde accepts:\n" + "\n".join(accepted)


def test_rust_names_the_integer_type_it_refuses(serde: SerdeRoundTrip) -> None:
    replies = serde.events(
        [
            _event("ContextBuilt", f'"message_count":{U64_MAX + 1}'),
            _event("CompactionCircuitOpened", f'"consecutive_failures":{U32_MAX + 1}'),
        ]
    )
    assert replies[0].startswith(REFUSAL_PREFIX) and "expected u64" in replies[0]
    assert replies[1].startswith(REFUSAL_PREFIX) and "expected u32" in replies[1]


@pytest.mark.parametrize("line", REFUSED_EVENTS, ids=_line_id)
def test_python_refuses_events_serde_refuses(line: str) -> None:
    with pytest.raises(ValidationError):
        es_events.decode_event(line)


@pytest.mark.parametrize("line", REFUSED_ENVELOPES, ids=_line_id)
def test_python_refuses_envelopes_serde_refuses(line: str) -> None:
    with pytest.raises(ValidationError):
        es_backend.decode_envelope(line)
