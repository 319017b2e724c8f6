"""The suite fails every deliberately broken backend, at the test that checks its rule.

Each broken backend of ``broken_backends.BROKEN`` runs the test named for it (quick
profile, a short time guard): the run must fail, with that test among the failures.
The correct store each family is built on passes the same tests, so the failure is
the bug's. ``bites_repeat.py`` runs the whole suite against every broken backend,
several times, under the default profile (slow; run it by hand).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from broken_backends import BROKEN

# Imported here, outside the pytester runs: a run removes the modules it imported
# when it ends, and SQLAlchemy imported afresh next to its leftovers breaks
# ("'InternalTraversal' object is not callable").
pytest.importorskip("eventstore_sqlalchemy._sqlite")
pytest.importorskip("sqlalchemy.dialects.sqlite.aiosqlite")

_HERE = Path(__file__).parent

TEST_FILE = """
import pytest
from broken_backends import store_factory_for, store_url_for
from eventstore_contract import StoreContract


class TestBrokenContract(StoreContract):
    @pytest.fixture
    def store_factory(self, tmp_path):
        return store_factory_for({name!r}, tmp_path)

    @pytest.fixture
    def store_url(self, tmp_path):
        return store_url_for({name!r}, tmp_path)
"""

# The correct store of each family, as the broken ones are built on it.
_CONTROL_FILE = """
import pytest
import eventstore
from broken_backends import SharedMemoryStore
from eventstore.memory import MemoryEventStore
from eventstore_contract import StoreContract


class TestBrokenContract(StoreContract):
    @pytest.fixture
    def store_factory(self, tmp_path):
        family = {family!r}
        if family == "sqlite":
            return lambda: eventstore.open_store(f"sqlite+aiosqlite:///{{tmp_path}}/events.db")
        if family == "shared":
            return lambda: SharedMemoryStore(key=str(tmp_path))
        if family == "url":
            return lambda: eventstore.open_store({url!r})
        return MemoryEventStore

    @pytest.fixture
    def store_url(self, tmp_path):
        family = {family!r}
        if family == "sqlite":
            return f"sqlite+aiosqlite:///{{tmp_path}}/events.db"
        return {url!r} if family == "url" else None
"""

# A password in the URL, so that the credential tests run.
_CONTROL_URL = "memory://contract:hunter2-secret@localhost/x"

_ARGS = ("-p", "no:cacheprovider", "--eventstore-profile", "quick", "--eventstore-timeout", "5")


def _failed(result: pytest.RunResult) -> set[str]:
    reports = result.reprec.getfailures()  # type: ignore[attr-defined]
    return {report.head_line.rsplit(".", 1)[-1].split("[", 1)[0] for report in reports}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_suite_fails_broken_backend(pytester: pytest.Pytester, name: str) -> None:
    pytester.syspathinsert(_HERE)
    pytester.makepyfile(test_broken=TEST_FILE.format(name=name))
    caught_by = BROKEN[name].caught_by
    result = pytester.runpytest_inprocess(
        *_ARGS, f"test_broken.py::TestBrokenContract::{caught_by}"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()[-3000:]
    assert caught_by in _failed(result), sorted(_failed(result))


@pytest.mark.parametrize("family", sorted({entry.family for entry in BROKEN.values()}))
def test_the_correct_store_of_each_family_passes_those_tests(
    pytester: pytest.Pytester, family: str
) -> None:
    pytester.syspathinsert(_HERE)
    pytester.makepyfile(test_broken=_CONTROL_FILE.format(family=family, url=_CONTROL_URL))
    tests = sorted({entry.caught_by for entry in BROKEN.values() if entry.family == family})
    result = pytester.runpytest_inprocess(
        *_ARGS, *(f"test_broken.py::TestBrokenContract::{test}" for test in tests)
    )
    outcomes = result.parseoutcomes()
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    assert outcomes.get("passed", 0) >= len(tests), outcomes


def test_hang_report_says_what_the_subscription_delivered(pytester: pytest.Pytester) -> None:
    # A lost event shows up as a hang; the report must say how far the subscriber
    # got, not only that the time guard fired.
    pytester.syspathinsert(_HERE)
    pytester.makepyfile(test_broken=TEST_FILE.format(name="live_wake_ups_lost"))
    result = pytester.runpytest_inprocess(
        "-p",
        "no:cacheprovider",
        "--eventstore-profile",
        "quick",
        "--eventstore-timeout",
        "2",
        "-k",
        "test_subscribe_live_delivers_new_events",
    )
    (failure,) = result.reprec.getfailures()  # type: ignore[attr-defined]
    text = str(failure.longrepr)
    assert "did not finish within 2s" in text
    assert "a subscription had delivered 0 envelope(s) of the 5 awaited, seqs none" in text
