"""Sizes and rates as users write them: ``1GiB``, ``64MiB``, ``50MB/s`` (pure)."""

from __future__ import annotations

import re

from ..errors import InvalidArgument

PAGE_SIZE = 4096  # bytes: the guest page, as x86's base page
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


# Sane maxima, checked before anything is allocated or written (a typo'd `1000000000TiB`
# must be an error, not a sparse file the filesystem refuses halfway or a huge mmap).
MAX_MEMORY = 64 * 2**30  # a lab VM's memory is real memory of this machine
MAX_DISK = 8 * 2**40  # below ext4's 16 TiB file limit, where datastores live
MAX_DISK_DATA = 64 * 2**30  # guest data actually written into a new disk
MAX_RATE = 100 * 10**9  # bytes/s: beyond any link a lab has (800 Gbit/s)
MAX_SIZE = 2**62  # any size at all


def parse_size(text: str, *, what: str = "Size", minimum: int = 0,
               maximum: int = MAX_SIZE) -> int:
    """``64MiB`` -> 67108864; plain numbers are bytes; `what` names the option in errors."""
    match = _NUMBER.fullmatch(text) if len(text) <= 64 else None
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise InvalidArgument(f"{what} {_quoted(text)}: use a number with B, KiB, MiB, GiB, "
                              "TiB, KB, MB, GB")
    value = float(match.group(1)) * _UNITS[unit]
    if not value <= maximum:  # also catches inf from a 300-digit number
        raise InvalidArgument(f"{what} {_quoted(text)}: at most {human_bytes(maximum)}")
    if value < minimum:
        raise InvalidArgument(f"{what} {_quoted(text)}: at least {human_bytes(minimum)}")
    return int(value)


def parse_rate(text: str, *, what: str = "Rate", minimum: int = 1,
               maximum: int = MAX_RATE) -> int:
    """``50MB/s`` -> 50000000 bytes per second (``/s`` optional)."""
    return parse_size(text.strip().removesuffix("/s"), what=what, minimum=minimum,
                      maximum=maximum)


def _quoted(text: str) -> str:
    return repr(text) if len(text) <= 40 else f"{text[:40]!r}..."


def memory_pages(size: int) -> int:
    """Guest memory is whole pages: at least one, sizes rounded up."""
    if size <= 0:
        raise InvalidArgument(f"Memory size {size}: must be positive")
    return -(-size // PAGE_SIZE)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - the loop returns
