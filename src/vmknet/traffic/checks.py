"""`lab check`: the health checks a vSAN/vMotion administrator runs by hand, all at once.

For every service some host of a group carries (management, vMotion,
provisioning, vSAN, ...) and every ordered host pair of the group (a cluster;
unclustered hosts form one group), each flow resolve() picks gets:

* ping          a small echo from the source adapter to the target adapter;
* large-packet  an echo with DF set of (smallest MTU along the pair - 28) bytes
                (- 48 for IPv6): `vmkping -d -s 8972`, REQ-3/REQ-6;

and every stack with a default gateway gets a gateway echo from the adapter
in the gateway's subnet (NS-3). Then the negative checks of `isolation`
(SEC-6): from every stack, the other traffic types' adapters on other hosts
and their gateways answer neither an echo nor a TCP connect. Planning is pure
(`plan`); `run` sends the echoes from a thread pool, so a 3-host lab is
checked in well under a second of wire time.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from ..dataplane import naming
from ..errors import VmknetError
from ..model import Datacenter, Service
from ..resolve import LABEL, Endpoint, Flow, carriers, resolve
from ..rules.topology import attachment
from . import isolation as negative
from .icmp import EchoResult, ping_once
from .place import LabRef, adapter_addresses, stack_ns
from .result import Result

SMALL = 56
IP_OVERHEAD = {4: 28, 6: 48}  # IP + ICMP headers: 20 + 8, 40 + 8
WORKERS = 32
SERVICES = tuple(Service)  # SPEC section 3 order


@dataclass(frozen=True, slots=True)
class Probe:
    """One echo to send: what it checks, and from where to where."""

    check: str  # "ping", "large-packet", "gateway"
    service: str  # the service's label; for a gateway, the stack
    source: str  # "esx01/vmk1 198.18.4.11"
    target: str  # "esx02/vmk1 198.18.4.12" or "gateway 198.18.4.1"
    ns: str
    source_ip: str
    device: str
    target_ip: str
    size: int
    df: bool


@dataclass(frozen=True, slots=True)
class Report:
    results: list[Result]
    seconds: float

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        n, bad = len(self.results), len(self.failed)
        return (f"{n} checks, {n - bad} passed, {bad} failed in {self.seconds:.2f} s")


# ------------------------------------------------------------------- planning


def groups(dc: Datacenter) -> list[list[str]]:
    """Hosts that must reach each other: each cluster, and the unclustered hosts together."""
    out: list[list[str]] = []
    clustered: set[str] = set()
    for name in sorted(dc.clusters):
        members = [h for h in dc.clusters[name].hosts if h in dc.hosts]
        clustered |= set(members)
        out.append(sorted(members))
    rest = sorted(set(dc.hosts) - clustered)
    return [g for g in [*out, rest] if len(g) > 1]


def services_of(dc: Datacenter, hosts: Sequence[str]) -> list[Service]:
    """Services at least one host of the group has adapters for (management always)."""
    return [s for s in SERVICES if s is Service.MANAGEMENT
            or any(carriers(dc.hosts[h], s) for h in hosts)]


def _end(e: Endpoint) -> str:
    return f"{e.host}/{e.vmknic} {e.address.ip}"


def path_mtu(dc: Datacenter, flow: Flow) -> int:
    """Smallest MTU along the pair: both adapters, their switches, and routers when routed."""
    mtus: list[int] = []
    for end in (flow.source, flow.target):
        h = dc.host(end.host)
        vmk = h.vmknics[end.vmknic]
        mtus.append(vmk.mtu)
        att = attachment(dc, end.host, h, vmk)
        if att is not None:
            mtus.append(att.switch_mtu)
    if flow.next_hop is not None:
        on_path: list[IPv4Address | IPv6Address] = [flow.next_hop, flow.target.address.ip]
        for router in dc.physical.routers.values():
            mtus += [i.mtu for i in router.interfaces
                     if any(a.version == ip.version and ip in a.network
                            for a in i.addresses for ip in on_path)]
    return min(mtus)


def flow_probes(dc: Datacenter, lab: LabRef, flow: Flow) -> list[Probe]:
    src, dst = flow.source, flow.target
    ns = stack_ns(lab, src.host, src.netstack)
    label = LABEL[flow.service]
    big = path_mtu(dc, flow) - IP_OVERHEAD[src.address.version]
    common = (label, _end(src), _end(dst), ns, str(src.address.ip),
              naming.adapter_ifname(src.vmknic), str(dst.address.ip))
    return [Probe("ping", *common, SMALL, False), Probe("large-packet", *common, big, True)]


def gateway_probes(dc: Datacenter, lab: LabRef, host: str) -> tuple[list[Probe], list[Result]]:
    """Per stack of `host` with a gateway: an echo from the adapter in the gateway's subnet."""
    h = dc.host(host)
    probes: list[Probe] = []
    failed: list[Result] = []
    for stack_name in sorted(h.netstacks):
        stack = h.netstacks[stack_name]
        gateways = [g for g in (stack.gateway, stack.ipv6_gateway if stack.ipv6_enabled else None)
                    if g is not None]
        for gw in gateways:
            found = [(vmk, a) for vmk in sorted(h.vmknics, key=naming.natural_key)
                     if h.vmknics[vmk].netstack == stack_name and h.vmknics[vmk].enabled
                     for a in adapter_addresses(dc, host, vmk)
                     if a.version == gw.version and gw in a.network]
            if not found:
                failed.append(Result("gateway", stack_name, host, f"gateway {gw}", False,
                                     f"no enabled adapter of {stack_name} in {gw}'s subnet "
                                     "(NS-3)"))
                continue
            vmk, address = found[0]
            probes.append(Probe("gateway", stack_name, f"{host}/{vmk} {address.ip}",
                                f"gateway {gw}", stack_ns(lab, host, stack_name),
                                str(address.ip), naming.adapter_ifname(vmk), str(gw), SMALL,
                                False))
    return probes, failed


def plan(dc: Datacenter, lab: LabRef) -> tuple[list[Probe], list[Result]]:
    """Every echo to send, and the checks that already failed (no path at all)."""
    probes: list[Probe] = []
    failed: list[Result] = []
    for group in groups(dc):
        for service in services_of(dc, group):
            for src, dst in itertools.permutations(group, 2):
                try:
                    flows = resolve(dc, service, src, dst)
                except VmknetError as err:
                    failed.append(Result("path", LABEL[service], src, dst, False,
                                         f"{err.code}: {err.message}"))
                    continue
                for flow in flows:
                    probes += flow_probes(dc, lab, flow)
    for host in sorted(dc.hosts):
        more, bad = gateway_probes(dc, lab, host)
        probes += more
        failed += bad
    return probes, failed


# -------------------------------------------------------------------- running


def _send(probe: Probe, timeout: float) -> Result:
    echo: EchoResult | None = None
    for _ in range(2):  # a second try absorbs a first neighbour lookup or STP settling
        echo = ping_once(probe.ns, probe.target_ip, source=probe.source_ip, device=probe.device,
                         size=probe.size, df=probe.df, timeout=timeout)
        if echo.ok or echo.errors:
            break
    assert echo is not None
    detail = f"{echo.replies[0].rtt_ms:.3f} ms" if echo.ok else echo.why
    if not echo.ok and probe.df:
        detail += f" ({probe.size} bytes with DF)"
    return Result(probe.check, probe.service, probe.source, probe.target, echo.ok, detail,
                  probe.size)


def run(probes: Iterable[Probe], timeout: float = 1.0, workers: int = WORKERS) -> list[Result]:
    todo = list(probes)
    if not todo:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(todo)),
                            thread_name_prefix="vmknet-check") as pool:
        return list(pool.map(lambda p: _send(p, timeout), todo))


_ORDER = {"gateway": 1, "isolation": 2}


def check(dc: Datacenter, lab: LabRef, timeout: float = 1.0, *,
          isolation: bool = True) -> Report:
    start = time.monotonic()
    probes, failed = plan(dc, lab)
    results = failed + run(probes, timeout)
    if isolation:
        results += negative.run(negative.plan(dc, lab), min(timeout, negative.TIMEOUT))
    results.sort(key=lambda r: _ORDER.get(r.check, 0))  # stable: plan order otherwise
    return Report(results, time.monotonic() - start)
