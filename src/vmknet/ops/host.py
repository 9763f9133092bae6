"""Hosts and clusters: add a host as ESXi installs it (SW-1), group hosts into clusters."""

from __future__ import annotations

from ipaddress import IPv4Interface

from ..errors import AlreadyExists, InvalidArgument, NotFound
from ..events import Event
from ..model import Cluster, Datacenter, names, new_host


def host_add(dc: Datacenter, name: str, *, nics: int = 4,
             management_ip: IPv4Interface | None = None) -> list[Event]:
    if name in dc.hosts:
        raise AlreadyExists(f"Host {name} already exists")
    names.require(names.HOST, name)  # SEC-5: the one host name rule
    try:
        dc.hosts[name] = new_host(nics, management_ip)
    except ValueError as err:
        raise InvalidArgument(str(err)) from None
    return []


def host_remove(dc: Datacenter, name: str) -> list[Event]:
    dc.host(name)
    del dc.hosts[name]
    for cluster in dc.clusters.values():
        if name in cluster.hosts:
            cluster.hosts.remove(name)
    for dvs in dc.distributed_switches.values():
        dvs.hosts.pop(name, None)
    return []


def cluster_add(dc: Datacenter, name: str, *, ha: bool = False, vsan: bool = False,
                ft: bool = False) -> list[Event]:
    if name in dc.clusters:
        raise AlreadyExists(f"Cluster {name} already exists")
    dc.clusters[name] = Cluster(ha=ha, vsan=vsan, ft=ft)
    return []


def cluster_remove(dc: Datacenter, name: str) -> list[Event]:
    if name not in dc.clusters:
        raise NotFound(f"Cluster {name} not found")
    del dc.clusters[name]
    return []


def cluster_set(dc: Datacenter, name: str, *, ha: bool | None = None, vsan: bool | None = None,
                ft: bool | None = None) -> list[Event]:
    if name not in dc.clusters:
        raise NotFound(f"Cluster {name} not found")
    cluster = dc.clusters[name]
    if ha is not None:
        cluster.ha = ha
    if vsan is not None:
        cluster.vsan = vsan
    if ft is not None:
        cluster.ft = ft
    return []


def cluster_host_add(dc: Datacenter, name: str, host: str) -> list[Event]:
    if name not in dc.clusters:
        raise NotFound(f"Cluster {name} not found")
    dc.host(host)
    found = dc.cluster_of(host)
    if found is not None:
        raise AlreadyExists(f"Host {host} is already in cluster {found[0]}")
    dc.clusters[name].hosts.append(host)
    return []


def cluster_host_remove(dc: Datacenter, name: str, host: str) -> list[Event]:
    if name not in dc.clusters or host not in dc.clusters[name].hosts:
        raise NotFound(f"Host {host} is not in cluster {name}")
    dc.clusters[name].hosts.remove(host)
    return []
