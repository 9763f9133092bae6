"""A TCP socket to an NFS server from a host's stack namespace, bound to one adapter.

ESXi sends NFS from the default TCP/IP stack and lets its routing table pick
the adapter; vmknet makes the socket in that stack's namespace and binds it
to the adapter that reaches the server (SO_BINDTODEVICE and its address, as
the iSCSI initiator does), so the datastore's bytes leave by that adapter.
A reserved source port (below 1024) is taken when asked: some servers
(an export with ganesha's `PrivilegedPort = true`) demand one.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from ...dataplane.linux import netns
from .errors import NfsError, NfsTimeout

RESERVED_PORTS = range(1023, 664, -1)  # bindresvport's range, top down


@dataclass(frozen=True, slots=True)
class Bind:
    """Where a connection comes from: namespace (None: this one), interface, address."""

    ns: str | None = None
    ifname: str | None = None
    source: str | None = None
    reserved_port: bool = False

    def describe(self) -> str:
        return self.ifname or "any adapter"


def connect(server: str, port: int, bind: Bind, timeout: float) -> socket.socket:
    """A connected TCP socket to `server`:`port` from `bind`, with TCP_NODELAY."""
    host = server.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    def make() -> socket.socket:
        return socket.socket(family, socket.SOCK_STREAM)

    sock = netns.in_netns(bind.ns, make) if bind.ns is not None else make()
    try:
        sock.settimeout(timeout)
        if bind.ifname is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, bind.ifname.encode())
        if bind.reserved_port:
            _bind_reserved(sock, bind.source or ("::" if family == socket.AF_INET6 else "0.0.0.0"))
        elif bind.source is not None:
            sock.bind((bind.source, 0))
        sock.connect((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except TimeoutError:
        sock.close()
        raise NfsTimeout(f"NFS server {server}:{port} via {bind.describe()}: no answer "
                         f"within {timeout:g} s", server=server) from None
    except OSError as err:
        sock.close()
        raise NfsError(f"NFS server {server}:{port} via {bind.describe()}: "
                       f"{err.strerror or type(err).__name__}", server=server) from None
    return sock


def _bind_reserved(sock: socket.socket, source: str) -> None:
    for port in RESERVED_PORTS:
        try:
            sock.bind((source, port))
            return
        except OSError as err:
            if err.errno != errno.EADDRINUSE:  # not root, or no such address: no port will do
                raise
    raise OSError(errno.EADDRINUSE, "no reserved port free")
