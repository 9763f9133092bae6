"""Links: veth pairs, bridges (kernel STP) and ifb devices.

A veth pair is created in one netlink request from the first end's namespace
with the peer placed directly in its own namespace (IFLA_NET_NS_FD), both ends
down and with their MTU and MAC; then each end gets its master and STP port
cost, and only then its admin state. If any later step fails the pair is
deleted again, so the op leaves the kernel as it was.

Bridges are created with kernel STP (`stp_state` 1 when `Link.stp`) and the
minimum timers (forward delay 2 s, hello 1 s, max age 6 s) so that a blocked
port takes over within about 2 x forward delay when the preferred wire fails.
"""

from __future__ import annotations

import contextlib
import os

from ..kops import AddLink, DeleteLink, ModifyLink
from ..kstate import Link
from . import netns
from .errors import refuse
from .nl import Netlink


def _attach(link: Link, nlk: Netlink | None = None) -> None:
    """Master, port cost, then admin state of an existing link (in that order).

    `nlk`: an open socket in `link.ns` to use (else one is opened for this).
    """
    if nlk is None:
        with netns.open_netlink(link.ns) as own:
            _attach(link, own)
        return
    if link.master is not None:
        nlk.set_link(link.name, master=nlk.index(link.master))
        if link.port_cost is not None:
            nlk.set_port_cost(link.name, link.port_cost)
    if link.up:
        nlk.set_link(link.name, state="up")


def _check(op: AddLink | ModifyLink, link: Link | None) -> None:
    """Refuse values netlink cannot even encode, before touching the kernel."""
    if link is None:
        return
    for what, value, low in (("bridge priority", link.bridge_priority, 0),
                             ("port cost", link.port_cost, 1), ("MTU", link.mtu, 68)):
        if value is not None and not low <= value <= 0xFFFF:
            raise refuse(op, f"{what} {value} out of range {low}..65535")


def add(op: AddLink) -> None:
    link = op.link
    _check(op, link)
    _check(op, op.peer_link)
    if link.kind == "veth":
        _add_veth(op)
        return
    with netns.open_netlink(link.ns) as nlk:
        if link.kind == "bridge":
            nlk.add_bridge(link.name, link.mtu, link.mac, link.stp, link.bridge_priority,
                               link.ageing)
        else:
            nlk.add_link(link.name, link.kind, link.mtu, link.mac)
        try:
            _attach(link, nlk)
        except BaseException:
            with contextlib.suppress(Exception):
                nlk.delete_link(link.name)
            raise


def _add_veth(op: AddLink) -> None:
    link, peer = op.link, op.peer_link
    if peer is None or link.peer not in (None, peer.key):
        raise refuse(op, "a veth needs both ends (peer_link naming link.peer)")
    peer_fd = netns.open_fd(peer.ns) if peer.ns != link.ns else None
    try:
        with netns.open_netlink(link.ns) as nlk:
            nlk.add_veth(link.name, link.mtu, link.mac, peer.name, peer.mtu, peer.mac, peer_fd)
            try:
                _attach(link, nlk)
                _attach(peer, nlk if peer.ns == link.ns else None)
            except BaseException:
                with contextlib.suppress(Exception):
                    nlk.delete_link(link.name)  # takes the peer with it
                raise
    finally:
        if peer_fd is not None:
            os.close(peer_fd)


def delete(op: DeleteLink) -> None:
    """Deleting one end of a veth deletes both ends."""
    with netns.open_netlink(op.link.ns) as nlk:
        nlk.delete_link(op.link.name)


def _apply(nlk: Netlink, before: Link, after: Link) -> None:
    """Move one link from `before` to `after`, admin-down first and admin-up last."""
    name = after.name
    if before.up and not after.up:
        nlk.set_link(name, state="down")
    if after.mtu != before.mtu:
        nlk.set_link(name, mtu=after.mtu)
    if after.mac is not None and after.mac != before.mac:
        nlk.set_link(name, address=after.mac)
    if after.kind == "bridge" and (after.stp, after.bridge_priority, after.ageing) != (
            before.stp, before.bridge_priority, before.ageing):
        nlk.set_bridge(name, after.stp, after.bridge_priority, after.ageing)
    if after.master != before.master:
        nlk.set_link(name, master=nlk.index(after.master) if after.master else 0)
    if after.master is not None and after.port_cost is not None and (
            after.port_cost != before.port_cost or after.master != before.master):
        nlk.set_port_cost(name, after.port_cost)
    if after.up and not before.up:
        nlk.set_link(name, state="up")


def modify(op: ModifyLink) -> None:
    before, after = op.before, op.after
    _check(op, after)
    if (before.ns, before.name, before.kind, before.peer) != (
            after.ns, after.name, after.kind, after.peer):
        raise refuse(op, "only master, MTU, MAC, admin state and STP settings can change")
    with netns.open_netlink(after.ns) as nlk:
        try:
            _apply(nlk, before, after)
        except BaseException:
            with contextlib.suppress(Exception):
                _force(nlk, before)  # back to `before` from wherever we stopped
            raise


def _force(nlk: Netlink, link: Link) -> None:
    """Set every attribute of `link` regardless of its current values (rollback)."""
    nlk.set_link(link.name, mtu=link.mtu)
    if link.mac is not None:
        nlk.set_link(link.name, address=link.mac)
    if link.kind == "bridge":
        nlk.set_bridge(link.name, link.stp, link.bridge_priority, link.ageing)
    nlk.set_link(link.name, master=nlk.index(link.master) if link.master else 0)
    if link.master is not None and link.port_cost is not None:
        nlk.set_port_cost(link.name, link.port_cost)
    nlk.set_link(link.name, state="up" if link.up else "down")
