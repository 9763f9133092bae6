"""NFS datastores of a host, live: the adapter that reaches the server, the mount test, files.

    where = reach(dc, lab, "esx01", "198.18.31.100")     # (namespace, vmk4, interface)
    why = accessible(dc, lab, "esx01", mount)            # None: the mount test passed
    write(dc, lab, "esx01", "nfs01", "a.txt", local)     # through the adapter that reaches it

ESXi sends NFS from the default TCP/IP stack and lets its routing table pick
the VMkernel adapter: the one whose subnet holds the server, else the
default gateway's. vmknet's own client (storage/nfsc) makes its sockets in
that stack's namespace, bound to that adapter: NFS 3 (MOUNT through the
array's rpcbind) and NFS 4.1 (one session trunked over every server address,
each from the adapter that reaches it). `probe` is the mount test,
`open_datastore` gives files to callers that do not speak NFS. `write`/`read`
copy whole files with libnfs's nfs-cp (NFS 3, or 4.0 for a 4.1 datastore:
libnfs 4.0.0 has no 4.1), the bench's peer row.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

from ..dataplane import naming
from ..errors import NotFound, VmknetError
from ..model import DEFAULT_STACK, Datacenter, NfsMount
from . import libnfs, nfsc

PROBE_TIMEOUT = 5.0  # s for one mount test: a dead server fails within it


@dataclass(frozen=True, slots=True)
class Reach:
    ns: str
    vmk: str | None  # None: no adapter's subnet holds the server; the stack routes
    ifname: str | None
    source: str | None = None  # the adapter's address: the client's socket binds to it

    def bind(self) -> nfsc.Bind:
        return nfsc.Bind(self.ns, self.ifname, self.source)


def reach(dc: Datacenter, lab: str, host: str, server: str) -> Reach:
    """The default stack's adapter whose IPv4 subnet holds `server` (the lowest vmkN)."""
    h = dc.host(host)
    ns = naming.stack_ns(lab, host, DEFAULT_STACK)
    try:
        address = ip_address(server)
    except ValueError:
        return Reach(ns, None, None)
    for name in sorted(h.vmknics, key=lambda v: int(v[3:]) if v[3:].isdigit() else 1 << 30):
        nic = h.vmknics[name]
        cidr = nic.ipv4.address
        if nic.netstack == DEFAULT_STACK and cidr is not None and address in cidr.network:
            return Reach(ns, name, naming.adapter_ifname(name), str(cidr.ip))
    return Reach(ns, None, None)


def protocol(mount: NfsMount) -> str:
    """The NFS version libnfs's nfs-cp speaks for `mount`: 3, or 4 (4.0: libnfs has no 4.1)."""
    return "3" if mount.version == "3" else "4"


@dataclass(frozen=True, slots=True)
class Probe:
    """A mount test's outcome: why it failed (None: it passed), the export's space, and
    (NFS 4.1) each server address's connection: "198.18.31.100 via vmk4: session"."""

    why: str | None
    space: nfsc.StatFs | None = None
    connections: tuple[str, ...] = ()


def probe(dc: Datacenter, lab: str, host: str, mount: NfsMount,
          timeout: float = PROBE_TIMEOUT) -> Probe:
    """Mount test of `mount` from `host` with vmknet's client, through the adapter that
    reaches each server: NFS 3 MOUNT then FSSTAT; NFS 4.1 a session trunked over every
    server address, then GETATTR of the space. Accessible when the export answers through
    at least one address (ESXi keeps a 4.1 datastore up while one address is)."""
    wheres = [reach(dc, lab, host, server) for server in mount.servers]
    via = ", ".join(f"{s} via {w.vmk or 'the stack'}" for s, w in zip(mount.servers, wheres,
                                                                      strict=True))
    try:
        with nfsc.mount(mount.servers, mount.share, mount.version, [w.bind() for w in wheres],
                        timeout=timeout) as m:
            space = m.statfs()
            links: tuple[str, ...] = ()
            if isinstance(m, nfsc.V41Mount):
                links = tuple(f"{p.server} via {w.vmk or 'the stack'}: "
                              f"{p.trunked if p.up else 'down'}"
                              for p, w in zip(m.connections(), wheres, strict=True))
            return Probe(None, space, links)
    except VmknetError as err:
        return Probe(f"{via}:{mount.share}: {err}")


def accessible(dc: Datacenter, lab: str, host: str, mount: NfsMount) -> str | None:
    """None when every server of `mount` answers a mount test through its adapter, else why."""
    return probe(dc, lab, host, mount).why


def open_datastore(dc: Datacenter, lab: str, host: str, name: str,
                   timeout: float = nfsc.TIMEOUT, sync: bool = False) -> nfsc.NfsMount:
    """Datastore `name` of `host` mounted by vmknet's client, through the adapter that reaches
    its server: files for callers that do not speak NFS (vmknet.storage.nfsc)."""
    mount = datastore(dc, host, name)
    binds = [reach(dc, lab, host, server).bind() for server in mount.servers]
    return nfsc.mount(mount.servers, mount.share, mount.version, binds, timeout=timeout,
                      sync=sync)


def datastore(dc: Datacenter, host: str, name: str) -> NfsMount:
    mount = dc.host(host).storage.nfs.get(name)
    if mount is None:
        raise NotFound(f"NFS datastore {name} not found on {host}", datastore=name)
    return mount


def write(dc: Datacenter, lab: str, host: str, name: str, path: str, local: Path) -> None:
    """Copy `local` to `path` on datastore `name`, through the adapter that reaches its server."""
    mount = datastore(dc, host, name)
    server = mount.servers[0]
    where = reach(dc, lab, host, server)
    libnfs.put(where.ns, local, server, mount.share, path, protocol(mount), where.ifname)


def read(dc: Datacenter, lab: str, host: str, name: str, path: str, local: Path) -> None:
    """Copy `path` of datastore `name` to `local`, through the adapter that reaches its server."""
    mount = datastore(dc, host, name)
    server = mount.servers[0]
    where = reach(dc, lab, host, server)
    libnfs.get(where.ns, server, mount.share, path, protocol(mount), where.ifname, local)
