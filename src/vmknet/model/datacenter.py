"""The datacenter: the whole desired state, the root of every model object."""

from __future__ import annotations

from .base import VmknetModel
from .cluster import Cluster
from .dvs import DistributedSwitch
from .host import Host
from .physical import PhysicalNetwork


class Datacenter(VmknetModel):
    name: str = "Datacenter"
    clusters: dict[str, Cluster] = {}
    distributed_switches: dict[str, DistributedSwitch] = {}
    hosts: dict[str, Host] = {}
    physical: PhysicalNetwork = PhysicalNetwork()

    def host(self, name: str) -> Host:
        from ..errors import NotFound

        try:
            return self.hosts[name]
        except KeyError:
            raise NotFound(
                f"Host '{name}' not found: add it with 'vmknet host add {name}'", host=name
            ) from None

    def cluster_of(self, host: str) -> tuple[str, Cluster] | None:
        for name, cluster in self.clusters.items():
            if host in cluster.hosts:
                return name, cluster
        return None
