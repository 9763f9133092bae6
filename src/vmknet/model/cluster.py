"""Clusters: a set of hosts with HA, vSAN and Fault Tolerance switched on or off."""

from __future__ import annotations

from .base import VmknetModel


class Cluster(VmknetModel):
    ha: bool = False
    vsan: bool = False
    ft: bool = False
    hosts: list[str] = []
