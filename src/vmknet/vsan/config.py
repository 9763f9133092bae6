"""A vSAN cluster as its nodes see it: members, each one's peer list, the key (VSAN-1).

vSAN 6.6+ is unicast: no multicast group, the controller (vCenter) hands every
host the list of the others' vSAN addresses (the "unicast agent list"), and a host
never appears in its own list. `peers()` is that list, built from resolve() (PATH-5):
the vSAN adapter pair between two members; between a member and the witness host
of a two-host cluster, the vsanWitness pair (VSAN-3, else the vSAN adapters).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from ..controller.desired import vsan_peers
from ..errors import InvalidArgument, NotFound
from ..model import Datacenter, Service
from ..resolve import effective_adapters
from ..traffic.place import adapter_addresses
from . import paths

KEY_BYTES = 32


@dataclass(frozen=True)
class Peer:
    host: str
    source: str  # our address the datagrams leave from
    address: str  # the peer's vSAN (or witness) address
    witness: bool  # VSAN-3: carried by vsanWitness adapters


@dataclass(frozen=True)
class ClusterView:
    name: str
    members: tuple[str, ...]  # contribute capacity, hold replicas
    witness_host: str | None  # a two-host cluster's witness (no capacity)
    capacity: int  # bytes per member
    repair_delay: float

    @property
    def nodes(self) -> tuple[str, ...]:
        return self.members + ((self.witness_host,) if self.witness_host else ())


def cluster_of(dc: Datacenter, host: str) -> str:
    """The vSAN cluster `host` belongs to (as a member or as its witness)."""
    for name, cl in sorted(dc.clusters.items()):
        if cl.vsan and (host in cl.hosts or host == cl.vsan_config.witness_host):
            return name
    raise NotFound(f"Host {host} is in no vSAN cluster (vsan: true)", host=host)


def view(dc: Datacenter, cluster: str) -> ClusterView:
    cl = dc.clusters.get(cluster)
    if cl is None or not cl.vsan:
        raise NotFound(f"No vSAN cluster {cluster!r}", cluster=cluster)
    cfg = cl.vsan_config
    return ClusterView(cluster, tuple(sorted(cl.hosts)), cfg.witness_host, int(cfg.capacity),
                       cfg.repair_delay)


def vsan_clusters(dc: Datacenter) -> list[str]:
    return sorted(n for n, c in dc.clusters.items() if c.vsan)


def service_between(cv: ClusterView, a: str, b: str) -> Service:
    return Service.VSAN_WITNESS if cv.witness_host in (a, b) else Service.VSAN


def peers(dc: Datacenter, cv: ClusterView, host: str) -> list[Peer]:
    """VSAN-1: every other node of the cluster, by the address resolve() picks; never `host`."""
    routes = [Route.parse(p) for p in vsan_peers(dc, cv.name, host)]  # the controller's
    return [Peer(r.host, r.source, r.address, r.witness) for r in routes]


def local_addresses(dc: Datacenter, cv: ClusterView, host: str) -> list[tuple[str, str, str]]:
    """[(vmknic, stack, address)] this node listens on: its vSAN adapters, and its witness
    adapters when it talks to a witness host or is one (each address once)."""
    services = [Service.VSAN]
    if cv.witness_host is not None:
        services.append(Service.VSAN_WITNESS)
    seen: dict[str, tuple[str, str, str]] = {}
    h = dc.host(host)
    for svc in services:
        for vmk, _why in effective_adapters(dc, host, svc):
            for a in adapter_addresses(dc, host, vmk):
                if a.version == 4:
                    seen.setdefault(str(a.ip), (vmk, h.vmknics[vmk].netstack, str(a.ip)))
    if not seen:
        raise InvalidArgument(f"Host {host} has no usable vSAN adapter with an IPv4 address "
                              "(REQ-3): tag one with VSAN", code="REQ-3", host=host)
    return list(seen.values())


def load_key(lab: str, cluster: str) -> bytes:
    try:
        key = paths.key_path(lab, cluster).read_bytes()
    except FileNotFoundError:
        raise NotFound(f"vSAN cluster {cluster} of lab {lab} has no key: 'vmknet vsan start' "
                       "first", cluster=cluster) from None
    if len(key) != KEY_BYTES:
        raise InvalidArgument(f"The key of vSAN cluster {cluster} is damaged")
    return key


def store_key(lab: str, cluster: str, key: bytes) -> None:
    """The key the controller sent (a host agent keeps it for its node): 0600, atomic."""
    if len(key) != KEY_BYTES:
        raise InvalidArgument(f"A vSAN cluster key is {KEY_BYTES} bytes")
    path = paths.key_path(lab, cluster)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key)
    finally:
        os.close(fd)
    tmp.replace(path)


def make_key(lab: str, cluster: str) -> bytes:
    """The cluster's key: made once (0600, never rewritten), then read."""
    path = paths.key_path(lab, cluster)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, os.urandom(KEY_BYTES))
        finally:
            os.close(fd)
    return load_key(lab, cluster)


@dataclass(frozen=True)
class Route:
    """How `host` reaches one node's I/O service: from `source` (in `stack`) to `address`."""

    host: str
    stack: str
    source: str
    address: str
    witness: bool = False

    def arg(self) -> str:
        return ",".join((self.host, self.stack, self.source, self.address,
                         "w" if self.witness else "v"))

    @classmethod
    def parse(cls, text: str) -> Route:
        parts = text.split(",")
        if len(parts) != 5 or parts[4] not in ("v", "w"):
            raise InvalidArgument(f"--peer {text[:80]!r}: host,stack,source,address,v|w")
        return cls(parts[0], parts[1], parts[2], parts[3], parts[4] == "w")


def routes(dc: Datacenter, cv: ClusterView, host: str) -> dict[str, Route]:
    """Every node of the cluster as `host` reaches it; itself by its own vSAN address."""
    mine = local_addresses(dc, cv, host)
    stacks = {address: stack for _vmk, stack, address in mine}
    out = {host: Route(host, mine[0][1], mine[0][2], mine[0][2])}
    for p in peers(dc, cv, host):
        out[p.host] = Route(p.host, stacks.get(p.source, mine[0][1]), p.source, p.address,
                            p.witness)
    return out
