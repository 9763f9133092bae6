"""The physical network around the hosts: what a lab builds, what a real site already has.

All physical NICs of all hosts plug into one physical switch fabric; each
VLAN id is one layer-2 segment on it (SW-3). Routers join segments so that
routed networks (a vMotion network in two subnets with its own gateway) work;
the controller is where vmknet talks to the hosts' management adapters from.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv6Interface

from pydantic import Field

from .base import VmknetModel


class RouterInterface(VmknetModel):
    vlan: int = Field(0, ge=0, le=4094)
    addresses: list[IPv4Interface | IPv6Interface]
    mtu: int = Field(9000, ge=1280, le=9000)


class Router(VmknetModel):
    interfaces: list[RouterInterface] = []


class Controller(VmknetModel):
    vlan: int = Field(0, ge=0, le=4094)
    address: IPv4Interface
    gateway: IPv4Address | None = None


class PhysicalNetwork(VmknetModel):
    routers: dict[str, Router] = {}
    controller: Controller | None = None
