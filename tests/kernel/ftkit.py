"""Helpers of the FT kernel tests: a 4-host lab with FT logging adapters, polling.

esx01 and esx02: management (vmk0), vMotion (vmk1) and FT logging (vmk2, VLAN 50,
198.18.16.0/24). esx03 has no FT logging adapter (PATH-3 / SVC-5); esx04's is in
198.18.17.0/24 on VLAN 51 without a gateway: no path to anyone (NoPath); esx05 is a
third FT host (re-protection after a failover).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from ft_lab import lab_yaml  # the bench's lab files: one template for both

T = TypeVar("T")

FT_LAB = lab_yaml([("esx01", 11, "198.18.16.11", 50), ("esx02", 12, "198.18.16.12", 50),
                   ("esx03", 13, None, 50), ("esx04", 14, "198.18.17.14", 51),
                   ("esx05", 15, "198.18.16.15", 50)])


def wait_for(what: str, probe: Callable[[], T | None], limit: float) -> T:
    """`probe()` once it is not None (or truthy); AssertionError after `limit` s."""
    deadline = time.monotonic() + limit
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {limit} s")
        time.sleep(0.05)
