"""The physical network around the hosts: what a lab builds, what a real site already has.

All physical NICs of all hosts plug into one physical switch fabric; each
VLAN id is one layer-2 segment on it (SW-3). Routers join segments so that
routed networks (a vMotion network in two subnets with its own gateway) work;
the controller is where vmknet talks to the hosts' management adapters from.

A router forwards only between networks of one traffic type (SEC-6): each
interface names the `traffic` of the network behind it, and `routes` lists
the pairs of traffic types the router may also forward between. Interfaces
without `traffic` form one untyped group that forwards among itself (a plain
router, as a file without traffic types always meant).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv6Interface
from typing import Annotated

from pydantic import Field, model_validator

from .arrays import ArrayName, StorageArray
from .base import VmknetModel

TrafficType = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")]


class RouterInterface(VmknetModel):
    vlan: int = Field(0, ge=0, le=4094)
    addresses: list[IPv4Interface | IPv6Interface]
    mtu: int = Field(9000, ge=1280, le=9000)
    traffic: TrafficType | None = None  # the traffic type of the network behind it


class Router(VmknetModel):
    interfaces: list[RouterInterface] = []
    routes: list[tuple[TrafficType, TrafficType]] = []  # traffic types also forwarded between

    @model_validator(mode="after")
    def _routes_name_interfaces(self) -> Router:
        declared = sorted({i.traffic for i in self.interfaces if i.traffic is not None})
        for pair in self.routes:
            for traffic in pair:
                if traffic not in declared:
                    raise ValueError(f"route {pair[0]} <-> {pair[1]}: no interface of this "
                                     f"router has traffic {traffic!r} (it has: "
                                     f"{', '.join(declared) or 'none'})")
        return self

    @property
    def typed(self) -> bool:
        """Some interface names its traffic type: the router then filters (SEC-6)."""
        return any(i.traffic is not None for i in self.interfaces)

    def forwards(self, a: int, b: int) -> bool:
        """Whether packets in on interface `a` may leave by interface `b` (SEC-6)."""
        ta, tb = self.interfaces[a].traffic, self.interfaces[b].traffic
        return ta == tb or (ta is not None and tb is not None
                            and ((ta, tb) in self.routes or (tb, ta) in self.routes))


class Controller(VmknetModel):
    vlan: int = Field(0, ge=0, le=4094)
    address: IPv4Interface
    gateway: IPv4Address | None = None
    # MGMT-2: seconds a host's agent waits to reach the controller after a change before it
    # reverts the change itself (vCenter's config.vpxd.network.rollbackTimeout, 30 s).
    rollbackTimeout: float = Field(30.0, gt=0, le=600)


class PhysicalNetwork(VmknetModel):
    routers: dict[str, Router] = {}
    controller: Controller | None = None
    storage_arrays: dict[ArrayName, StorageArray] = {}  # `storageArrays:` (STO-6)

    @model_validator(mode="after")
    def _arrays_apart(self) -> PhysicalNetwork:
        """STO-6: an array address is nobody else's, an IQN names one target in the lab."""
        if not self.storage_arrays:
            return self
        owners: dict[IPv4Address, str] = {}
        for name, router in self.routers.items():
            for iface in router.interfaces:
                for address in iface.addresses:
                    if isinstance(address, IPv4Interface):
                        owners[address.ip] = f"router {name}"
        if self.controller is not None:
            owners[self.controller.address.ip] = "the controller"
        iqns: dict[str, str] = {}
        for name, array in sorted(self.storage_arrays.items()):
            twice = _seen_twice(array)
            for address in array.addresses:
                other = owners.setdefault(address.ip, f"array {name}")
                if address.ip in twice:
                    raise ValueError(f"array {name}: address {address.ip} is declared twice "
                                     "(STO-6)")
                if other != f"array {name}":
                    raise ValueError(f"array {name}: address {address.ip} is also {other}'s "
                                     "(STO-6)")
            for iqn in array.iqns:
                other = iqns.setdefault(iqn, name)
                if other != name:
                    raise ValueError(f"array {name}: target {iqn} is also array {other}'s: "
                                     "an IQN names one target (STO-6)")
        return self


def _seen_twice(array: StorageArray) -> set[IPv4Address]:
    seen: set[IPv4Address] = set()
    twice: set[IPv4Address] = set()
    for address in array.addresses:
        (twice if address.ip in seen else seen).add(address.ip)
    return twice
