"""The pyroute2 seam: every untyped netlink call of the Linux backend lives here.

`Netlink` wraps one rtnetlink socket that was opened inside a namespace (see
`netns.netlink_fd`); the rest of the package sees typed records (`RawLink`,
`RawAddr`, ...) and plain methods. Errors are left as raised (pyroute2's
`NetlinkError`, `OSError`): `errors.translate` turns them into
`DataplaneError` in one place.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
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
TC_H_ROOT = 0xFFFFFFFF
# STP timers in clock_t (USER_HZ = 100): the kernel minimums, for fast failover.
FORWARD_DELAY = 200  # 2 s
HELLO_TIME = 100  # 1 s
MAX_AGE = 600  # 6 s


def netlink_error_code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


def list_netns() -> list[str]:
    return [str(n) for n in _pyr_netns.listnetns()]


def create_netns(name: str) -> None:
    _pyr_netns.create(name)


def remove_netns(name: str) -> None:
    _pyr_netns.remove(name)


@dataclass(frozen=True, slots=True)
class RawLink:
    index: int
    name: str
    kind: str | None
    up: bool
    master: int | None
    mtu: int
    mac: str | None
    link: int | None  # veth: the peer's ifindex (in the peer's namespace)
    link_netnsid: int | None  # veth: the peer's namespace, as this namespace numbers it
    stp_state: int | None  # bridge
    priority: int | None  # bridge
    port_cost: int | None  # bridge port


@dataclass(frozen=True, slots=True)
class RawAddr:
    index: int
    family: int
    address: str
    prefixlen: int


@dataclass(frozen=True, slots=True)
class RawRoute:
    family: int
    table: int
    proto: int
    type: int
    dst: str | None
    dst_len: int
    gateway: str | None
    oif: int | None
    prefsrc: str | None
    multipath: bool


@dataclass(frozen=True, slots=True)
class RawRule:
    family: int
    table: int
    priority: int
    src: str | None
    src_len: int


@dataclass(frozen=True, slots=True)
class RawQdisc:
    index: int
    parent: int
    kind: str | None
    rate: int | None  # tbf: bytes/s, 0xFFFFFFFF when the kernel reports a 64-bit rate


def _opt(msg: Any, name: str) -> Any:
    return None if msg is None else msg.get_attr(name)


class Netlink:
    """One rtnetlink socket bound to a namespace (by the thread that created the fd)."""

    def __init__(self, fd: int) -> None:
        self._ipr: Any = IPRoute(fileno=fd)

    def close(self) -> None:
        self._ipr.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------ dumps

    def links(self) -> list[RawLink]:
        out = []
        for m in self._ipr.get_links():
            info = m.get_attr("IFLA_LINKINFO")
            kind = _opt(info, "IFLA_INFO_KIND")
            data = _opt(info, "IFLA_INFO_DATA") if kind == "bridge" else None
            slave = (_opt(info, "IFLA_INFO_SLAVE_DATA")
                     if _opt(info, "IFLA_INFO_SLAVE_KIND") == "bridge" else None)
            out.append(RawLink(
                index=int(m["index"]), name=str(m.get_attr("IFLA_IFNAME")),
                kind=kind, up=bool(m["flags"] & IFF_UP), master=m.get_attr("IFLA_MASTER"),
                mtu=int(m.get_attr("IFLA_MTU")), mac=m.get_attr("IFLA_ADDRESS"),
                link=m.get_attr("IFLA_LINK"), link_netnsid=m.get_attr("IFLA_LINK_NETNSID"),
                stp_state=_opt(data, "IFLA_BR_STP_STATE"), priority=_opt(data, "IFLA_BR_PRIORITY"),
                port_cost=_opt(slave, "IFLA_BRPORT_COST"),
            ))
        return out

    def addrs(self) -> list[RawAddr]:
        return [RawAddr(int(m["index"]), int(m["family"]),
                        str(m.get_attr("IFA_LOCAL") or m.get_attr("IFA_ADDRESS")),
                        int(m["prefixlen"]))
                for m in self._ipr.get_addr(family=socket.AF_UNSPEC)]

    def routes(self) -> list[RawRoute]:
        return [RawRoute(
            family=int(m["family"]), table=int(m.get_attr("RTA_TABLE") or m["table"]),
            proto=int(m["proto"]), type=int(m["type"]), dst=m.get_attr("RTA_DST"),
            dst_len=int(m["dst_len"]), gateway=m.get_attr("RTA_GATEWAY"),
            oif=m.get_attr("RTA_OIF"), prefsrc=m.get_attr("RTA_PREFSRC"),
            multipath=m.get_attr("RTA_MULTIPATH") is not None,
        ) for m in self._ipr.get_routes()]

    def rules(self) -> list[RawRule]:
        return [RawRule(int(m["family"]), int(m.get_attr("FRA_TABLE") or m["table"]),
                        int(m.get_attr("FRA_PRIORITY") or 0), m.get_attr("FRA_SRC"),
                        int(m["src_len"]))
                for m in self._ipr.get_rules(family=socket.AF_UNSPEC)
                if m["family"] in (socket.AF_INET, socket.AF_INET6)]

    def qdiscs(self) -> list[RawQdisc]:
        out = []
        for m in self._ipr.get_qdiscs():
            kind = m.get_attr("TCA_KIND")
            parms = _opt(m.get_attr("TCA_OPTIONS"), "TCA_TBF_PARMS") if kind == "tbf" else None
            rate = None if parms is None else int(parms["rate"])
            out.append(RawQdisc(int(m["index"]), int(m["parent"]), kind, rate))
        return out

    def netnsid_of(self, nsfd: int) -> int | None:
        """The id this namespace gives the namespace open at `nsfd` (None: not assigned)."""
        reply = self._ipr.get_netnsid(fd=nsfd)
        nsid = reply.get("nsid") if isinstance(reply, dict) else None
        return nsid if isinstance(nsid, int) and nsid >= 0 else None

    # ------------------------------------------------------------------ links

    def index(self, name: str) -> int:
        found = self._ipr.link_lookup(ifname=name)
        if not found:
            raise FileNotFoundError(19, f"no link {name!r}")  # ENODEV
        return int(found[0])

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
                   priority: int | None) -> None:
        self.add_link(name, "bridge", mtu, mac, **self.bridge_attrs(stp, priority))

    @staticmethod
    def bridge_attrs(stp: bool, priority: int | None) -> dict[str, object]:
        attrs: dict[str, object] = {
            "br_forward_delay": FORWARD_DELAY, "br_hello_time": HELLO_TIME,
            "br_max_age": MAX_AGE, "br_stp_state": 1 if stp else 0,
        }
        if priority is not None:
            attrs["br_priority"] = priority
        return attrs

    def set_bridge(self, name: str, stp: bool, priority: int | None) -> None:
        self._ipr.link("set", index=self.index(name), kind="bridge",
                       **self.bridge_attrs(stp, priority))

    def delete_link(self, name: str) -> None:
        self._ipr.link("del", index=self.index(name))

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
