"""``run_suite``: the conformance suite as a function, for ``eventstore check URL``."""

from __future__ import annotations

__all__ = ["REPORT_CHARS", "run_suite"]

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import pytest

#: pytest's ``-r``: the short summary lists failures, errors, known failures
#: (expected_failures) and, unlike pytest's default, skips with their reason. A
#: ``-r`` among the extra arguments replaces it (the last ``-r`` wins).
REPORT_CHARS: Final = "-rfExs"

_CONFIG: Final = """\
# Written by eventstore_contract.run_suite for one run of the conformance suite.
# It is empty on purpose: the current project's pytest configuration (addopts,
# testpaths, filterwarnings...) must not change what the suite checks.
[pytest]
"""


def run_suite(url: str, *, profile: str | None = None, extra_args: Sequence[str] = ()) -> int:
    """Run the whole suite against ``open_store(url)``; return pytest's exit code.

    The run ignores the current project's pytest configuration: pytest is given a
    configuration file of its own, empty, in a temporary directory, so that the
    project's ``addopts`` or test paths cannot change what is checked. Its rootdir
    is the suite's package, where the tests live, so they are named
    ``_url_suite.py::TestEventStoreContract::test_...``. Skipped tests are listed
    with their reason (``-rfExs``) unless ``extra_args`` has its own ``-r``.

    Call it before importing the suite's modules (``import eventstore_contract``
    imports none, and its ``__init__`` opts out of assertion rewriting as it holds
    no asserts): pytest can only rewrite the asserts of modules it imports itself,
    and without that failures show no detail.
    """
    package = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory(prefix="eventstore-check-") as scratch:
        config = Path(scratch) / "pytest.ini"
        config.write_text(_CONFIG, encoding="utf-8")
        args = [
            "--eventstore-url",
            url,
            "-c",
            str(config),
            "--rootdir",
            str(package),
            "-p",
            "no:cacheprovider",
            REPORT_CHARS,
        ]
        if profile is not None:
            args += ["--eventstore-profile", profile]
        if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
            # Without entry-point autoloading the plugin must be named explicitly;
            # with it, naming it again would register the module twice.
            args += ["-p", "eventstore_contract.plugin"]
        return int(pytest.main([*args, *extra_args]))
