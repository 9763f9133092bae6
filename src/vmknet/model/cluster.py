"""Clusters: a set of hosts with HA, vSAN and Fault Tolerance switched on or off.

HA's settings keep vSphere's names (`ClusterDasConfigInfo`): the isolation
response (`none` leaves the VMs powered on, `powerOff`, `shutdown`), the
restart priority (`disabled`, `lowest` .. `highest`, default `medium`) with
per-VM overrides, admission control, and the `das.*` advanced options that
vmknet reads (`das.isolationaddress0..9`, `das.usedefaultisolationaddress`,
`das.heartbeatdsperhost`); any other `das.*` key is refused, so a typo is not
silently ignored.

vSAN's settings (`vsanConfig`, read when `vsan` is on): the capacity each member
contributes to the vsanDatastore, the repair delay after which a lost host's
components are rebuilt elsewhere (vSAN's `VSAN.ClomRepairDelay`, 60 minutes; shorter
here by default, so a lab shows it), and the witness host of a two-host cluster
(VSAN-3: it is reached over the adapters tagged vsanWitness).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import ByteSize, Field, field_validator

from .base import VmknetModel

IsolationResponse = Literal["none", "powerOff", "shutdown"]
RestartPriority = Literal["disabled", "lowest", "low", "medium", "high", "highest"]
PRIORITY_ORDER: tuple[RestartPriority, ...] = ("highest", "high", "medium", "low", "lowest")
ISOLATION_ADDRESS = re.compile(r"das\.isolationaddress[0-9]")
DEFAULT_HB_DATASTORES = 2  # das.heartbeatdsperhost's default in vSphere
MAX_HB_DATASTORES = 5  # vSphere's upper bound for das.heartbeatdsperhost


def _bool_text(value: str) -> bool | None:
    return {"true": True, "false": False}.get(value.strip().lower())


def _check_option(key: str, value: str) -> str | None:
    """Why the advanced option is refused, or None."""
    if ISOLATION_ADDRESS.fullmatch(key):
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return f"{key} must be an IP address, not {value!r}"
        return None
    if key == "das.usedefaultisolationaddress":
        return None if _bool_text(value) is not None else f"{key} must be true or false"
    if key == "das.heartbeatdsperhost":
        ok = value.isdigit() and DEFAULT_HB_DATASTORES <= int(value) <= MAX_HB_DATASTORES
        return None if ok else (f"{key} must be {DEFAULT_HB_DATASTORES} to "
                                f"{MAX_HB_DATASTORES} (vSphere's range)")
    return f"Unknown HA advanced option {key!r} (vmknet reads das.isolationaddress0..9, " \
           "das.usedefaultisolationaddress, das.heartbeatdsperhost)"


class AdmissionControl(VmknetModel):
    """vSphere's percentage policy (`ClusterFailoverResourcesAdmissionControlPolicy`), on
    memory: this share of the cluster's memory stays free for failover. A lab host has no
    memory of its own, so `host_memory_mib` says what each one counts as."""

    enabled: bool = True
    memory_failover_percent: int = Field(25, ge=0, le=100)
    host_memory_mib: int = Field(4096, ge=1, le=1 << 24)


class HaSettings(VmknetModel):
    isolation_response: IsolationResponse = "none"  # vSphere 6+: leave powered on
    restart_priority: RestartPriority = "medium"
    vm_restart_priority: dict[str, RestartPriority] = {}  # per-VM overrides
    admission_control: AdmissionControl = AdmissionControl()
    options: dict[str, str] = {}  # das.* advanced options

    @field_validator("options")
    @classmethod
    def _known_options(cls, options: dict[str, str]) -> dict[str, str]:
        for key, value in options.items():
            why = _check_option(key, str(value))
            if why is not None:
                raise ValueError(why)
        return options

    def isolation_addresses(self) -> list[str]:
        return [self.options[k] for k in sorted(self.options) if ISOLATION_ADDRESS.fullmatch(k)]

    def use_default_isolation_address(self) -> bool:
        return _bool_text(self.options.get("das.usedefaultisolationaddress", "true")) is not False

    def heartbeat_datastores(self) -> int:
        return int(self.options.get("das.heartbeatdsperhost", DEFAULT_HB_DATASTORES))

    def priority(self, vm: str) -> RestartPriority:
        return self.vm_restart_priority.get(vm, self.restart_priority)


class VsanSettings(VmknetModel):
    capacity: ByteSize = Field(ByteSize(1 << 30), ge=1 << 20, le=1 << 40)  # per member host
    repair_delay: float = Field(60.0, gt=0, le=24 * 3600)  # seconds
    witness_host: str | None = None  # two-host clusters: the witness (not a member)


class Cluster(VmknetModel):
    ha: bool = False
    vsan: bool = False
    ft: bool = False
    hosts: list[str] = []
    das: HaSettings = HaSettings()  # vSphere's dasConfig: read when `ha` is on
    vsan_config: VsanSettings = VsanSettings()  # read when `vsan` is on
