"""Which host owns each kernel op of a lab plan: what a host's agent may undo by itself.

A host owns its own namespaces (its switching plane and every TCP/IP stack)
and the far ends of its uplink wires in the physical network (`_pnet`): which
segment a wire is plugged into is the host's port group VLAN, so a change
that re-plugs it is the host's change, and the host's agent can take it back
(MGMT-2). Everything else (segments, routers, the controller's namespace)
belongs to the fabric (`None`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from . import naming
from .kops import (
    AddAddress,
    AddLink,
    AddRoute,
    AddRule,
    DeleteAddress,
    DeleteLink,
    DeleteRoute,
    DeleteRule,
    KernelOp,
    ModifyLink,
)
from .kstate import KernelState, Link

Owner = str | None


def _ns_owner(ns: str, lab: str, hosts: Collection[str]) -> Owner:
    info = naming.parse_ns(ns, lab, hosts)
    return info.host if info is not None and info.kind in ("host", "stack") else None


def _link_owner(link: Link, lab: str, hosts: Collection[str]) -> Owner:
    owner = _ns_owner(link.ns, lab, hosts)
    if owner is None and link.peer is not None:
        owner = _ns_owner(link.peer[0], lab, hosts)  # a wire's far end in _pnet
    return owner


def op_owner(op: KernelOp, lab: str, hosts: Collection[str],
             wires: dict[tuple[str, str], str]) -> Owner:
    """The host that owns `op`, or None for the fabric. `wires`: pnet ifname -> host."""
    if isinstance(op, AddLink | DeleteLink):
        owner = _link_owner(op.link, lab, hosts)
        if owner is None and op.peer_link is not None:
            owner = _link_owner(op.peer_link, lab, hosts)
        return owner
    if isinstance(op, ModifyLink):
        return _link_owner(op.after, lab, hosts)
    if isinstance(op, AddAddress | DeleteAddress):
        ns, ifname = op.address.ns, op.address.ifname
    elif isinstance(op, AddRoute | DeleteRoute):
        ns, ifname = op.route.ns, op.route.dev or ""
    elif isinstance(op, AddRule | DeleteRule):
        ns, ifname = op.rule.ns, ""
    else:
        ns = str(getattr(op, "ns", ""))
        ifname = str(getattr(op, "ifname", ""))
    return _ns_owner(ns, lab, hosts) or wires.get((ns, ifname))


def wire_owners(states: Iterable[KernelState], lab: str,
                hosts: Collection[str]) -> dict[tuple[str, str], str]:
    """(pnet ns, ifname) -> host, for every wire end in the physical network."""
    out: dict[tuple[str, str], str] = {}
    for state in states:
        for link in state.links.values():
            owner = _link_owner(link, lab, hosts)
            if owner is not None and _ns_owner(link.ns, lab, hosts) is None:
                out[link.key] = owner
    return out


def partition(ops: list[KernelOp], lab: str, hosts: Collection[str],
              states: Iterable[KernelState]) -> dict[Owner, list[int]]:
    """Indices of `ops` per owner (host name, or None for the fabric), in plan order."""
    wires = wire_owners(states, lab, hosts)
    out: dict[Owner, list[int]] = {}
    for i, op in enumerate(ops):
        out.setdefault(op_owner(op, lab, hosts, wires), []).append(i)
    return out
