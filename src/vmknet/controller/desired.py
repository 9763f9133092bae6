"""A host's desired kernel state, for its agent's reconcile loop (MGMT-3).

The controller renders the lab from its committed inventory (the store's
view: a rollout in flight is not in it until the store commits) and cuts
out what one host owns (`host_part`: its namespaces and the far ends of its
wires in `_pnet`, as `dataplane.ownership` defines it). The generation is
the store version that view came from; the heartbeat reply carries it so an
agent knows when to ask again.

On the wire the state travels as the kernel ops that build it from nothing
(`state_ops`): the kcodec decoder then stays the only one that constructs
kernel objects from a peer's JSON, with its closed list of classes.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Callable, Collection, Iterable
from typing import Any, Protocol

from ..dataplane import kcodec, naming
from ..dataplane.kops import (
    AddAddress,
    AddLink,
    AddRoute,
    AddRule,
    CreateNamespace,
    KernelOp,
    SetFilter,
    SetQdisc,
    SetResolver,
    SetSysctl,
)
from ..dataplane.kstate import KernelState
from ..dataplane.ownership import wire_owners
from ..dataplane.render import render
from ..errors import InvalidArgument
from ..events import Event
from ..model import Datacenter
from .hosts import HostTable
from .snapshot import InventorySnapshot

MAX_REPAIRED = 20  # lines of a reconcile report kept in its event


# -- pure: the host's part, and the state as ops ------------------------------------------


def host_part(state: KernelState, lab: str, host: str, hosts: Collection[str]) -> KernelState:
    """What `host` owns of a lab's kernel state: its namespaces, everything in them, and the
    far ends of its wires in the physical network (with their qdiscs)."""
    wires = wire_owners([state], lab, hosts)

    def in_mine(ns: str) -> bool:
        info = naming.parse_ns(ns, lab, hosts)
        return info is not None and info.kind in ("host", "stack") and info.host == host

    def mine(ns: str, ifname: str = "") -> bool:
        return in_mine(ns) or wires.get((ns, ifname)) == host

    return KernelState(
        namespaces={ns for ns in state.namespaces if in_mine(ns)},
        links={k: v for k, v in state.links.items() if mine(*k)},
        addresses={a for a in state.addresses if mine(a.ns, a.ifname)},
        routes={r for r in state.routes if in_mine(r.ns)},
        rules={r for r in state.rules if in_mine(r.ns)},
        sysctls={k: v for k, v in state.sysctls.items() if in_mine(k[0])},
        qdiscs={k: v for k, v in state.qdiscs.items() if mine(*k)},
        resolvers={k: v for k, v in state.resolvers.items() if in_mine(k)},
        filters={k: v for k, v in state.filters.items() if in_mine(k)},
    )


def state_ops(state: KernelState) -> list[KernelOp]:
    """The state as ops that build it from nothing (one per object; a veth end each)."""
    ops: list[KernelOp] = [CreateNamespace(ns) for ns in sorted(state.namespaces)]
    ops += [AddLink(link) for _, link in sorted(state.links.items())]
    ops += [AddAddress(a) for a in sorted(state.addresses, key=repr)]
    ops += [AddRoute(r) for r in sorted(state.routes, key=repr)]
    ops += [AddRule(r) for r in sorted(state.rules, key=repr)]
    ops += [SetSysctl(ns, key, None, v) for (ns, key), v in sorted(state.sysctls.items())]
    ops += [SetQdisc(q.ns, q.ifname, None, q) for _, q in sorted(state.qdiscs.items())]
    ops += [SetResolver(ns, None, r) for ns, r in sorted(state.resolvers.items())]
    ops += [SetFilter(ns, None, f) for ns, f in sorted(state.filters.items())]
    return ops


def from_ops(ops: Iterable[KernelOp]) -> KernelState:
    """`state_ops` read back; any other kind of op is refused."""
    state = KernelState()
    for op in ops:
        if isinstance(op, CreateNamespace):
            state.namespaces.add(op.ns)
        elif isinstance(op, AddLink) and op.peer_link is None:
            state.links[op.link.key] = op.link
        elif isinstance(op, AddAddress):
            state.addresses.add(op.address)
        elif isinstance(op, AddRoute):
            state.routes.add(op.route)
        elif isinstance(op, AddRule):
            state.rules.add(op.rule)
        elif isinstance(op, SetSysctl) and op.before is None:
            state.sysctls[(op.ns, op.key)] = op.after
        elif isinstance(op, SetQdisc) and op.before is None and op.after is not None:
            state.qdiscs[(op.ns, op.ifname)] = op.after
        elif isinstance(op, SetResolver) and op.before is None and op.after is not None:
            state.resolvers[op.ns] = op.after
        elif isinstance(op, SetFilter) and op.before is None and op.after is not None:
            state.filters[op.ns] = op.after
        else:
            raise InvalidArgument(f"Not part of a desired state: {type(op).__name__}",
                                  code="ProtocolError")
    return state


def encode_state(state: KernelState) -> list[Any]:
    return [kcodec.encode(op) for op in state_ops(state)]


def decode_state(raw: object, limit: int) -> KernelState:
    if not isinstance(raw, list) or len(raw) > limit:
        raise InvalidArgument(f"A desired state: a list of at most {limit} objects",
                              code="ProtocolError")
    return from_ops(kcodec.decode_op(op) for op in raw)


def reconciled_event(host: str, report: dict[str, Any]) -> Event:
    """HostReconciledEvent: the agent of `host` put its host back to the desired state."""
    repaired = [str(x)[:200] for x in (report.get("repaired") or [])][:MAX_REPAIRED]
    ops = report.get("ops")
    return Event("MGMT-3", f"hosts/{host}",
                 f"HostReconciledEvent: the agent of {host} repaired drift from generation "
                 f"{report.get('generation')} ({ops} ops"
                 f"{': ' + '; '.join(repaired) if repaired else ''})")


# -- the controller's side: one cache per controller ---------------------------------------


class _Controller(Protocol):
    """What of `service.Controller` this module uses (service imports this module)."""

    @property
    def hosts(self) -> HostTable: ...

    @property
    def record(self) -> Callable[[list[Event]], None]: ...

    @property
    def inventory(self) -> Callable[[], Datacenter]: ...


def generation(inventory: Callable[[], Datacenter]) -> tuple[int, Datacenter]:
    """The committed inventory and its generation: the store version it was read at (a
    digest of the document for an inventory without a store, as in unit tests)."""
    if isinstance(inventory, InventorySnapshot):
        return inventory.versioned()
    dc = inventory()
    digest = hashlib.sha256(dc.model_dump_json().encode()).digest()
    return int.from_bytes(digest[:6], "big"), dc


class _Rendered:
    """The last rendered lab, kept while the inventory does not move."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key: tuple[int, str] | None = None
        self.state = KernelState()


_RENDERED: weakref.WeakKeyDictionary[Any, _Rendered] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def _rendered(controller: _Controller, lab: str) -> tuple[int, Datacenter, KernelState]:
    gen, dc = generation(controller.inventory)
    with _GUARD:
        cache = _RENDERED.setdefault(controller, _Rendered())
    with cache.lock:
        if cache.key != (gen, lab):
            cache.state, cache.key = render(dc, lab), (gen, lab)
        return gen, dc, cache.state


def desired(controller: _Controller, host: str, params: dict[str, Any]) -> dict[str, Any]:
    """The management door's `desired`: {generation, hosts, state} of the calling host."""
    lab = str(params.get("lab", ""))
    try:
        naming.prefix(lab)
    except ValueError as err:
        raise InvalidArgument(str(err)) from err
    gen, dc, state = _rendered(controller, lab)
    part = host_part(state, lab, host, dc.hosts)
    return {"generation": gen, "hosts": sorted(dc.hosts), "state": encode_state(part)}


def beat(controller: _Controller, host: str, params: dict[str, Any]) -> dict[str, Any]:
    """The heartbeat's part: keep what the agent reports of its reconcile; tell it the
    generation it should realise."""
    gen, _dc = generation(controller.inventory)
    realised = params.get("realised")
    error = params.get("reconcileError")
    controller.hosts.reconcile(host, gen, realised if isinstance(realised, int) else None,
                               str(error)[:500] if error else None)
    return {"generation": gen}


def reconciled(controller: _Controller, host: str, params: dict[str, Any]) -> dict[str, Any]:
    """An agent repaired its host: the event goes to the log, off the agent's connection."""
    event = reconciled_event(host, params)
    threading.Thread(target=controller.record, args=([event],), daemon=True).start()
    return {}
