"""`lab check`'s negative checks (SEC-6): what one traffic type must not reach, it does not.

From every stack of every host, towards every adapter of another host that
carries only other traffic types, and towards every gateway of a stack of
other traffic types, two probes run at once:

* an ICMP echo from the stack (its own routes pick the way, as any process
  on that stack would go);
* a TCP connect to the target service's port (SPEC section 10; vMotion 8000,
  NFC 902, management 443, ...). A SYN-ACK or a reset means the packet got
  there: reachable. A timeout, or an ICMP unreachable from a router, is
  isolation.

One result per pair: "isolated" passes, "reachable" fails. Only pairs the
topology separates are checked: a target in a subnet of the source stack is
on the source's own segments (SEC-1 lints that), and a pair that a router
forwards (same traffic type, a declared `routes:` pair, or an untyped
router) is meant to reach. Every probe is bounded by `timeout`; they run in
parallel, so the whole set costs about one timeout.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

from ..model import Datacenter, Service
from ..model.services import EXCLUSIVE_STACK_SERVICE, SERVICE_PORTS
from ..resolve import LABEL
from .icmp import ping_once
from .place import LabRef, adapter_addresses, stack_ns
from .result import Result

TIMEOUT = 0.3  # a reachable peer answers in a millisecond; a dropped packet never does
WORKERS = 96  # the probes mostly wait: many at once keep the whole set near one timeout
IPAddr = IPv4Address | IPv6Address
IPIface = IPv4Interface | IPv6Interface


@dataclass(frozen=True, slots=True)
class Pair:
    """One source stack and one target address that the topology keeps apart."""

    source: str  # "esx01/vmotion"
    ns: str
    target: str  # "esx02/vmk0 198.18.0.12" or "gateway 198.18.0.1"
    address: str
    traffic: str  # the target's traffic type, as lab check labels services
    port: int


def _stack_services(dc: Datacenter, host: str, stack: str) -> set[Service]:
    h = dc.host(host)
    if stack in EXCLUSIVE_STACK_SERVICE:  # SVC-2/SVC-3: the stack's one service
        return {EXCLUSIVE_STACK_SERVICE[stack]}
    return {s for v in h.vmknics.values() if v.netstack == stack and v.enabled
            for s in v.services}


def _adapter_services(dc: Datacenter, host: str, vmk: str) -> set[Service]:
    nic = dc.host(host).vmknics[vmk]
    return _stack_services(dc, host, nic.netstack) if nic.netstack in EXCLUSIVE_STACK_SERVICE \
        else set(nic.services)


def _stack_subnets(dc: Datacenter, host: str, stack: str) -> list[IPIface]:
    h = dc.host(host)
    return [a for vmk, v in h.vmknics.items() if v.netstack == stack and v.enabled
            for a in adapter_addresses(dc, host, vmk)]


def _routed(dc: Datacenter, sources: list[IPIface], target: IPAddr) -> bool:
    """Whether a router forwards from one of the source's subnets to the target's (SEC-6)."""
    for router in dc.physical.routers.values():
        near = [i for i, x in enumerate(router.interfaces)
                if any(s.network.overlaps(a.network) for a in x.addresses for s in sources
                       if s.version == a.version)]
        far = [i for i, x in enumerate(router.interfaces)
               if any(a.version == target.version and target in a.network for a in x.addresses)]
        if any(router.forwards(a, b) for a in near for b in far):
            return True
    return False


def _targets(dc: Datacenter, host: str) -> Iterator[tuple[set[Service], str, IPAddr]]:
    """(traffic types, label, address) of every adapter of `host` with a traffic type."""
    h = dc.host(host)
    for vmk in sorted(h.vmknics):
        services = _adapter_services(dc, host, vmk)
        if services and h.vmknics[vmk].enabled:
            for a in adapter_addresses(dc, host, vmk):
                yield services, f"{host}/{vmk} {a.ip}", a.ip


def _gateways(dc: Datacenter) -> Iterator[tuple[set[Service], str, IPAddr]]:
    seen: set[IPAddr] = set()
    for host in sorted(dc.hosts):
        for name, stack in sorted(dc.hosts[host].netstacks.items()):
            services = _stack_services(dc, host, name)
            for gw in (stack.gateway, stack.ipv6_gateway):
                if gw is not None and services and gw not in seen:
                    seen.add(gw)
                    yield services, f"gateway {gw}", gw


def _label(services: set[Service]) -> str:
    return "+".join(LABEL[s] for s in sorted(services, key=list(Service).index))


def _port(services: set[Service]) -> int:
    return SERVICE_PORTS[min(services, key=list(Service).index)][0]


def plan(dc: Datacenter, lab: LabRef) -> list[Pair]:
    """Every (stack, target) pair the topology isolates, in host and stack order."""
    pairs: list[Pair] = []
    gateways = list(_gateways(dc))
    for host in sorted(dc.hosts):
        stacks = sorted({v.netstack for v in dc.hosts[host].vmknics.values()})
        others = [t for other in sorted(dc.hosts) if other != host for t in _targets(dc, other)]
        for stack in stacks:
            mine, subnets = _stack_services(dc, host, stack), _stack_subnets(dc, host, stack)
            if not mine or not subnets:
                continue
            for services, target, address in others + gateways:
                if (services & mine or any(address in s.network for s in subnets)
                        or _routed(dc, subnets, address)):
                    continue
                pairs.append(Pair(f"{host}/{stack}", stack_ns(lab, host, stack), target,
                                  str(address), _label(services), _port(services)))
    return pairs


# -------------------------------------------------------------------- probes


def _icmp(pair: Pair, timeout: float) -> str | None:
    """None when no echo came back; else why the pair is reachable."""
    echo = ping_once(pair.ns, pair.address, timeout=timeout)
    return f"echo reply in {echo.replies[0].rtt_ms:.2f} ms" if echo.ok else None


def _tcp(pair: Pair, timeout: float) -> str | None:
    """None when the connect timed out or a router said unreachable; else what answered."""
    from ..dataplane.linux import netns  # netlink: only when probes really run

    family = socket.AF_INET6 if ":" in pair.address else socket.AF_INET
    sock = netns.in_netns(pair.ns, lambda: socket.socket(family, socket.SOCK_STREAM))
    with contextlib.closing(sock):
        sock.setblocking(False)
        code = sock.connect_ex((pair.address, pair.port))
        if code == errno.EINPROGRESS:
            _, ready, _ = select.select([], [sock], [], timeout)
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if ready else -1
    if code == 0:
        return f"tcp/{pair.port} connected"
    if code == errno.ECONNREFUSED:
        return f"tcp/{pair.port} reset by the target"
    return None


def _result(pair: Pair, icmp: str | None, tcp: str | None, timeout: float) -> Result:
    reached = [r for r in (icmp, tcp) if r is not None]
    detail = (f"reachable: {'; '.join(reached)}" if reached
              else f"isolated (no echo, tcp/{pair.port} no answer in {timeout:g} s)")
    return Result("isolation", pair.traffic, pair.source, pair.target, not reached, detail)


def run(pairs: Iterable[Pair], timeout: float = TIMEOUT,
        workers: int = WORKERS) -> list[Result]:
    todo = list(pairs)
    if not todo:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, 2 * len(todo)),
                            thread_name_prefix="vmknet-isolation") as pool:
        icmp = [pool.submit(_icmp, p, timeout) for p in todo]
        tcp = [pool.submit(_tcp, p, timeout) for p in todo]
        return [_result(p, i.result(), t.result(), timeout)
                for p, i, t in zip(todo, icmp, tcp, strict=True)]


def check(dc: Datacenter, lab: LabRef, timeout: float = TIMEOUT) -> tuple[list[Result], float]:
    start = time.monotonic()
    results = run(plan(dc, lab), timeout)
    return results, time.monotonic() - start
