"""The pytest plugin (``pytest11`` entry point ``eventstore_contract``).

It registers the suite's markers (so ``--strict-markers`` accepts them), the
options ``--eventstore-url``, ``--eventstore-profile`` and ``--eventstore-timeout``,
turns a backend's ``expected_failures`` into strict expected failures, and prints
one coverage line per backend at the end of the run.

With ``--eventstore-url URL`` the whole suite is collected against
``open_store(URL)``; without explicit test paths, it is the only thing collected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, TypeGuard

import pytest

from eventstore import EventEnvelope
from eventstore.backend import redact_url

from ._coverage import COVERAGE_KEY
from ._harness import DEFAULT_TIMEOUT, REQUIRES_MARKER, URL_MARKER
from ._profiles import ENV_VAR, PROFILES, resolve_profile

_URL_SUITE: Final = Path(__file__).with_name("_url_suite.py")


def pytest_addoption(parser: pytest.Parser) -> None:
    """The suite's command-line options."""
    group = parser.getgroup("eventstore", "eventstore conformance suite")
    group.addoption(
        "--eventstore-url",
        dest="eventstore_url",
        metavar="URL",
        default=None,
        help="run the eventstore conformance suite against open_store(URL)",
    )
    group.addoption(
        "--eventstore-profile",
        dest="eventstore_profile",
        choices=sorted(PROFILES),
        default=None,
        help=f"hypothesis profile of the suite (default: ${ENV_VAR}, else ci if $CI, else quick)",
    )
    group.addoption(
        "--eventstore-timeout",
        dest="eventstore_timeout",
        type=float,
        metavar="SECONDS",
        default=DEFAULT_TIMEOUT,
        help=f"fail a contract test running longer than this as hung ({DEFAULT_TIMEOUT:g})",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register markers and, with ``--eventstore-url``, collect the URL suite."""
    config.addinivalue_line(
        "markers",
        f"{REQUIRES_MARKER}(*capabilities): run only on backends declaring these "
        "eventstore capabilities; skipped (and reported) otherwise",
    )
    config.addinivalue_line(
        "markers", f"{URL_MARKER}: needs the store_url fixture (multi-process tests)"
    )
    try:
        resolve_profile(config.getoption("eventstore_profile"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    if config.getoption("eventstore_url"):
        suite = str(_URL_SUITE)
        if config.args_source is pytest.Config.ArgsSource.ARGS:
            if suite not in config.args:
                config.args.append(suite)
        else:
            config.args[:] = [suite]


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say what the suite runs against, with any password redacted."""
    url = config.getoption("eventstore_url")
    profile = resolve_profile(config.getoption("eventstore_profile"))
    where = (
        f"url {redact_url(url)}"
        if url
        else "the store_factory (or store) fixture of each StoreContract subclass"
    )
    return [f"eventstore contract: {where}; hypothesis profile {profile}"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests a backend lists in ``expected_failures`` as strict xfail."""
    for item in items:
        known = getattr(getattr(item, "cls", None), "expected_failures", None)
        name = getattr(item, "originalname", item.name)
        if known and name in known:
            item.add_marker(pytest.mark.xfail(reason=known[name], strict=True))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per backend: which capabilities were covered and which were not."""
    tallies = terminalreporter.config.stash.get(COVERAGE_KEY, {})
    for tally in tallies.values():
        terminalreporter.write_line(tally.summary())


_ENVELOPE_FIELDS: Final = ("seq", "event_id", "run_id", "session_id", "emitted_at", "event")


def pytest_assertrepr_compare(op: str, left: object, right: object) -> list[str] | None:
    """Name the fields that differ when envelopes (or lists of them) compare unequal.

    pytest's own diff of two envelopes is a long repr cut off before the difference;
    a backend author needs "seq 3: emitted_at differs" instead.
    """
    if op != "==":
        return None
    if isinstance(left, EventEnvelope) and isinstance(right, EventEnvelope):
        pairs, lines = [(left, right)], ["envelopes differ:"]
    elif _envelope_list(left) and _envelope_list(right):
        lines = [f"lists of envelopes differ (left {len(left)}, right {len(right)}):"]
        if len(left) != len(right):
            lines.append(f"  seqs: {[e.seq for e in left]} != {[e.seq for e in right]}")
        pairs = list(zip(left, right, strict=False))
    else:
        return None
    for index, (a, b) in enumerate(pairs):
        for name in _ENVELOPE_FIELDS:
            mine, theirs = getattr(a, name), getattr(b, name)
            if mine != theirs:
                lines.append(f"  [{index}] (seq {a.seq}) {name}: {mine!r} != {theirs!r}")
    return lines


def _envelope_list(value: object) -> TypeGuard[list[EventEnvelope]]:
    return isinstance(value, list) and all(isinstance(v, EventEnvelope) for v in value)
