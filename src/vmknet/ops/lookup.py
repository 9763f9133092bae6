"""Finding objects by name, with the NotFound messages ESXi prints."""

from __future__ import annotations

from ..errors import NotFound
from ..model import Datacenter, DistributedSwitch, Host, Netstack, StandardSwitch, Vmknic


def vmknic(host: Host, name: str) -> Vmknic:
    try:
        return host.vmknics[name]
    except KeyError:
        raise NotFound(f"Vmknic {name} not found") from None


def netstack(host: Host, name: str) -> Netstack:
    try:
        return host.netstacks[name]
    except KeyError:
        raise NotFound(f"Netstack instance '{name}' is not found") from None


def vswitch(host: Host, name: str) -> StandardSwitch:
    try:
        return host.vswitches[name]
    except KeyError:
        raise NotFound(f"Virtual switch {name} not found") from None


def dvs(dc: Datacenter, name: str) -> DistributedSwitch:
    try:
        return dc.distributed_switches[name]
    except KeyError:
        raise NotFound(f"Distributed switch {name} not found") from None


def nic(host: Host, name: str) -> None:
    if name not in host.nics:
        raise NotFound(f"Physical NIC {name} not found")
