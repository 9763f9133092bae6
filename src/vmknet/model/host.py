"""Hosts (ESXi hosts): NICs, standard switches, netstacks, VMkernel adapters, storage."""

from __future__ import annotations

from ipaddress import IPv4Interface

from pydantic import Field, model_validator

from .base import VmknetModel
from .names import NetstackName, NicName, VmknicName, VswitchName
from .netstack import Netstack
from .pnic import PhysicalNic, default_nics
from .services import BUILTIN_STACKS, DEFAULT_STACK, Service
from .storage import Storage
from .teaming import TeamingPolicy
from .vmknic import IPv4Config, Vmknic
from .vswitch import PortGroup, StandardSwitch

MANAGEMENT_PORTGROUP = "Management Network"


class Host(VmknetModel):
    nics: dict[NicName, PhysicalNic] = Field(default_factory=default_nics)
    vswitches: dict[VswitchName, StandardSwitch] = {}
    netstacks: dict[NetstackName, Netstack] = Field(
        default_factory=lambda: {DEFAULT_STACK: Netstack()})
    vmknics: dict[VmknicName, Vmknic] = {}
    storage: Storage = Storage()

    @model_validator(mode="after")
    def _builtin_stacks_on_demand(self) -> Host:
        # NS-7: `vmotion` and `vSphereProvisioning` exist as soon as an adapter uses them,
        # so a file need not declare them; custom stacks must be declared (NotFound).
        for vmk in self.vmknics.values():
            if vmk.netstack in BUILTIN_STACKS and vmk.netstack not in self.netstacks:
                self.netstacks[vmk.netstack] = Netstack()
        return self

    def vmknics_on(self, netstack: str) -> list[str]:
        return [name for name, vmk in self.vmknics.items() if vmk.netstack == netstack]

    def vmknics_with(self, service: Service) -> list[str]:
        return [name for name, vmk in self.vmknics.items() if service in vmk.services]


def new_host(nics: int = 4, management_ip: IPv4Interface | None = None) -> Host:
    """SW-1: a host as ESXi installs it.

    `vSwitch0` with uplink `vmnic0`, port group `Management Network`, `vmk0` on
    the default stack tagged Management, `nics` physical NICs at 10000 Mbit/s.
    """
    if nics < 1:
        raise ValueError("a host needs at least one physical NIC (vmnic0) for vSwitch0")
    ipv4 = IPv4Config(type="static", address=management_ip) if management_ip else IPv4Config()
    return Host(
        nics=default_nics(nics),
        vswitches={
            "vSwitch0": StandardSwitch(
                uplinks=["vmnic0"],
                teaming=TeamingPolicy(active=["vmnic0"]),
                portgroups={MANAGEMENT_PORTGROUP: PortGroup()},
            )
        },
        vmknics={
            "vmk0": Vmknic(
                portgroup=MANAGEMENT_PORTGROUP, ipv4=ipv4, services=[Service.MANAGEMENT]
            )
        },
    )
