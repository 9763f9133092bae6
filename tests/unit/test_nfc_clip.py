"""clip() by binary search gives exactly what a scan over every extent gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vmknet.nfc.files import clip


def scan(ranges: list[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    out = []
    for off, length in ranges:
        lo, hi = max(off, start), min(off + length, end)
        if hi > lo:
            out.append((lo, hi - lo))
    return out


def extents(gaps_and_lengths: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, pos = [], 0
    for gap, length in gaps_and_lengths:
        pos += gap
        out.append((pos, length))
        pos += length
    return out


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(1, 50)), max_size=40),
       st.integers(0, 3000), st.integers(0, 500))
def test_clip_matches_a_full_scan(parts: list[tuple[int, int]], start: int, width: int) -> None:
    ranges = extents(parts)
    assert clip(ranges, start, start + width) == scan(ranges, start, start + width)
