"""TCP sockets on exactly the adapters a service may use: the only socket source of the engines.

A socket belongs to the namespace of the thread that created it, for its whole
life (LAB.md). So each socket is created by `netns.in_netns` inside the stack
namespace of its adapter, then handed back; bind/connect/accept/send work from
any thread afterwards. Binding to the adapter's own address is what makes the
per-adapter policy rule (table 100+N, render.py) send the flow out of that
adapter (multi-NIC vMotion, PATH-7), and what keeps a listener off every
adapter that is not chosen for the service (SEC-2).

    listeners = listen(dc, lab, "esx02", Service.VMOTION)     # one per adapter address
    conns = connect(dc, lab, Service.VMOTION, "esx01", "esx02")  # one per resolve() pair
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from ipaddress import IPv4Interface, IPv6Interface

from ..dataplane.linux import netns
from ..errors import DataplaneError, NoPath
from ..model import Datacenter, Service
from ..model.services import SERVICE_PORTS
from ..resolve import Endpoint, Flow, effective_adapters, resolve
from .place import LabRef, adapter_addresses, stack_ns

__all__ = ["Connection", "Listener", "close_all", "connect", "listen", "receiving_role",
           "tcp_socket"]

DEFAULT_TIMEOUT = 5.0
BACKLOG = 64

# PATH-4: a replication server receives vSphere Replication on its management adapters;
# every other service is received by the adapters that carry it (resolve.py's roles).
_RECEIVED_AS: dict[Service, Service] = {Service.REPLICATION: Service.MANAGEMENT}


def receiving_role(service: Service) -> Service:
    """The service whose adapters receive `service` on a target host."""
    return _RECEIVED_AS.get(service, service)


def default_port(service: Service) -> int:
    return SERVICE_PORTS[service][0]


@dataclass(eq=False)
class Listener:
    """A listening socket on one address of one adapter (in that adapter's stack namespace)."""

    service: Service
    endpoint: Endpoint
    ns: str
    sock: socket.socket
    reason: str  # why this adapter (tagged, exclusive stack, fallback)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def accept(self, timeout: float | None = DEFAULT_TIMEOUT) -> tuple[socket.socket, str]:
        """One incoming connection: (socket, peer address)."""
        self.sock.settimeout(timeout)
        conn, peer = self.sock.accept()
        return conn, str(peer[0])

    def close(self) -> None:
        self.sock.close()


@dataclass(eq=False)
class Connection:
    """One connected TCP socket of one flow (adapter pair) chosen by resolve()."""

    flow: Flow
    ns: str
    sock: socket.socket

    def close(self) -> None:
        self.sock.close()


def tcp_socket(ns: str, family: int) -> socket.socket:
    """A TCP socket that lives in namespace `ns`."""
    return netns.in_netns(ns, lambda: socket.socket(family, socket.SOCK_STREAM))


def _family(address: IPv4Interface | IPv6Interface) -> int:
    return socket.AF_INET if address.version == 4 else socket.AF_INET6


def close_all(items: Iterable[Listener | Connection]) -> None:
    for item in items:
        with contextlib.suppress(OSError):
            item.close()


def listen(dc: Datacenter, lab: LabRef, host: str, service: Service,
           port: int | None = None) -> list[Listener]:
    """Listen for `service` on every address of every adapter that may receive it on `host`.

    The adapters are the effective ones after the rules' fallbacks (EX-1..5,
    PATH-2/4/5), as resolve() picks the target side; NoPath when there is none.
    """
    role = receiving_role(service)
    chosen = effective_adapters(dc, host, role)
    if not chosen:
        raise NoPath(f"Host {host} has no adapter that receives {service.tag}: tag one with "
                     f"{role.tag}", host=host, service=service.value)
    want = default_port(service) if port is None else port
    out: list[Listener] = []
    try:
        for vmk, reason in chosen:
            stack = dc.host(host).vmknics[vmk].netstack
            ns = stack_ns(lab, host, stack)
            for address in adapter_addresses(dc, host, vmk):
                sock = tcp_socket(ns, _family(address))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                out.append(Listener(service, Endpoint(host, vmk, stack, address), ns, sock,
                                    reason))
                _checked(f"listen on {host}/{vmk} {address.ip} port {want}",
                         partial(sock.bind, (str(address.ip), want)))
                sock.listen(BACKLOG)
    except BaseException:
        close_all(out)
        raise
    return out


def connect(dc: Datacenter, lab: LabRef, service: Service, src: str, dst: str,
            port: int | None = None, timeout: float = DEFAULT_TIMEOUT) -> list[Connection]:
    """One TCP connection per adapter pair resolve() picks, from `src` to `dst`.

    Each socket is made in the source adapter's stack namespace and bound to its
    address before connecting, so it leaves by that adapter. All or nothing: if
    one pair fails, the others are closed and a DataplaneError names the pair.
    """
    want = default_port(service) if port is None else port
    out: list[Connection] = []
    try:
        for flow in resolve(dc, service, src, dst):
            ns = stack_ns(lab, src, flow.source.netstack)
            sock = tcp_socket(ns, _family(flow.source.address))
            out.append(Connection(flow, ns, sock))
            sock.settimeout(timeout)
            source = str(flow.source.address.ip)
            _checked(f"bind to {flow.source.host}/{flow.source.vmknic} {source}",
                     partial(sock.bind, (source, 0)))
            _checked(f"connect {flow.source.host}/{flow.source.vmknic} -> "
                     f"{flow.target.host}/{flow.target.vmknic} "
                     f"{flow.target.address.ip}:{want}",
                     partial(sock.connect, (str(flow.target.address.ip), want)))
    except BaseException:
        close_all(out)
        raise
    return out


def _checked(what: str, call: Callable[[], object]) -> None:
    """Run `call`; an OSError becomes one DataplaneError line that names the adapters."""
    try:
        call()
    except OSError as err:
        reason = err.strerror or type(err).__name__  # a timeout has no strerror
        raise DataplaneError(f"Cannot {what}: {reason}", code="DataplaneError",
                             errno=err.errno) from err
