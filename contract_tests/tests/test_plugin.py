"""The pytest plugin: --eventstore-url, capability skips, summary line, profiles."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from eventstore_contract._profiles import ENV_VAR, resolve_profile

_HERE = Path(__file__).parent

_SUBCLASS = """
import pytest
from broken_backends import BROKEN
from eventstore import open_store
from eventstore_contract import StoreContract


class TestContract(StoreContract):
    expected_failures = {expected!r}

    @pytest.fixture
    def store_factory(self):
        return {factory}
"""


def _contract_file(
    pytester: pytest.Pytester, factory: str, expected: dict[str, str] | None = None
) -> None:
    pytester.syspathinsert(_HERE)
    pytester.makepyfile(test_contract=_SUBCLASS.format(factory=factory, expected=expected or {}))


def test_url_option_runs_the_suite_and_prints_one_summary_line(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--eventstore-url", "memory://", "-k", "test_sequence_"
    )
    assert result.ret == pytest.ExitCode.OK
    outcomes = result.parseoutcomes()
    passed, skipped, deselected = outcomes["passed"], outcomes["skipped"], outcomes["deselected"]
    summaries = [line for line in result.outlines if line.startswith("eventstore contract [")]
    assert len(summaries) == 1, summaries
    # The deselected tests are "not run": no capability is covered by a partial run.
    assert summaries[0].startswith(
        f"eventstore contract [memory]: {passed + skipped + deselected} tests "
        f"({passed} passed, {skipped} skipped, {deselected} not run); covered: none; "
        "not covered: multi_process (1 test skipped); "
        "not run (deselected, or the run stopped first): core rules ("
    ), summaries[0]


def test_url_is_redacted_in_the_report(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--eventstore-url", "memory://me:s3cret@localhost", "-k", "limit"
    )
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["eventstore contract: url memory://me:***@localhost*"])
    assert "s3cret" not in result.stdout.str() + result.stderr.str()


def test_explicit_paths_are_kept_next_to_the_url_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_other="def test_other():\n    pass\n")
    result = pytester.runpytest_inprocess(
        "-p",
        "no:cacheprovider",
        "--eventstore-url",
        "memory://",
        "test_other.py",
        "-k",
        "other or limit",
    )
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["test_other.py .*"])
    assert result.parseoutcomes()["passed"] > 1


def _assert_only(result: pytest.RunResult, **expected: int) -> None:
    # The rest of the suite is deselected; its size grows with the contract.
    outcomes = {
        k: v for k, v in result.parseoutcomes().items() if k not in {"deselected", "seconds"}
    }
    normalized = {
        k.rstrip("s") if k.endswith("s") and k != "passed" else k: v for k, v in outcomes.items()
    }
    assert normalized == expected, result.stdout.str()


def test_missing_capability_skips_name_it(pytester: pytest.Pytester) -> None:
    _contract_file(pytester, 'lambda: open_store("memory://")')
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rs", "-k", "durability")
    result.stdout.fnmatch_lines(["*backend 'memory' does not declare capability durable*"])
    result.stdout.fnmatch_lines(["*not covered: durable (5 tests skipped)*"])
    assert result.ret == pytest.ExitCode.OK


def test_markers_are_registered_for_strict_markers(pytester: pytest.Pytester) -> None:
    _contract_file(pytester, 'lambda: open_store("memory://")')
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--strict-markers", "-k", "delete_unknown"
    )
    _assert_only(result, passed=1)


def test_subclass_must_provide_a_store_factory(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "from eventstore_contract import StoreContract\n"
        "class TestNoFactory(StoreContract):\n    pass\n"
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", "delete_unknown")
    result.stdout.fnmatch_lines(["*must override the store_factory fixture*"])
    assert result.ret != pytest.ExitCode.OK


def test_a_class_may_provide_a_store_fixture_instead_of_a_factory(
    pytester: pytest.Pytester,
) -> None:
    # The contract's own wording: "subclass the suite's base class and provide a
    # store fixture". The store comes unopened; the suite opens it on the test's loop.
    pytester.makepyfile(
        "import pytest, eventstore\n"
        "from eventstore_contract import StoreContract\n"
        "OPENED = []\n"
        "class TestOwnStore(StoreContract):\n"
        "    @pytest.fixture\n"
        "    def store(self):\n"
        "        store = eventstore.open_store('memory://')\n"
        "        OPENED.append(store)\n"
        "        yield store\n"
        "        assert not store.is_open, 'the suite closes the store it opened'\n"
        "def test_zz_every_store_was_used():\n"
        "    assert OPENED\n"
    )
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "--eventstore-profile", "quick", "-rs"
    )
    outcomes = result.parseoutcomes()
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert outcomes["passed"] > 50
    # Tests that reopen the store need a factory: skipped, said why, and counted.
    result.stdout.fnmatch_lines(
        [
            "*eventstore contract [[]memory[]]*store_factory not given (3 skipped)*",
            "*provides a store fixture but no store_factory, so the suite cannot reopen*",
        ]
    )


def test_a_class_with_both_fixtures_runs_the_reopening_tests_too(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        "import pytest, eventstore\n"
        "from eventstore_contract import StoreContract\n"
        "class TestBoth(StoreContract):\n"
        "    @pytest.fixture\n"
        "    def store(self):\n"
        "        return eventstore.open_store('memory://')\n"
        "    @pytest.fixture\n"
        "    def store_factory(self):\n"
        "        return lambda: eventstore.open_store('memory://')\n"
    )
    result = pytester.runpytest_inprocess(
        "-p",
        "no:cacheprovider",
        "--eventstore-profile",
        "quick",
        "-k",
        "closed_store or idempotent",
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert result.parseoutcomes()["passed"] >= 2
    assert "store_factory not given" not in result.stdout.str()


def test_a_store_fixture_returning_something_else_is_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        "import pytest\n"
        "from eventstore_contract import StoreContract\n"
        "class TestOwnStore(StoreContract):\n"
        "    @pytest.fixture\n"
        "    def store(self):\n"
        "        return 'memory://'\n"
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", "delete_unknown")
    result.stdout.fnmatch_lines(
        ["*the store fixture must return an eventstore.EventStore, got str*"]
    )
    assert result.ret != pytest.ExitCode.OK


_SPEC_CASE = """
import pytest, eventstore
from eventstore import Capability
from eventstore.memory import MemoryEventStore as _Memory
from eventstore_contract import StoreContract

class {name}(_Memory):
    capabilities = {capabilities}

class TestStore(StoreContract):
    @pytest.fixture
    def store_factory(self):
        return {name}

    @pytest.fixture
    def store_url(self):
        return "memory://"
"""


@pytest.mark.parametrize(
    ("name", "capabilities"),
    [
        # The class the spec's factory names claims less than the spec: users would
        # be promised capabilities (in `eventstore backends`) the suite never tests.
        ("MemoryEventStore", "frozenset()"),
        # A variant class may claim less than the spec, never more.
        ("Variant", "_Memory.capabilities | {Capability.DURABLE}"),
    ],
)
def test_capabilities_of_class_and_spec_must_agree(
    pytester: pytest.Pytester, name: str, capabilities: str
) -> None:
    pytester.makepyfile(_SPEC_CASE.format(name=name, capabilities=capabilities))
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-k", "sequence_starts_at_one or registered_backend_spec"
    )
    # One failure, in the test named after the rule, naming both sets; the other
    # tests run against the class's capabilities, and the summary is printed.
    _assert_only(result, passed=1, failed=1)
    (failure,) = result.reprec.getfailures()  # type: ignore[attr-defined]
    assert failure.head_line.endswith("test_capabilities_match_the_registered_backend_spec")
    result.stdout.fnmatch_lines(
        [
            f"*{name}.capabilities and the registered BackendSpec 'memory' disagree:",
            f"*{name}.capabilities = {{*}}",
            "*BackendSpec 'memory' capabilities = {backdoor, delete, import, list_runs, "
            "live_subscribe}",
            "*only the spec declares*only the class*",
            "eventstore contract [[]memory[]]: * (1 passed, 1 failed, * not run)*; "
            "failed: core rules (1 test failed)*",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_variant_class_may_claim_less_than_its_spec(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(_SPEC_CASE.format(name="ReadOnlyVariant", capabilities="frozenset()"))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", "limit")
    assert result.ret == pytest.ExitCode.OK


def test_expected_failure_that_fails_is_xfailed(pytester: pytest.Pytester) -> None:
    test = "test_pagination_returns_exactly_limit"
    _contract_file(pytester, 'BROKEN["limit_off_by_one"].store', {test: "known bug #1"})
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", test)
    _assert_only(result, xfailed=1)


def test_expected_failure_that_passes_is_an_error(pytester: pytest.Pytester) -> None:
    test = "test_pagination_returns_exactly_limit"
    _contract_file(pytester, 'lambda: open_store("memory://")', {test: "fixed already?"})
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", test)
    _assert_only(result, failed=1)
    # The failure says which entry to remove, and where it is written.
    path = pytester.path / "test_contract.py"
    result.stdout.fnmatch_lines(
        [
            f"*[[]XPASS(strict)] {test} passed, but TestContract.expected_failures lists it "
            "as a known failure ('fixed already?').",
            f"Remove the entry '{test}' from TestContract.expected_failures ({path}:8): "
            "the suite then requires it to pass.",
        ]
    )
    result.stdout.fnmatch_lines(["*failed: * (1 test failed)*"])


def test_run_suite_returns_pytest_exit_code(tmp_path: Path) -> None:
    code = (
        "import sys, eventstore_contract\n"
        "sys.exit(eventstore_contract.run_suite('memory://', profile='ci',"
        " extra_args=['-q', '-k', 'pagination']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # Only the pagination tests ran, and all of them passed.
    from eventstore_contract import StoreContract

    selected = [
        name for name in dir(StoreContract) if name.startswith("test_") and "pagination" in name
    ]
    assert re.search(
        rf"eventstore contract \[memory\]: \d+ tests \({len(selected)} passed, \d+ not run\)",
        done.stdout,
    ), done.stdout


@pytest.mark.parametrize(
    ("option", "env", "expected"),
    [
        ("thorough", {"CI": "1"}, "thorough"),
        (None, {ENV_VAR: "ci"}, "ci"),
        (None, {"CI": "true"}, "ci"),
        (None, {}, "quick"),
    ],
)
def test_profile_resolution(
    monkeypatch: pytest.MonkeyPatch, option: str | None, env: dict[str, str], expected: str
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv(ENV_VAR, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert resolve_profile(option) == expected


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="quick, ci, thorough"):
        resolve_profile("sloppy")


def test_unequal_envelopes_are_explained_field_by_field(pytester: pytest.Pytester) -> None:
    test = "test_idempotency_retry_returns_stored_envelope"
    _contract_file(pytester, 'BROKEN["duplicate_on_retry"].store')
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", test)
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*[[]0] (seq *) seq: * != 1", "*[[]0] (seq *) emitted_at: *"])


def test_importing_the_package_imports_no_suite_module() -> None:
    # `eventstore check` imports the package to find run_suite; a suite module
    # imported before pytest starts could not have its asserts rewritten.
    code = (
        "import sys, eventstore_contract\n"
        "eventstore_contract.run_suite\n"
        "loaded = [m for m in sys.modules if m.startswith('eventstore_contract.')]\n"
        "assert loaded == ['eventstore_contract._runner'], loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
