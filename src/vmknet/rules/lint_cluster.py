"""Lint checks of SPEC section 8: what a cluster's features need from every member host."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator

from ..model import Cluster, Service
from ..reach import Reach, Side, reach, side
from .lint_base import Adapter, Context, Finding, finding, host_finding, names

S = Service
NO_VMOTION_HINT = ("Add one with 'esxcli network ip interface add -N vmotion' "
                   "or tag one with VMotion")


def cluster_path(name: str) -> str:
    return f"clusters/{name}"


def check_vmotion(ctx: Context) -> Iterator[Finding]:
    """REQ-1 / EX-5: a cluster member without vMotion cannot be evacuated or balanced."""
    for cl_name, cl in ctx.dc.clusters.items():
        if cl.ha and cl.ft:
            continue  # REQ-2 reports the same gap as an error
        for host in ctx.members(cl):
            if not ctx.usable(host, S.VMOTION):
                yield host_finding(
                    "REQ-1", "warning", host,
                    f"Host {host} in cluster {cl_name} has no usable vMotion adapter: VMs "
                    "cannot live-migrate to or from it (EX-5)", NO_VMOTION_HINT)


def check_fault_tolerance(ctx: Context) -> Iterator[Finding]:
    """REQ-2: FT needs a logging adapter and vMotion (to place the secondary) on every host."""
    for cl_name, cl in ctx.dc.clusters.items():
        if not (cl.ha and cl.ft):
            continue
        for host in ctx.members(cl):
            if not ctx.usable(host, S.FT_LOGGING):
                yield host_finding(
                    "REQ-2", "error", host,
                    f"Host {host} in HA+FT cluster {cl_name} has no usable Fault Tolerance "
                    "logging adapter", "Tag one adapter with faultToleranceLogging")
            if not ctx.usable(host, S.VMOTION):
                yield host_finding(
                    "REQ-2", "error", host,
                    f"Host {host} in HA+FT cluster {cl_name} has no usable vMotion adapter",
                    NO_VMOTION_HINT)


def check_vsan(ctx: Context) -> Iterator[Finding]:
    """REQ-3: every vSAN member has a vSAN adapter; all reach each other with one MTU."""
    for cl_name, cl in ctx.dc.clusters.items():
        if not cl.vsan:
            continue
        for host in ctx.members(cl):
            if not ctx.usable(host, S.VSAN):
                yield host_finding(
                    "REQ-3", "error", host,
                    f"Host {host} in vSAN cluster {cl_name} has no usable vSAN adapter",
                    f"Tag an adapter with VSAN on {host} (every member needs one, "
                    "contributing storage or not)")
        yield from _vsan_unicast(ctx, cl_name, cl)
        yield from _mtu_agreement(ctx, cl_name, cl, S.VSAN, "REQ-3")


def _vsan_unicast(ctx: Context, cl_name: str, cl: Cluster) -> Iterator[Finding]:
    """Group hosts whose vSAN adapters look alike (subnet, VLAN, routing) and test the groups.

    Two adapters with equal keys answer every reachability question alike
    (unless a route is more specific than their subnet), so a cluster of
    hosts on one vSAN network costs one check, not one per host pair.
    """
    reps: dict[Hashable, Side] = {}
    hosts_of: dict[frozenset[Hashable], list[str]] = defaultdict(list)
    for host in ctx.members(cl):
        keys = set()
        for a in ctx.usable(host, S.VSAN):
            sd = side(ctx.dc, host, ctx.dc.hosts[host], a.name)
            keys.add(_reach_key(sd))
            reps.setdefault(_reach_key(sd), sd)
        if keys:
            hosts_of[frozenset(keys)].append(host)
    sigs = sorted(hosts_of, key=lambda s: hosts_of[s][0])
    for i, sig_a in enumerate(sigs):
        for sig_b in sigs[i:]:
            if sig_a is sig_b and len(hosts_of[sig_a]) < 2:
                continue
            why = _unreachable(reps, sig_a, sig_b)
            if why is not None:
                yield finding(
                    "REQ-3", "error", cluster_path(cl_name),
                    f"vSAN adapters of {names(hosts_of[sig_a], 3)} and "
                    f"{names(hosts_of[sig_b], 3)} cannot reach each other: {why}",
                    "Put the vSAN adapters in one subnet and VLAN, or route between them")


def _reach_key(sd: Side) -> Hashable:
    v, st = sd.vmk, sd.stack
    nets = (str(v.ipv4.address.network) if v.ipv4.address else None,
            tuple(str(a.network) for a in v.ipv6.addresses))
    routing = (st.gateway, st.ipv6_gateway, st.ipv6_enabled,
               tuple((str(r.network), r.gateway) for r in st.routes))
    return (nets, sd.vlan, v.ipv4.type, v.ipv4.gateway, v.ipv6.gateway, routing)


def _unreachable(reps: dict[Hashable, Side], sig_a: frozenset[Hashable],
                 sig_b: frozenset[Hashable]) -> str | None:
    whys: list[str] = []
    for ka in sorted(sig_a, key=repr):
        for kb in sorted(sig_b, key=repr):
            result = reach(reps[ka], reps[kb])
            if isinstance(result, Reach):
                return None
            whys.append(result.why)
    return whys[0] if whys else None


def check_replication(ctx: Context) -> Iterator[Finding]:
    """REQ-4: where a cluster tags replication, members without it fall back to management.

    vmknet does not know which hosts replicate, so a tag on any member means
    the cluster replicates; an untagged member (or one whose tagged adapter is
    disabled or unaddressed) then sends that traffic over management (PATH-4).
    """
    for cl_name, cl in ctx.dc.clusters.items():
        for service in (S.REPLICATION, S.REPLICATION_NFC):
            members = ctx.members(cl)
            tagged = [h for h in members if ctx.usable(h, service)]
            for host in members:
                idle = [a.name for a in ctx.adapters[host].values() if a.vmk.carries(service)]
                if host not in tagged and (tagged or idle):
                    yield _fallback_finding(host, cl_name, service, tagged, idle)


def _fallback_finding(host: str, cl_name: str, service: Service, tagged: list[str],
                      idle: list[str]) -> Finding:
    why = (f"{', '.join(idle)} tagged but disabled or without a static address" if idle
           else f"{names(tagged, 3)} in cluster {cl_name} tag it")
    return host_finding(
        "REQ-4", "info", host,
        f"Host {host} has no usable {service.tag} adapter ({why}): its {service.tag} "
        "traffic falls back to the management adapter (PATH-4)",
        f"Tag a dedicated adapter with {service.tag} on {host}, or accept management for it")


def check_mtu_consistency(ctx: Context) -> Iterator[Finding]:
    """REQ-6: one MTU per service per cluster, in the adapters and the switches under them."""
    for cl_name, cl in ctx.dc.clusters.items():
        for service in Service:
            if service is S.VSAN and cl.vsan:
                continue  # REQ-3 reports vSAN's large-packet check
            yield from _mtu_agreement(ctx, cl_name, cl, service, "REQ-6")


def _mtu_agreement(ctx: Context, cl_name: str, cl: Cluster, service: Service,
                   rule: str) -> Iterator[Finding]:
    adapters = [a for h in ctx.members(cl) for a in ctx.usable(h, service)]
    adapter_mtus = _by_value(adapters, lambda a: a.vmk.mtu)
    if len(adapter_mtus) > 1:
        yield finding(rule, "warning", cluster_path(cl_name),
                      f"{service.tag} adapters of cluster {cl_name} disagree on MTU: "
                      + _spread(adapter_mtus),
                      f"Set one MTU on every {service.tag} adapter of the cluster")
    switch_mtus = _by_value([a for a in adapters if a.att],
                            lambda a: a.att.switch_mtu if a.att else 0)
    if rule == "REQ-6" and len(switch_mtus) > 1:
        yield finding(rule, "warning", cluster_path(cl_name),
                      f"Switches under the {service.tag} adapters of cluster {cl_name} disagree "
                      "on MTU: " + _spread(switch_mtus),
                      "Set one MTU on the switches under this service on every host")


def _by_value(adapters: list[Adapter], value: Callable[[Adapter], int]) -> dict[int, list[str]]:
    groups: dict[int, list[str]] = defaultdict(list)
    for a in adapters:
        groups[value(a)].append(a.label)
    return groups


def _spread(groups: dict[int, list[str]]) -> str:
    return ", ".join(f"{mtu} ({names(labels, 3)})" for mtu, labels in sorted(groups.items()))
