"""The pyroute2 seam: every untyped netlink call of the Linux backend lives here.

`Netlink` wraps one rtnetlink socket that was opened inside a namespace (see
`netns.netlink_fd`) and offers typed methods for the writes; reads are parsed
by `rtdump` instead (faster). Errors are left as raised (pyroute2's
`NetlinkError`, `OSError`): `errors.translate` turns them into
`DataplaneError` in one place.
"""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Any

from pyroute2 import IPRoute  # type: ignore[import-untyped]
from pyroute2 import netns as _pyr_netns
from pyroute2.netlink.exceptions import (  # type: ignore[import-untyped]
    NetlinkError as _NetlinkError,
)

NetlinkError: type[Exception] = _NetlinkError
IFF_UP = 0x1
IFA_F_NODAD = 0x02
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RT_SCOPE_NOWHERE = 255
TC_H_ROOT = 0xFFFFFFFF
# STP timers in clock_t (USER_HZ = 100): the kernel minimums, for fast failover.
FORWARD_DELAY = 200  # 2 s
DEFAULT_AGEING_S = 300  # the kernel's FDB ageing
HELLO_TIME = 100  # 1 s
MAX_AGE = 600  # 6 s
DEFAULT_BRIDGE_PRIORITY = 32768  # the kernel's; `None` in a `Link` means this


def netlink_error_code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


def list_netns() -> list[str]:
    return [str(n) for n in _pyr_netns.listnetns()]


def attach_netns(name: str, pid: str) -> None:
    """Bind-mount /proc/<pid>/ns/net on /run/netns/<name> (pid may be "thread-self")."""
    _pyr_netns.attach(name, pid)


def remove_netns(name: str) -> None:
    _pyr_netns.remove(name)


class Netlink:
    """One rtnetlink socket bound to a namespace (by the thread that created the fd)."""

    def __init__(self, fd: int) -> None:
        self._ipr: Any = IPRoute(fileno=fd)
        # ifindex by name, for the life of this socket (one op): an op looks the same
        # link up several times (master, port cost, admin state); deletes forget it.
        self._indexes: dict[str, int] = {}

    def close(self) -> None:
        self._ipr.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------ links

    def index(self, name: str) -> int:
        if name in self._indexes:
            return self._indexes[name]
        found = self._ipr.link_lookup(ifname=name)
        if not found:
            raise FileNotFoundError(19, f"no link {name!r}")  # ENODEV
        self._indexes[name] = int(found[0])
        return self._indexes[name]

    def add_link(self, name: str, kind: str, mtu: int, mac: str | None,
                 **extra: object) -> None:
        attrs: dict[str, object] = {"ifname": name, "kind": kind, "mtu": mtu, **extra}
        if mac is not None:
            attrs["address"] = mac
        self._ipr.link("add", **attrs)

    def add_veth(self, name: str, mtu: int, mac: str | None, peer: str, peer_mtu: int,
                 peer_mac: str | None, peer_nsfd: int | None) -> None:
        spec: dict[str, object] = {"ifname": peer, "mtu": peer_mtu}
        if peer_mac is not None:
            spec["address"] = peer_mac
        if peer_nsfd is not None:
            spec["net_ns_fd"] = peer_nsfd
        self.add_link(name, "veth", mtu, mac, peer=spec)

    def add_bridge(self, name: str, mtu: int, mac: str | None, stp: bool,
                   priority: int | None, ageing: int | None = None) -> None:
        self.add_link(name, "bridge", mtu, mac, **self.bridge_attrs(stp, priority, ageing))

    @staticmethod
    def bridge_attrs(stp: bool, priority: int | None,
                     ageing: int | None = None) -> dict[str, object]:
        attrs: dict[str, object] = {
            "br_forward_delay": FORWARD_DELAY, "br_hello_time": HELLO_TIME,
            "br_max_age": MAX_AGE, "br_stp_state": 1 if stp else 0,
            "br_priority": DEFAULT_BRIDGE_PRIORITY if priority is None else priority,
            # clock_t (centiseconds), as IFLA_BR_AGEING_TIME carries it
            "br_ageing_time": (DEFAULT_AGEING_S if ageing is None else ageing) * 100,
        }
        return attrs

    def set_bridge(self, name: str, stp: bool, priority: int | None,
                   ageing: int | None = None) -> None:
        self._ipr.link("set", index=self.index(name), kind="bridge",
                       **self.bridge_attrs(stp, priority, ageing))

    def delete_link(self, name: str) -> None:
        index = self.index(name)
        self._indexes.clear()  # a veth's peer may go with it
        self._ipr.link("del", index=index)

    def set_link(self, name: str, **attrs: object) -> None:
        """mtu=, address=, master= (ifindex, 0: none), state= ("up"/"down")."""
        self._ipr.link("set", index=self.index(name), **attrs)

    def set_port_cost(self, name: str, cost: int) -> None:
        self._ipr.brport("set", index=self.index(name), cost=cost)

    # -------------------------------------------------------- addresses, routes

    def addr(self, cmd: str, ifname: str, address: str, prefixlen: int, family: int) -> None:
        extra = {"flags": IFA_F_NODAD} if family == socket.AF_INET6 and cmd == "add" else {}
        self._ipr.addr(cmd, index=self.index(ifname), address=address, prefixlen=prefixlen,
                       family=family, **extra)

    def route(self, cmd: str, **spec: object) -> None:
        self._ipr.route(cmd, **spec)

    def rule(self, cmd: str, **spec: object) -> None:
        self._ipr.rule(cmd, **spec)

    def tbf(self, cmd: str, ifname: str, rate_bytes: int, burst: int, latency_ms: int) -> None:
        self._ipr.tc(cmd, "tbf", self.index(ifname), rate=rate_bytes, burst=burst,
                     latency=f"{latency_ms}ms")

    def del_root_qdisc(self, ifname: str) -> None:
        self._ipr.tc("del", index=self.index(ifname), parent=TC_H_ROOT)
