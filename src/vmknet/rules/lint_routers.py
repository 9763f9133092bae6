"""SEC-6: a router that forwards between management and vMotion or provisioning.

vMotion and provisioning carry VM memory and disk contents, unencrypted in
VMware unless encryption is asked for (SEC-1); VMware's guidance is to keep
them on networks that include only the ESXi hosts. A router that forwards
them to the management network (where vCenter, administrators and often
whole office networks are) undoes that isolation on the wire.

What a router's interface serves is read from the adapters, not from its
`traffic:` label: an interface serves a service when an adapter carrying it
(after EX-1..5, SVC-2/3) has an address in one of the interface's subnets.
So a plain router without traffic types (it forwards between all its
interfaces) is flagged as much as one whose `routes:` joins the two.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address

from ..model import Router, Service
from .lint_base import Adapter, Context, Finding, finding, names

RESTRICTED = (Service.VMOTION, Service.PROVISIONING)
_SHOWN = {Service.MANAGEMENT: "management", Service.VMOTION: "vMotion",
          Service.PROVISIONING: "provisioning"}


def check_routed_to_management(ctx: Context) -> Iterator[Finding]:
    for name in sorted(ctx.dc.physical.routers):
        router = ctx.dc.physical.routers[name]
        served = _served(ctx, router)
        for a in range(len(router.interfaces)):
            for b in range(len(router.interfaces)):
                if a == b or not router.forwards(a, b) or not router.forwards(b, a):
                    continue
                for service in RESTRICTED:
                    mgmt, other = served[a][Service.MANAGEMENT], served[b][service]
                    if mgmt and other:
                        yield _finding(name, router, a, b, service, mgmt, other)


def _served(ctx: Context, router: Router) -> list[dict[Service, list[str]]]:
    """Per interface: service -> adapters (host/vmk) in one of its subnets."""
    served: list[dict[Service, list[str]]] = [defaultdict(list) for _ in router.interfaces]
    for host in sorted(ctx.adapters):
        for service in (Service.MANAGEMENT, *RESTRICTED):
            for adapter in ctx.usable(host, service):
                for i in _interfaces_of(router, adapter):
                    served[i][service].append(adapter.label)
    return served


def _interfaces_of(router: Router, adapter: Adapter) -> list[int]:
    ips: list[IPv4Address | IPv6Address] = [x.ip for x in adapter.addresses]
    return [i for i, iface in enumerate(router.interfaces)
            if any(ip.version == net.version and ip in net.network
                   for net in iface.addresses for ip in ips)]


def _finding(name: str, router: Router, a: int, b: int, service: Service, mgmt: list[str],
             other: list[str]) -> Finding:
    ia, ib = router.interfaces[a], router.interfaces[b]
    why = (f"routes [[{ia.traffic}, {ib.traffic}]]" if ia.traffic != ib.traffic
           else "its interfaces have no traffic types" if ia.traffic is None
           else f"both interfaces have traffic {ia.traffic}")
    hint = (f"Remove the route [{ia.traffic}, {ib.traffic}] from {name}"
            if ia.traffic != ib.traffic else
            f"Give each interface of {name} the traffic type of its network (traffic: "
            f"management, traffic: {service.value}) and declare no route between them")
    return finding(
        "SEC-6", "warning", f"physical/routers/{name}/interfaces/{b}",
        f"Router {name} forwards {_SHOWN[service]} (VLAN {ib.vlan}: {names(other, 3)}) to "
        f"management (VLAN {ia.vlan}: {names(mgmt, 3)}) because {why}",
        f"{hint}: {_SHOWN[service]} then reaches only its own hosts")
