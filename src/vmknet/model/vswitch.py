"""Standard switches (`vSwitchN`) and their port groups."""

from __future__ import annotations

from pydantic import Field, model_validator

from .base import VmknetModel
from .names import PortgroupName
from .teaming import TeamingPolicy

VLAN_TRUNK = 4095


class PortGroup(VmknetModel):
    vlan: int = Field(0, ge=0, le=VLAN_TRUNK, description="0 untagged, 1-4094 tagged, 4095 trunk")
    teaming: TeamingPolicy | None = None  # None: inherit the switch's policy


class StandardSwitch(VmknetModel):
    mtu: int = Field(1500, ge=1280, le=9000)
    uplinks: list[str] = []
    teaming: TeamingPolicy = TeamingPolicy()
    portgroups: dict[PortgroupName, PortGroup] = {}

    @model_validator(mode="after")
    def _uplinks_active_by_default(self) -> StandardSwitch:
        # ESXi puts every uplink of a switch in its active list unless told otherwise.
        if "teaming" not in self.model_fields_set and self.uplinks:
            self.teaming = TeamingPolicy(active=list(self.uplinks))
        return self

    def effective_teaming(self, portgroup: str) -> TeamingPolicy:
        override = self.portgroups[portgroup].teaming
        return override if override is not None else self.teaming
