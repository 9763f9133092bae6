"""Distributed switches: one switch spanning many hosts (SW-5)."""

from __future__ import annotations

from pydantic import Field, model_validator

from .base import VmknetModel
from .names import DvPortgroupName, HostName, NicName, UplinkName
from .teaming import TeamingPolicy
from .vswitch import VLAN_TRUNK


class DvPortGroup(VmknetModel):
    vlan: int = Field(0, ge=0, le=VLAN_TRUNK)
    teaming: TeamingPolicy | None = None  # None: the switch's default policy


class DistributedSwitch(VmknetModel):
    mtu: int = Field(1500, ge=1280, le=9000)
    uplinks: list[UplinkName] = ["Uplink 1", "Uplink 2"]
    teaming: TeamingPolicy = TeamingPolicy(active=["Uplink 1", "Uplink 2"])
    # host name -> {uplink name -> vmnic}
    hosts: dict[HostName, dict[UplinkName, NicName]] = {}
    portgroups: dict[DvPortgroupName, DvPortGroup] = {}

    @model_validator(mode="after")
    def _uplinks_active_by_default(self) -> DistributedSwitch:
        # Every uplink is active unless a teaming policy says otherwise (as vSphere creates it).
        if "teaming" not in self.model_fields_set:
            self.teaming = TeamingPolicy(active=list(self.uplinks))
        return self

    def effective_teaming(self, portgroup: str) -> TeamingPolicy:
        override = self.portgroups[portgroup].teaming
        return override if override is not None else self.teaming
