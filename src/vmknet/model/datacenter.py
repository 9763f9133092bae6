"""The datacenter: the whole desired state, the root of every model object."""

from __future__ import annotations

from .base import VmknetModel
from .cluster import Cluster
from .dvs import DistributedSwitch
from .host import Host
from .names import ClusterName, DvsName, HostName
from .physical import PhysicalNetwork


class Datacenter(VmknetModel):
    name: str = "Datacenter"
    clusters: dict[ClusterName, Cluster] = {}
    distributed_switches: dict[DvsName, DistributedSwitch] = {}
    hosts: dict[HostName, Host] = {}
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
