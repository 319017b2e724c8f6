"""The suite fails every deliberately broken backend, at the rule it breaks."""

from __future__ import annotations

from pathlib import Path

import pytest
from broken_backends import BROKEN

_HERE = Path(__file__).parent

_TEST_FILE = """
import pytest
from broken_backends import BROKEN
from eventstore_contract import StoreContract


class TestBrokenContract(StoreContract):
    @pytest.fixture
    def store_factory(self):
        return BROKEN[{name!r}].store
"""


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_suite_fails_broken_backend(pytester: pytest.Pytester, name: str) -> None:
    pytester.syspathinsert(_HERE)
    pytester.makepyfile(test_broken=_TEST_FILE.format(name=name))
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--eventstore-profile", "quick", "--eventstore-timeout", "5"
    )
    failed = {report.head_line.rsplit(".", 1)[-1] for report in result.reprec.getfailures()}  # type: ignore[attr-defined]
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert BROKEN[name].caught_by in failed, sorted(failed)


def test_hang_report_says_what_the_subscription_delivered(pytester: pytest.Pytester) -> None:
    # A lost event shows up as a hang; the report must say how far the subscriber
    # got, not only that the time guard fired.
    pytester.syspathinsert(_HERE)
    pytester.makepyfile(test_broken=_TEST_FILE.format(name="live_wake_ups_lost"))
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
