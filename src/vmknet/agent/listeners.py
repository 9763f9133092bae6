"""Listeners the agent opens for a process it starts (an incoming VM): on its own host only.

    socks = open_all("h15", "esx02", kinds.sockets("incoming", args))
    ... pass them to the child ...
    close_all(socks)   # the child holds its own copies

Each socket is made inside the namespace of one stack of the agent's own host
(`stack_ns(lab, host, stack)`: the lab and the host are the agent's, never the
request's, so a request cannot reach another host's namespaces) and bound to the
address the request names. The kernel refuses an address that no adapter of that
stack holds (EADDRNOTAVAIL), so a listener sits on one of this host's adapters or
nowhere; the controller checked before relaying that they are the adapters
resolve() picks for the service (SEC-2). All or nothing: one failure closes the rest.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import ip_address

from ..errors import DataplaneError
from ..supervise.kinds import Listen
from ..traffic.place import stack_ns
from ..traffic.sockets import BACKLOG, tcp_socket


@dataclass(eq=False)
class Opened:
    want: Listen
    sock: socket.socket

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def row(self) -> dict[str, object]:
        """What the start reply reports of it (the source connects only after this)."""
        return {"fds": self.want.flag, "stack": self.want.stack,
                "address": self.want.address, "port": self.port}


def close_all(items: Iterable[Opened]) -> None:
    for item in items:
        with contextlib.suppress(OSError):
            item.sock.close()


def open_all(lab: str, host: str, wanted: list[Listen]) -> list[Opened]:
    out: list[Opened] = []
    try:
        for want in wanted:
            family = socket.AF_INET if ip_address(want.address).version == 4 else socket.AF_INET6
            where = f"{host}/{want.stack} {want.address} port {want.port}"
            try:
                sock = tcp_socket(stack_ns(lab, host, want.stack), family)
            except OSError as err:  # no such stack on this host: its namespace is missing
                raise DataplaneError(f"Cannot listen on {where}: {host} has no stack "
                                     f"{want.stack} ({err.strerror or err})",
                                     code="DataplaneError", host=host) from err
            out.append(Opened(want, sock))
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((want.address, want.port))
                sock.listen(BACKLOG)
            except OSError as err:
                raise DataplaneError(f"Cannot listen on {where}: {err.strerror or err} (not "
                                     f"an address of {host}'s {want.stack} stack?)",
                                     code="DataplaneError", host=host,
                                     errno=err.errno) from err
    except BaseException:
        close_all(out)
        raise
    return out
