"""NFS datastores of a host, live: the adapter that reaches the server, the mount test, files.

    where = reach(dc, lab, "esx01", "198.18.31.100")     # (namespace, vmk4, interface)
    why = accessible(dc, lab, "esx01", mount)            # None: the mount test passed
    write(dc, lab, "esx01", "nfs01", "a.txt", local)     # through the adapter that reaches it

ESXi sends NFS from the default TCP/IP stack and lets its routing table pick
the VMkernel adapter: the one whose subnet holds the server, else the
default gateway's. vmknet runs libnfs in that stack's namespace, bound to
that adapter. An NFS 3 datastore is checked and used with NFS 3 (the
array's own rpcbind answers the portmapper); an NFS 4.1 datastore is
checked with NFS 4.0 against each server address, because the only client
here (libnfs 4.0.0) has no 4.1: no sessions and no trunking (docs/storage.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

from ..dataplane import naming
from ..errors import NotFound
from ..model import DEFAULT_STACK, Datacenter, NfsMount
from . import libnfs, nfsc

NO_41 = "NFS 4.0 (libnfs 4.0.0 has no NFS 4.1 client)"


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
    """The NFS version vmknet's client speaks for `mount`: 3, or 4 (4.0) for a 4.1 mount."""
    return "3" if mount.version == "3" else "4"


def accessible(dc: Datacenter, lab: str, host: str, mount: NfsMount) -> str | None:
    """None when every server of `mount` answers a mount test through its adapter, else why."""
    for server in mount.servers:
        where = reach(dc, lab, host, server)
        why = libnfs.check(where.ns, server, mount.share, protocol(mount), where.ifname)
        if why is not None:
            return f"{server}:{mount.share} via {where.vmk or 'the stack'}: {why}"
    return None


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
