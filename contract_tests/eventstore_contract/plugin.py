"""The pytest plugin (``pytest11`` entry point ``eventstore_contract``).

It registers the suite's markers (so ``--strict-markers`` accepts them), the
options ``--eventstore-url``, ``--eventstore-profile`` and ``--eventstore-timeout``,
turns a backend's ``expected_failures`` into strict expected failures, and prints
one coverage line per backend at the end of the run.

With ``--eventstore-url URL`` the whole suite is collected against
``open_store(URL)``; without explicit test paths, it is the only thing collected.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeGuard

import pytest

from eventstore import Capability, EventEnvelope
from eventstore.backend import redact_url

from ._base import ContractBase
from ._coverage import session_coverage
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


@dataclass(frozen=True)
class _KnownFailure:
    """An entry of a class's ``expected_failures``, and where it is written."""

    name: str
    reason: str
    owner: str  # the class whose expected_failures lists it
    where: str  # file:line of the entry (or of the class)


_KNOWN_KEY: Final = pytest.StashKey[_KnownFailure]()


def _contract_class(item: pytest.Item) -> type[ContractBase] | None:
    cls = getattr(item, "cls", None)
    return cls if isinstance(cls, type) and issubclass(cls, ContractBase) else None


def _known_failure(cls: type, name: str) -> _KnownFailure | None:
    known = getattr(cls, "expected_failures", None)
    if not isinstance(known, Mapping) or name not in known:
        return None
    owner = next((k for k in cls.__mro__ if name in (vars(k).get("expected_failures") or {})), cls)
    where = _entry_location(owner, name)
    return _KnownFailure(name, str(known[name]), owner.__qualname__, where)


def _entry_location(owner: type, name: str) -> str:
    """``path:line`` of ``name`` in ``owner``'s source (the class's line if not found)."""
    try:
        path = inspect.getsourcefile(owner) or "?"
        lines, first = inspect.getsourcelines(owner)
    except (OSError, TypeError):
        module = sys.modules.get(owner.__module__)
        return str(getattr(module, "__file__", None) or owner.__module__)
    for offset, line in enumerate(lines):
        if f"'{name}'" in line or f'"{name}"' in line:
            return f"{path}:{first + offset}"
    return f"{path}:{first}"


def _required(item: pytest.Item) -> frozenset[Capability]:
    return frozenset(cap for marker in item.iter_markers(REQUIRES_MARKER) for cap in marker.args)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Note the contract tests; mark those in ``expected_failures`` as strict xfail."""
    coverage = session_coverage(config)
    for item in items:
        cls = _contract_class(item)
        if cls is None:
            continue
        coverage.collected(item, cls, _required(item))
        known = _known_failure(cls, getattr(item, "originalname", item.name))
        if known is not None:
            item.stash[_KNOWN_KEY] = known
            item.add_marker(pytest.mark.xfail(reason=known.reason, strict=True))


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Deselected contract tests count as "not run" (in case -k ran before us)."""
    for item in items:
        cls = _contract_class(item)
        if cls is not None:
            session_coverage(item.config).collected(item, cls, _required(item))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Note each report for the summary; say which known failure to remove if it passed.

    Outermost (``tryfirst``) so that it sees the report as the skipping plugin left
    it (xfail, strict XPASS).
    """
    report = yield
    known = item.stash.get(_KNOWN_KEY, None)
    if (
        known is not None
        and report.failed
        and isinstance(report.longrepr, str)
        and report.longrepr.startswith("[XPASS(strict)]")
    ):
        report.longrepr = (
            f"[XPASS(strict)] {known.name} passed, but {known.owner}.expected_failures "
            f"lists it as a known failure ({known.reason!r}).\n"
            f"Remove the entry {known.name!r} from {known.owner}.expected_failures "
            f"({known.where}): the suite then requires it to pass."
        )
    session_coverage(item.config).report(report)
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per backend: which capabilities were covered and which were not."""
    for tally in session_coverage(terminalreporter.config).tallies():
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
