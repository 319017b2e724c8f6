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
