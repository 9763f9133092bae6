"""Teaming and failover policy of a switch or port group (SPEC section 1, SW-4)."""

from __future__ import annotations

from typing import Literal

from .base import VmknetModel

LoadBalancing = Literal["portid", "mac", "iphash", "explicit", "loadbased"]


class TeamingPolicy(VmknetModel):
    """Uplinks in neither `active` nor `standby` are unused: they never carry the traffic."""

    load_balancing: LoadBalancing = "portid"
    active: list[str] = []
    standby: list[str] = []
    failback: bool = True
    notify_switches: bool = True

    def unused(self, uplinks: list[str]) -> list[str]:
        return [u for u in uplinks if u not in self.active and u not in self.standby]
