"""The test tree itself: pytest imports test files by basename (no packages here), so two
files of one name in tests/unit and tests/kernel break collection of the whole suite."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_files_share_a_basename() -> None:
    names = Counter(p.name for p in TESTS.rglob("*.py"))
    assert not [n for n, k in names.items() if k > 1 and n != "__init__.py"]
