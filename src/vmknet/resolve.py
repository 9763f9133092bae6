"""The one path chooser: which adapter pairs carry a service between two hosts (SPEC section 5).

Every traffic engine and every lint check asks `resolve`; nothing else picks
adapters. A call touches the two hosts it names and nothing else, so it
costs the same in a 3-host lab and a 1000-host datacenter.

Which adapters an end offers (`effective_adapters`):

====================== ============================================================
vMotion (PATH-1, EX-5) `vmotion`-stack adapters if any, else default-stack ones tagged
provisioning (PATH-2)  `vSphereProvisioning`-stack, else tagged, else management
FT logging (PATH-3)    tagged adapters
vSAN witness (PATH-5)  tagged, else vSAN adapters
replication (PATH-4)   tagged, else management; the replication server (the
                       target of `vSphereReplication`, the source of
                       `vSphereReplicationNFC`) uses its management adapters
others                 tagged adapters
====================== ============================================================

Only enabled adapters with a static address carry anything, and adapters on
custom stacks never carry a tagged service (SVC-4). Whether a pair can talk
is decided by `reach` (subnet, VLAN, routes, gateway override).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

from .errors import InvalidArgument, NoPath, RuleViolation
from .model import DEFAULT_STACK, EXCLUSIVE_STACK_SERVICE, Datacenter, Host, Service
from .reach import Reach, Side, Unreachable, has_address, reach, side

__all__ = ["Endpoint", "Flow", "can_reach", "carriers", "effective_adapters", "resolve"]

S = Service

# PATH-4: the replication server plays management on its side of the flow.
_ROLES: dict[Service, tuple[Service, Service]] = {
    S.REPLICATION: (S.REPLICATION, S.MANAGEMENT),
    S.REPLICATION_NFC: (S.MANAGEMENT, S.REPLICATION_NFC),
}
_FALLBACK: dict[Service, tuple[Service, str]] = {
    S.PROVISIONING: (S.MANAGEMENT, "PATH-2"),
    S.REPLICATION: (S.MANAGEMENT, "PATH-4"),
    S.REPLICATION_NFC: (S.MANAGEMENT, "PATH-4"),
    S.VSAN_WITNESS: (S.VSAN, "PATH-5"),
}
RULE: dict[Service, str] = {
    S.VMOTION: "PATH-1", S.PROVISIONING: "PATH-2", S.FT_LOGGING: "PATH-3",
    S.REPLICATION: "PATH-4", S.REPLICATION_NFC: "PATH-4", S.VSAN: "PATH-5",
    S.VSAN_WITNESS: "PATH-5", S.MANAGEMENT: "PATH-6",
}
LABEL: dict[Service, str] = {
    S.MANAGEMENT: "management", S.VMOTION: "vMotion", S.PROVISIONING: "provisioning",
    S.FT_LOGGING: "FT logging", S.REPLICATION: "vSphere Replication",
    S.REPLICATION_NFC: "vSphere Replication NFC", S.VSAN: "vSAN", S.VSAN_WITNESS: "vSAN witness",
    S.BACKUP_NFC: "backup NFC", S.NVME_TCP: "NVMe/TCP",
}
_MAX_WHYS = 4  # a NoPath message stays one readable line


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    vmknic: str
    netstack: str
    address: IPv4Interface | IPv6Interface


@dataclass(frozen=True, slots=True)
class Flow:
    service: Service
    source: Endpoint
    target: Endpoint
    next_hop: IPv4Address | IPv6Address | None  # None = on-link (same subnet)
    reason: str  # one line: why this pair and this next hop


@dataclass(frozen=True, slots=True)
class _Candidate:
    side: Side
    note: str | None  # set when the adapter was chosen by a fallback


def natural_key(name: str) -> tuple[str | int, ...]:
    """vmk2 before vmk10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def carriers(host: Host, service: Service) -> list[str]:
    """Adapters configured for `service`, before fallbacks and usability (EX-1..5, SVC-4)."""
    for stack, svc in EXCLUSIVE_STACK_SERVICE.items():
        if svc is service and host.vmknics_on(stack):
            return sorted(host.vmknics_on(stack), key=natural_key)
    # SVC-1/SVC-4: tags count on the default stack only; exclusive stacks carry one service.
    names = [n for n, v in host.vmknics.items()
             if v.netstack == DEFAULT_STACK and v.carries(service)]
    return sorted(names, key=natural_key)


def usable(host: Host, name: str) -> bool:
    """Disabled adapters and adapters without a static address carry nothing."""
    vmk = host.vmknics[name]
    stack = host.netstacks.get(vmk.netstack)
    return vmk.enabled and stack is not None and has_address(vmk, stack)


def effective_adapters(dc: Datacenter, host: str, service: Service) -> list[tuple[str, str]]:
    """[(vmknic, reason)] that carry `service` on `host`, after its fallbacks; [] if none."""
    h = dc.host(host)
    own = _own(h, service)
    if own or service not in _FALLBACK:
        return own
    fallback, rule = _FALLBACK[service]
    note = f"fallback to {LABEL[fallback]} ({rule}): no usable {service.tag} adapter"
    return [(name, note) for name, _ in _own(h, fallback)]


def _own(host: Host, service: Service) -> list[tuple[str, str]]:
    names = carriers(host, service)
    stack = host.vmknics[names[0]].netstack if names else DEFAULT_STACK
    reason = f"on the {stack} stack" if stack != DEFAULT_STACK else f"tagged {service.tag}"
    return [(n, reason) for n in names if usable(host, n)]


def resolve(dc: Datacenter, service: Service, source: str, target: str) -> list[Flow]:
    """The adapter pairs carrying `service` from `source` to `target`, striped (PATH-1)."""
    if source == target:
        raise InvalidArgument(f"Source and target are both {source}: pick two different hosts")
    src_role, dst_role = _ROLES.get(service, (service, service))
    sources = _end(dc, source, src_role, service)
    targets = _end(dc, target, dst_role, service)
    flows, whys = _flows(service, sources, targets)
    if flows:
        return flows
    if service is S.PROVISIONING and sources[0].note is None:
        return _provisioning_fallback(dc, source, target, sources, targets, whys)
    raise _no_path(service, source, target, whys)


def can_reach(
    dc: Datacenter, src_host: str, src_vmk: str, dst_host: str, dst_vmk: str
) -> tuple[IPv4Address | IPv6Address | None, str] | None:
    """(next hop, reason) when the two adapters can talk both ways, else None."""
    result = reach_between(dc, src_host, src_vmk, dst_host, dst_vmk)
    return (result.next_hop, result.why) if isinstance(result, Reach) else None


def reach_between(
    dc: Datacenter, src_host: str, src_vmk: str, dst_host: str, dst_vmk: str
) -> Reach | Unreachable:
    """Like `can_reach`, keeping the why of an unreachable pair."""
    a = side(dc, src_host, dc.host(src_host), src_vmk)
    return reach(a, side(dc, dst_host, dc.host(dst_host), dst_vmk))


def _end(dc: Datacenter, host: str, role: Service, service: Service) -> list[_Candidate]:
    chosen = effective_adapters(dc, host, role)
    if not chosen:
        raise _missing(dc.host(host), host, role, service)
    h = dc.host(host)
    server = role is not service  # PATH-4: the replication server's management side
    return [
        _Candidate(side(dc, host, h, name), _note(reason, server, host, name))
        for name, reason in chosen
    ]


def _note(reason: str, server: bool, host: str, name: str) -> str | None:
    if server:
        return f"{host}/{name} is the replication server's management adapter (PATH-4)"
    return f"{host}/{name} is {reason}" if reason.startswith("fallback") else None


def _missing(h: Host, host: str, role: Service, service: Service) -> Exception:
    idle = [n for n in carriers(h, role) if not usable(h, n)]
    unusable = f" ({', '.join(idle)} disabled or without a static address)" if idle else ""
    if role is S.VMOTION:
        return RuleViolation(
            "EX-5",
            f"Host {host} has no vMotion adapter{unusable}: add one with 'esxcli network ip "
            "interface add -N vmotion' or tag one with VMotion",
            host=host,
        )
    if role is S.FT_LOGGING:
        return RuleViolation(
            "PATH-3",
            f"Host {host} has no Fault Tolerance logging adapter{unusable}: tag one with "
            "faultToleranceLogging",
            host=host,
        )
    return NoPath(
        f"Host {host} has no {role.tag} adapter for {LABEL[service]}{unusable}: tag one with "
        f"{role.tag}",
        host=host, service=service.value,
    )


def _flows(
    service: Service, sources: Sequence[_Candidate], targets: Sequence[_Candidate]
) -> tuple[list[Flow], list[str]]:
    ok: dict[tuple[int, int], Reach] = {}
    whys: list[str] = []
    for i, s in enumerate(sources):
        for j, t in enumerate(targets):
            result = reach(s.side, t.side)
            if isinstance(result, Reach):
                ok[i, j] = result
            else:
                whys.append(f"{s.side.vmknic} -> {t.side.vmknic}: {result.why}")
    pairs = stripe(len(sources), len(targets), ok)
    return [_flow(service, sources[i], targets[j], ok[i, j], k, len(pairs))
            for k, (i, j) in enumerate(pairs, 1)], whys


def stripe(n_src: int, n_dst: int, ok: dict[tuple[int, int], Reach]) -> list[tuple[int, int]]:
    """PATH-1: every adapter with a reachable partner is used at least once.

    Each source takes a reachable target, preferring one in its subnet, then the
    least used, then name order; each target still unused then takes the least
    used reachable source. Indexes are in name order, so the result is deterministic.
    """
    used_src, used_dst = [0] * n_src, [0] * n_dst
    pairs: list[tuple[int, int]] = []
    for i in range(n_src):
        cands = [j for j in range(n_dst) if (i, j) in ok]
        if cands:
            j = min(cands, key=lambda j: (not ok[i, j].same_subnet, used_dst[j], j))
            pairs.append((i, j))
            used_src[i] += 1
            used_dst[j] += 1
    for j in range(n_dst):
        cands = [i for i in range(n_src) if (i, j) in ok]
        if used_dst[j] == 0 and cands:
            i = min(cands, key=lambda i: (not ok[i, j].same_subnet, used_src[i], i))
            pairs.append((i, j))
            used_src[i] += 1
            used_dst[j] += 1
    return pairs


def _flow(service: Service, s: _Candidate, t: _Candidate, r: Reach, k: int, n: int) -> Flow:
    label = LABEL[service]
    multi = "multi-NIC " if service is S.VMOTION else ""
    head = label if n == 1 else f"{multi}{label} stream {k}/{n}"
    rule = f" ({RULE[service]})" if service in RULE else ""
    notes = "".join(f"; {note}" for note in (s.note, t.note) if note)
    reason = f"{head}: {s.side.vmknic} -> {t.side.vmknic}, {r.why}{rule}{notes}"
    return Flow(service, _endpoint(s.side, r.source_address), _endpoint(t.side, r.target_address),
                r.next_hop, reason)


def _endpoint(sd: Side, address: IPv4Interface | IPv6Interface) -> Endpoint:
    return Endpoint(sd.host, sd.vmknic, sd.vmk.netstack, address)


def _provisioning_fallback(
    dc: Datacenter, source: str, target: str, sources: list[_Candidate],
    targets: list[_Candidate], whys: list[str],
) -> list[Flow]:
    """PATH-2: the source falls back to management; the target still receives on provisioning."""
    tried = ", ".join(c.side.vmknic for c in sources)
    note = f"fallback to management (PATH-2): {tried} cannot reach {target}"
    h = dc.host(source)
    mgmt = [_Candidate(side(dc, source, h, n), f"{source}/{n} is {note}")
            for n, _ in _own(h, S.MANAGEMENT)]
    flows, more = _flows(S.PROVISIONING, mgmt, targets)
    if flows:
        return flows
    raise _no_path(S.PROVISIONING, source, target, whys + more)


def _no_path(service: Service, source: str, target: str, whys: list[str]) -> NoPath:
    shown = "; ".join(whys[:_MAX_WHYS])
    extra = f" (and {len(whys) - _MAX_WHYS} more)" if len(whys) > _MAX_WHYS else ""
    return NoPath(
        f"No {LABEL[service]} path from {source} to {target}: tried {shown}{extra}",
        source=source, target=target, service=service.value, tried=whys,
    )
