"""``docs/contract-rules.md`` maps every rule to real tests and real broken backends."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from broken_backends import BROKEN
from eventstore_contract import StoreContract

_PAGE = Path(__file__).resolve().parents[2] / "docs" / "contract-rules.md"
_NAME = re.compile(r"`([a-z0-9_]+)`")


def _rows() -> list[tuple[str, list[str], list[str]]]:
    if not _PAGE.exists():
        pytest.fail(f"{_PAGE} is missing")
    rows = []
    for line in _PAGE.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 3 or set(cells[1]) <= {"-", " "}:
            continue
        if cells[0] == "rule or sentence":
            continue
        rows.append((cells[0], _NAME.findall(cells[1]), _NAME.findall(cells[2])))
    return rows


def test_the_page_has_a_table_of_rules() -> None:
    assert len(_rows()) >= 40


@pytest.mark.parametrize(("rule", "tests", "broken"), _rows())
def test_each_rule_has_tests_and_broken_backends(
    rule: str, tests: list[str], broken: list[str]
) -> None:
    assert tests, f"rule {rule!r} names no test"
    assert broken, f"rule {rule!r} names no broken backend"
    missing_tests = [t for t in tests if not callable(getattr(StoreContract, t, None))]
    assert not missing_tests, f"rule {rule!r}: no such suite tests {missing_tests}"
    missing_broken = [b for b in broken if b not in BROKEN]
    assert not missing_broken, f"rule {rule!r}: no such broken backends {missing_broken}"
    for name in broken:
        assert BROKEN[name].caught_by in tests, (
            f"rule {rule!r}: broken backend {name!r} is caught by {BROKEN[name].caught_by}, "
            "which the row does not name"
        )


def test_every_broken_backend_is_in_the_table() -> None:
    listed = {name for _, _, broken in _rows() for name in broken}
    assert sorted(set(BROKEN) - listed) == []


def test_the_catalogue_is_large_enough() -> None:
    assert len(BROKEN) >= 50
