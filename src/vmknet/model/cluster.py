"""Clusters: a set of hosts with HA, vSAN and Fault Tolerance switched on or off.

vSAN's settings (`vsanConfig`, read when `vsan` is on): the capacity each member
contributes to the vsanDatastore, the repair delay after which a lost host's
components are rebuilt elsewhere (vSAN's `VSAN.ClomRepairDelay`, 60 minutes; shorter
here by default, so a lab shows it), and the witness host of a two-host cluster
(VSAN-3: it is reached over the adapters tagged vsanWitness).
"""

from __future__ import annotations

from pydantic import ByteSize, Field

from .base import VmknetModel


class VsanSettings(VmknetModel):
    capacity: ByteSize = Field(ByteSize(1 << 30), ge=1 << 20, le=1 << 40)  # per member host
    repair_delay: float = Field(60.0, gt=0, le=24 * 3600)  # seconds
    witness_host: str | None = None  # two-host clusters: the witness (not a member)


class Cluster(VmknetModel):
    ha: bool = False
    vsan: bool = False
    ft: bool = False
    hosts: list[str] = []
    vsan_config: VsanSettings = VsanSettings()  # read when `vsan` is on
