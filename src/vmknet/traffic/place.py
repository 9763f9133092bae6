"""Where an adapter lives in the kernel: its lab, its stack namespace, its addresses.

The traffic engines take a lab either as its name or as the lab object of
`vmknet.lab` (anything with a `name`), so they work before and after a lab
is bound to an inventory.
"""

from __future__ import annotations

from ipaddress import IPv4Interface, IPv6Interface
from typing import Protocol

from ..dataplane import naming
from ..model import Datacenter, Netstack
from ..reach import static_v4, static_v6


class NamedLab(Protocol):
    @property
    def name(self) -> str: ...


LabRef = str | NamedLab


def lab_name(lab: LabRef) -> str:
    return lab if isinstance(lab, str) else lab.name


def stack_ns(lab: LabRef, host: str, stack: str) -> str:
    """The namespace of one TCP/IP stack of one host (NS-2)."""
    return naming.stack_ns(lab_name(lab), host, stack)


def host_ns(lab: LabRef, host: str) -> str:
    """The host's switching plane: adapter bridges and uplink wires."""
    return naming.host_ns(lab_name(lab), host)


def adapter_ns(dc: Datacenter, lab: LabRef, host: str, vmk: str) -> str:
    return stack_ns(lab, host, dc.host(host).vmknics[vmk].netstack)


def adapter_addresses(dc: Datacenter, host: str, vmk: str) -> list[IPv4Interface | IPv6Interface]:
    """The static addresses the kernel holds for the adapter (what render puts there)."""
    h = dc.host(host)
    nic = h.vmknics[vmk]
    stack = h.netstacks.get(nic.netstack, Netstack())  # NS-7: render makes it with defaults
    v4 = static_v4(nic)
    found: list[IPv4Interface | IPv6Interface] = [v4] if v4 is not None else []
    return found + list(static_v6(nic, stack))
