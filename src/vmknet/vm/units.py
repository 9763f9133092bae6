"""Sizes and rates as users write them: ``1GiB``, ``64MiB``, ``50MB/s`` (pure)."""

from __future__ import annotations

import re

from ..errors import InvalidArgument

PAGE_SIZE = 4096  # bytes: the guest page, as x86's base page
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


def parse_size(text: str) -> int:
    """``64MiB`` -> 67108864; plain numbers are bytes."""
    match = _NUMBER.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise InvalidArgument(f"Size {text!r}: use a number with B, KiB, MiB, GiB, KB, MB, GB")
    return int(float(match.group(1)) * _UNITS[unit])


def parse_rate(text: str) -> int:
    """``50MB/s`` -> 50000000 bytes per second (``/s`` optional)."""
    return parse_size(text.strip().removesuffix("/s"))


def memory_pages(size: int) -> int:
    """Guest memory is whole pages: at least one, sizes rounded up."""
    if size <= 0:
        raise InvalidArgument(f"Memory size {size}: must be positive")
    return -(-size // PAGE_SIZE)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover - the loop returns
