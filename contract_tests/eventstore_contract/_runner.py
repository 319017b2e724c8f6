"""``run_suite``: the conformance suite as a function, for ``eventstore check URL``."""

from __future__ import annotations

__all__ = ["run_suite"]

import os
from collections.abc import Sequence

import pytest


def run_suite(url: str, *, profile: str | None = None, extra_args: Sequence[str] = ()) -> int:
    """Run the whole suite against ``open_store(url)``; return pytest's exit code.

    The run ignores the current project's pytest configuration (``-c`` points at
    an empty file) so that its ``addopts`` or test paths cannot change what is
    checked. Call it before importing the suite's modules (``import
    eventstore_contract`` imports none): pytest can only rewrite the asserts of
    modules it imports itself, and without that failures show no detail. pytest
    still warns that the package itself was imported first; it holds no asserts.
    """
    args = ["--eventstore-url", url, "-c", os.devnull, "-p", "no:cacheprovider"]
    if profile is not None:
        args += ["--eventstore-profile", profile]
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        # Without entry-point autoloading the plugin must be named explicitly; with
        # it, naming it again would register the module twice.
        args += ["-p", "eventstore_contract.plugin"]
    return int(pytest.main([*args, *extra_args]))
