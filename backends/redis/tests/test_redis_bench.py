"""``eventstore bench`` on Redis: every raw baseline runs where it applies and cleans up.

Figures are not checked (no timing assertions): what is checked is that each ratio
the issue asks for is printed and recorded against the baseline it names, that a
baseline which does not apply to a scenario says so, and that no baseline key stays.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis
from typer.testing import CliRunner

from eventstore._cli import build_app

SCRIPT = "raw EVALSHA of the append script"
REFERENCE = "reference design (GET, INCR, XADD *)"
PIPELINED = "raw pipelined XADD"


def _baseline_keys(url: str, prefix: str) -> set[bytes]:
    client = redis.Redis.from_url(url)
    try:
        # The baselines write under the store's own prefix (within its ACL rights).
        return set(client.scan_iter(match=f"{prefix}esbench:*", count=1000))
    finally:
        client.close()


def test_redis_bench_compares_with_each_raw_baseline(
    store_url: str, redis_server_url: str, prefix: str, tmp_path: Path
) -> None:
    before = _baseline_keys(redis_server_url, prefix)
    report = tmp_path / "report.json"
    args = ["bench", "--url", store_url, "--scenarios", "S1,S4,S5", "--events", "200"]
    result = CliRunner().invoke(
        build_app(), [*args, "--repeats", "1", "--json", str(report)], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(report.read_text())
    compared = {(r["scenario"], b["name"]): b for r in data["results"] for b in r["baselines"]}
    measured = [("S1", SCRIPT), ("S1", REFERENCE), ("S4", PIPELINED), ("S5", SCRIPT)]
    for key in measured:
        assert compared[key]["skipped"] is None, key
        assert compared[key]["ratio"] > 0, key
    # A baseline that cannot do a scenario's work is reported as skipped, with why.
    for key in [("S1", PIPELINED), ("S4", REFERENCE), ("S5", REFERENCE)]:
        assert compared[key]["skipped"], key
    for name in (SCRIPT, REFERENCE, PIPELINED):
        assert f"vs {name}" in result.stdout
    assert _baseline_keys(redis_server_url, prefix) <= before
