"""VMkernel adapters (`vmkN`): a host's own L3 interfaces."""

from __future__ import annotations

import hashlib
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from .base import VmknetModel
from .services import DEFAULT_STACK, EXCLUSIVE_STACK_SERVICE, Service


def _address_text(value: object) -> object:
    # pydantic reads the YAML number 12345 as 0.0.48.57/32: an address is written as text.
    if isinstance(value, int | float):
        raise ValueError(f"write the address as text such as 198.18.0.11/24, not the "
                         f"number {value!r}")
    return value


V4Interface = Annotated[IPv4Interface, BeforeValidator(_address_text)]
V6Interface = Annotated[IPv6Interface, BeforeValidator(_address_text)]


class IPv4Config(VmknetModel):
    type: Literal["none", "static", "dhcp"] = "none"
    address: V4Interface | None = None  # address/prefix, static only
    gateway: IPv4Address | None = None  # per-adapter gateway override (PATH-7)


class IPv6Config(VmknetModel):
    addresses: list[V6Interface] = []
    autoconf: bool = False
    dhcpv6: bool = False
    gateway: IPv6Address | None = None  # per-adapter gateway override (PATH-7)


class Vmknic(VmknetModel):
    """On a standard port group (`portgroup`) or a distributed one (`dvs` + `dvportgroup`)."""

    portgroup: str | None = None
    dvs: str | None = None
    dvportgroup: str | None = None
    netstack: str = DEFAULT_STACK  # NS-4: fixed at creation
    mac: str | None = None
    mtu: int = Field(1500, ge=1280, le=9000)
    enabled: bool = True
    ipv4: IPv4Config = IPv4Config()
    ipv6: IPv6Config = IPv6Config()
    services: list[Service] = []

    @model_validator(mode="after")
    def _implied_service(self) -> Vmknic:
        # SVC-2 / SVC-3: an exclusive-stack adapter carries its stack's service implicitly.
        implied = EXCLUSIVE_STACK_SERVICE.get(self.netstack)
        if implied is not None and implied not in self.services:
            self.services = [implied, *self.services]
        return self

    def carries(self, service: Service) -> bool:
        return service in self.services


def derived_mac(host: str, name: str) -> str:
    """A stable VMware-OUI MAC (00:50:56) for an object without one, the same on every run."""
    digest = hashlib.sha256(f"{host}/{name}".encode()).digest()
    return f"00:50:56:{digest[0] & 0x3F:02x}:{digest[1]:02x}:{digest[2]:02x}"
