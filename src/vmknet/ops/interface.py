"""`esxcli network ip interface ...`: VMkernel adapters, their addresses and tags."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from typing import Literal

from ..errors import AlreadyExists, InvalidArgument, NotFound, ResourceInUse, RuleViolation
from ..events import Event
from ..model import (
    BUILTIN_STACKS,
    EXCLUSIVE_STACK_SERVICE,
    Datacenter,
    IPv4Config,
    Netstack,
    Service,
    Vmknic,
)
from ..rules.exclusive import refuse_default_stack_tag, take_over_service
from ..rules.paths import netstack_path
from . import lookup


def add(dc: Datacenter, host: str, name: str, *, portgroup: str | None = None,
        dvs: str | None = None, dvportgroup: str | None = None, netstack: str | None = None,
        mtu: int | None = None, mac: str | None = None) -> list[Event]:
    h = dc.host(host)
    if name in h.vmknics:
        raise AlreadyExists(f"Vmknic {name} already exists on host {host}")
    stack = netstack or "defaultTcpipStack"
    events: list[Event] = []
    if stack not in h.netstacks:
        if stack not in BUILTIN_STACKS:
            raise NotFound(
                f"Netstack instance '{stack}' is not found: "
                f"add it with 'esxcli network ip netstack add -N {stack}'")
        h.netstacks[stack] = Netstack()  # NS-7: built-in stacks appear on demand
        events.append(Event("NS-7", netstack_path(host, stack),
                            f"Netstack {stack} instantiated on host {host} for {name}"))
    h.vmknics[name] = Vmknic(portgroup=portgroup, dvs=dvs, dvportgroup=dvportgroup,
                             netstack=stack, mtu=mtu or 1500, mac=mac)
    return events + take_over_service(host, h, stack)


def remove(dc: Datacenter, host: str, name: str) -> list[Event]:
    h = dc.host(host)
    lookup.vmknic(h, name)
    iscsi = h.storage.iscsi
    if iscsi is not None and name in iscsi.bound_vmknics:
        raise ResourceInUse(f"Vmknic {name} is bound to iSCSI adapter {iscsi.name}: "
                            f"remove it with 'esxcli iscsi networkportal remove -n {name}'")
    if any(f.vmknic == name for f in h.storage.fcoe):
        raise ResourceInUse(f"Vmknic {name} is dedicated to software FCoE")
    del h.vmknics[name]
    return []


def set_(dc: Datacenter, host: str, name: str, *, enabled: bool | None = None,
         mtu: int | None = None) -> list[Event]:
    vmk = lookup.vmknic(dc.host(host), name)
    if enabled is not None:
        vmk.enabled = enabled
    if mtu is not None:
        if not 1280 <= mtu <= 9000:
            raise InvalidArgument(f"MTU {mtu} is out of range: use 1280-9000 (SW-2)")
        vmk.mtu = mtu
    return []


def ipv4_set(dc: Datacenter, host: str, name: str, *,
             type: Literal["none", "static", "dhcp"],
             address: IPv4Address | None = None, netmask: IPv4Address | None = None,
             gateway: IPv4Address | None = None) -> list[Event]:
    vmk = lookup.vmknic(dc.host(host), name)
    if type == "static":
        if address is None or netmask is None:
            raise InvalidArgument("A static IPv4 configuration needs --ipv4 and --netmask")
        try:
            iface = IPv4Interface(f"{address}/{netmask}")
        except ValueError as err:
            raise InvalidArgument(f"Invalid netmask {netmask}: {err}") from None
        if gateway is not None and gateway not in iface.network:
            raise RuleViolation("NS-3", f"Gateway {gateway} is not in {name}'s subnet "
                                        f"{iface.network}")
        vmk.ipv4 = IPv4Config(type="static", address=iface, gateway=gateway)
    elif address is not None:
        raise InvalidArgument(f"An address needs --type static, not {type}")
    else:
        vmk.ipv4 = IPv4Config(type=type, gateway=gateway)
    return []


def ipv6_address_add(dc: Datacenter, host: str, name: str, address: IPv6Interface
                     ) -> list[Event]:
    vmk = lookup.vmknic(dc.host(host), name)
    if address in vmk.ipv6.addresses:
        raise AlreadyExists(f"Address {address} already exists on {name}")
    vmk.ipv6.addresses.append(address)
    return []


def ipv6_address_remove(dc: Datacenter, host: str, name: str, address: IPv6Interface
                        ) -> list[Event]:
    vmk = lookup.vmknic(dc.host(host), name)
    if address not in vmk.ipv6.addresses:
        raise NotFound(f"Address {address} not found on {name}")
    vmk.ipv6.addresses.remove(address)
    return []


def ipv6_set(dc: Datacenter, host: str, name: str, *, dhcpv6: bool | None = None,
             router_adv: bool | None = None, gateway: IPv6Address | None = None
             ) -> list[Event]:
    vmk = lookup.vmknic(dc.host(host), name)
    if dhcpv6 is not None:
        vmk.ipv6.dhcpv6 = dhcpv6
    if router_adv is not None:
        vmk.ipv6.autoconf = router_adv
    if gateway is not None:
        vmk.ipv6.gateway = gateway
    return []


def tag_add(dc: Datacenter, host: str, name: str, service: Service) -> list[Event]:
    h = dc.host(host)
    vmk = lookup.vmknic(h, name)
    if service in vmk.services:
        raise AlreadyExists(f"Vmknic {name} is already tagged with {service.tag}")
    refused = refuse_default_stack_tag(host, h, name, service)
    if refused is not None:
        raise refused
    vmk.services.append(service)
    return []


def tag_remove(dc: Datacenter, host: str, name: str, service: Service) -> list[Event]:
    vmk = lookup.vmknic(dc.host(host), name)
    if service not in vmk.services:
        raise NotFound(f"Vmknic {name} is not tagged with {service.tag}")
    if EXCLUSIVE_STACK_SERVICE.get(vmk.netstack) is service:
        rule = "SVC-2" if service is Service.VMOTION else "SVC-3"
        raise RuleViolation(rule, f"{service.tag} is implied on {name} by the {vmk.netstack} "
                                  "stack and cannot be removed")
    vmk.services.remove(service)
    return []
