"""Lint checks across the whole datacenter: addresses, NFS exports, distributed port groups.

Each indexes once by the key that collides (address, export, port group),
so the cost grows with the number of adapters, never with its square.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address

from .lint_base import Adapter, Context, Finding, finding, names
from .paths import dvs_path, host_path


def check_duplicate_addresses(ctx: Context) -> Iterator[Finding]:
    """DUP-ADDR: one address on two adapters breaks ARP/ND on a shared segment, and lint
    reports it anywhere, since stacks and VLANs are easy to merge later."""
    owners: dict[IPv4Address | IPv6Address, list[Adapter]] = defaultdict(list)
    for adapters in ctx.adapters.values():
        for a in adapters.values():
            for addr in {x.ip for x in a.addresses}:
                owners[addr].append(a)
    for addr, group in owners.items():
        if len(group) < 2:
            continue
        for a in group:
            others = [o.label for o in group if o is not a]
            yield finding("DUP-ADDR", "error", a.path,
                          f"Address {addr} of {a.label} is also configured on {names(others)}",
                          "Give every VMkernel adapter a unique address")


def check_nfs(ctx: Context) -> Iterator[Finding]:
    """STO-2: NFS 3 has one server address; one export is never mounted with both versions
    (their locking protocols do not know each other, so data gets corrupted)."""
    versions: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for host_name, host in ctx.dc.hosts.items():
        for ds, mount in host.storage.nfs.items():
            path = f"{host_path(host_name)}/storage/nfs/{ds}"
            if mount.version == "3" and len(mount.servers) > 1:
                yield finding("STO-2", "error", path,
                              f"NFS 3 datastore {ds} on {host_name} lists {len(mount.servers)} "
                              f"servers ({', '.join(mount.servers)}): NFS 3 uses one",
                              "Keep one server address, or mount with NFS 4.1 to trunk several")
            for server in mount.servers:
                versions[server, mount.share][mount.version].append(path)
    yield from _mixed_versions(versions)


def _mixed_versions(versions: dict[tuple[str, str], dict[str, list[str]]]) -> Iterator[Finding]:
    for (server, share), by_version in versions.items():
        if len(by_version) < 2:
            continue
        for version, paths in by_version.items():
            other = "4.1" if version == "3" else "3"
            for path in sorted(set(paths)):
                yield finding("STO-2", "error", path,
                              f"Export {server}:{share} is mounted with NFS {version} here and "
                              f"with NFS {other} at {names(sorted(set(by_version[other])), 2)}",
                              "Mount one export with one NFS version everywhere")


def check_shared_dvportgroups(ctx: Context) -> Iterator[Finding]:
    """SW-5: the seed asks for one distributed port group per adapter."""
    for host, adapters in ctx.adapters.items():
        users: dict[tuple[str, str], list[str]] = defaultdict(list)
        for a in adapters.values():
            if a.vmk.dvs is not None and a.vmk.dvportgroup is not None:
                users[a.vmk.dvs, a.vmk.dvportgroup].append(a.name)
        for (dvs, pg), vmks in users.items():
            if len(vmks) > 1:
                yield finding("SW-5", "warning", f"{dvs_path(dvs)}/portgroups/{pg}",
                              f"Distributed port group {pg} is used by {', '.join(vmks)} "
                              f"on {host}",
                              "Give every VMkernel adapter its own distributed port group")
