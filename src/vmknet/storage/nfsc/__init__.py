"""vmknet's own NFS client (NFS 3 and 4.1), for callers that need files on a datastore.

    from vmknet.storage.nfsc import Bind, mount
    m = mount("198.18.31.100", "/share", version=3, bind=Bind(ns, "vmk4", "198.18.31.11"))
    m = mount(["198.18.31.100", "198.18.30.100"], "/vols", version="4.1", bind=[b4, b2])
    with m.open_file("vm1/disk.img", create=True, size=1 << 26) as f:
        f.write(0, data); f.flush(); f.read(0, len(data))
    m.listdir("/"); m.mkdir("vm1", exist_ok=True); m.remove("vm1/old")
    m.write_file("hb/esx01", b"..."); m.read_file("hb/esx01"); m.statfs(); m.close()

A host's datastore by name, through the adapter that reaches its server:
`vmknet.storage.nfs.open_datastore(dc, lab, host, "nfs01")`.
Errors: NotFound / AlreadyExists for a missing / existing file, InvalidArgument for a
path that leaves the export, NfsError (NfsTimeout, NfsProtocolError) for the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...errors import InvalidArgument
from .api import NfsFile, NfsMount, StatFs
from .connect import Bind
from .errors import NfsError, NfsProtocolError, NfsTimeout
from .v3 import V3Mount
from .v41 import V41Mount

__all__ = ["Bind", "NfsError", "NfsFile", "NfsMount", "NfsProtocolError", "NfsTimeout",
           "StatFs", "V3Mount", "V41Mount", "mount"]
TIMEOUT = 10.0


def _version(version: str | int | float) -> str:
    text = str(version)
    if text in ("3", "4.1"):
        return text
    raise InvalidArgument(f"NFS version {text}: vmknet's client speaks 3 and 4.1")


def mount(server: str | Sequence[str], export: str, version: str | int | float = 3,
          bind: Bind | Sequence[Bind] | None = None, *, timeout: float = TIMEOUT,
          sync: bool = False) -> NfsMount:
    """Mount `export` of `server` from `bind` (one per server address for NFS 4.1).

    `sync` writes FILE_SYNC at once; otherwise writes are durable after flush()/close().
    """
    servers = [server] if isinstance(server, str) else list(server)
    binds = [bind or Bind()] * len(servers) if bind is None or isinstance(bind, Bind) \
        else list(bind)
    if not servers or len(binds) != len(servers):
        raise InvalidArgument("give one or more server addresses, and one bind for each")
    if _version(version) == "3":
        if len(servers) != 1:
            raise InvalidArgument("NFS 3 mounts one server address (STO-2): "
                                  f"{', '.join(servers)} given")
        return V3Mount(servers[0], export, binds[0], timeout=timeout, sync=sync)
    return V41Mount(servers, export, binds, timeout=timeout, sync=sync)
