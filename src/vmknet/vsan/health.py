"""`vmknet vsan health`: vSAN's network health checks, by the names vSAN gives them.

- All hosts have a vSAN vmknic configured (REQ-3)
- vSAN: Basic (unicast) connectivity check: one echo from each node's vSAN adapter to
  every peer's vSAN address (the unicast agent list, VSAN-1)
- vSAN: MTU check (ping with large packet size): the same, don't-fragment, filling the
  sending adapter's MTU (9000 -> 8972 data bytes), as vmkping -d -s does
- vSAN cluster partition: the nodes' own views (membership.py) agree on one partition
  holding every node; a node that is down or alone is named
- Network latency check: the echo's round trip stays under LATENCY_MS

Each check is green, yellow or red with the host pairs or hosts it is about.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import VmknetError
from ..model import Datacenter, Service
from ..resolve import effective_adapters, resolve
from ..traffic.ping import vmkping
from . import config
from .objects import node_states

LATENCY_MS = 5.0  # vSAN's threshold between hosts of one site
ECHO_TIMEOUT = 0.5  # s
IP_ICMP = 28  # IPv4 and ICMP headers: data bytes = MTU - 28


@dataclass
class Check:
    name: str
    status: str  # green | yellow | red
    detail: str
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Echo:
    source: str
    target: str
    ok: bool
    rtt_ms: float | None
    error: str


def _echo(dc: Datacenter, lab: str, src: str, dst: str, svc: Service, large: bool) -> Echo:
    try:
        flow = resolve(dc, svc, src, dst)[0]
    except VmknetError as err:
        return Echo(src, dst, False, None, err.message)
    mtu = dc.host(src).vmknics[flow.source.vmknic].mtu
    size = mtu - IP_ICMP if large else 56
    try:
        got = vmkping(dc, lab, src, str(flow.target.address.ip), vmk=flow.source.vmknic,
                      df=large, size=size, count=1, timeout=ECHO_TIMEOUT, interval=0.0)
    except (VmknetError, OSError) as err:
        return Echo(src, dst, False, None, str(err))
    rtt = got.replies[0].rtt_ms if got.replies else None
    why = "" if got.ok else (got.errors[0] if got.errors else f"no reply in {ECHO_TIMEOUT} s")
    return Echo(src, dst, got.ok, rtt, f"{flow.source.vmknic} -> {flow.target.address.ip}"
                                       f"{' ' + why if why else ''} ({size} bytes)")


def _pairs(cv: config.ClusterView) -> list[tuple[str, str]]:
    return [(a, b) for a in cv.nodes for b in cv.nodes if a != b]


def _vmknics(dc: Datacenter, cv: config.ClusterView) -> Check:
    missing = [h for h in cv.members if not effective_adapters(dc, h, Service.VSAN)]
    if cv.witness_host and not effective_adapters(dc, cv.witness_host, Service.VSAN_WITNESS):
        missing.append(cv.witness_host)
    return Check("All hosts have a vSAN vmknic configured", "red" if missing else "green",
                 f"{len(cv.nodes) - len(missing)} of {len(cv.nodes)} hosts",
                 [f"{h}: no usable vSAN adapter (REQ-3)" for h in missing])


def _ping_check(name: str, echoes: list[Echo]) -> Check:
    bad = [e for e in echoes if not e.ok]
    return Check(name, "red" if bad else "green",
                 f"{len(echoes) - len(bad)} of {len(echoes)} host pairs",
                 [f"{e.source} -> {e.target}: {e.error}" for e in bad])


def _latency(echoes: list[Echo]) -> Check:
    slow = [e for e in echoes if e.ok and e.rtt_ms is not None and e.rtt_ms > LATENCY_MS]
    worst = max((e.rtt_ms for e in echoes if e.rtt_ms is not None), default=None)
    detail = f"worst {worst:.3f} ms (limit {LATENCY_MS:g} ms)" if worst is not None \
        else "no round trip measured"
    return Check("Network latency check", "yellow" if slow else "green", detail,
                 [f"{e.source} -> {e.target}: {e.rtt_ms:.3f} ms" for e in slow
                  if e.rtt_ms is not None])


def _partition(lab: str, cv: config.ClusterView) -> Check:
    states = node_states(lab, cv.nodes)
    groups: dict[tuple[str, ...], list[str]] = {}
    for host, rec in sorted(states.items()):
        groups.setdefault(tuple(rec.get("partition", [host])), []).append(host)
    down = [h for h in cv.nodes if h not in states]
    whole = len(groups) == 1 and not down and set(next(iter(groups))) == set(cv.nodes)
    problems = [f"{h}: vSAN node not running" for h in down]
    if not whole:
        problems += [f"partition {n}: {', '.join(p)} (seen by {', '.join(hs)})"
                     for n, (p, hs) in enumerate(sorted(groups.items()), 1)]
    return Check("vSAN cluster partition", "green" if whole else "red",
                 f"{len(groups)} partition{'s' if len(groups) != 1 else ''}, "
                 f"{len(states)} of {len(cv.nodes)} nodes up", problems)


def run(dc: Datacenter, lab: str, cluster: str) -> dict[str, Any]:
    cv = config.view(dc, cluster)
    pairs = _pairs(cv)
    with ThreadPoolExecutor(8) as pool:
        small = list(pool.map(lambda p: _echo(dc, lab, p[0], p[1],
                                              config.service_between(cv, *p), False), pairs))
        large = list(pool.map(lambda p: _echo(dc, lab, p[0], p[1],
                                              config.service_between(cv, *p), True), pairs))
    checks = [_vmknics(dc, cv),
              _ping_check("vSAN: Basic (unicast) connectivity check", small),
              _ping_check("vSAN: MTU check (ping with large packet size)", large),
              _partition(lab, cv), _latency(small)]
    order = {"green": 0, "yellow": 1, "red": 2}
    overall = max((c.status for c in checks), key=order.__getitem__)
    return {"cluster": cluster, "overall": overall, "checks": [asdict(c) for c in checks]}
