"""A host's desired kernel state, for its agent's reconcile loop (MGMT-3).

The controller renders the lab from its committed inventory (the store's
view: a rollout in flight is not in it until the store commits) and cuts
out what one host owns (`host_part`: its namespaces and the far ends of its
wires in `_pnet`, as `dataplane.ownership` defines it). The generation is
the store version that view came from; the heartbeat reply carries it so an
agent knows when to ask again.

On the wire the state travels as the kernel ops that build it from nothing
(`state_ops`): the kcodec decoder then stays the only one that constructs
kernel objects from a peer's JSON, with its closed list of classes. That JSON
goes deflated (a host of the example lab: 23 kB of JSON, 2.3 kB on the wire),
inflated by the agent up to a limit, and only when its digest differs from the
one the agent already holds (`have`): a timer pass, or a new generation that did
not touch the host, costs a reply of a hundred bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import threading
import weakref
import zlib
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
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
from ..model import DEFAULT_STACK, Datacenter, Service
from ..reach import static_v4
from ..resolve import resolve
from .hosts import HostTable
from .snapshot import FixedInventory, InventorySnapshot

MAX_REPAIRED = 20  # lines of a reconcile report kept in its event
MAX_STATE_BYTES = 16 << 20  # a host's desired state, inflated: what an agent accepts
MAX_HA_EVENTS = 50  # per `ha` call of an agent's FDM
HA_RULES = ("HA-1", "HA-2", "HA-3")


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


def pack_state(state: KernelState) -> tuple[str, str]:
    """(digest, deflated JSON in base64) of a desired state."""
    raw = json.dumps(encode_state(state), separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:32], base64.b64encode(zlib.compress(raw, 6)).decode()


def unpack_state(text: object, limit: int, max_bytes: int = MAX_STATE_BYTES) -> KernelState:
    """`pack_state` read back: at most `max_bytes` inflated, at most `limit` objects."""
    if not isinstance(text, str):
        raise InvalidArgument("A desired state: a deflated JSON text", code="ProtocolError")
    inflate = zlib.decompressobj()
    try:
        raw = inflate.decompress(base64.b64decode(text, validate=True), max_bytes)
    except (binascii.Error, zlib.error) as err:
        raise InvalidArgument(f"A desired state that does not inflate: {err}",
                              code="ProtocolError") from err
    if inflate.unconsumed_tail or not inflate.eof:
        raise InvalidArgument(f"A desired state above {max_bytes} bytes, or cut short",
                              code="ProtocolError")
    try:
        data = json.loads(raw)
    except ValueError as err:
        raise InvalidArgument(f"A desired state that is not JSON: {err}",
                              code="ProtocolError") from err
    return decode_state(data, limit)


def reconciled_event(host: str, report: dict[str, Any]) -> Event:
    """HostReconciledEvent: the agent of `host` put its host back to the desired state."""
    repaired = [str(x)[:200] for x in (report.get("repaired") or [])][:MAX_REPAIRED]
    ops = report.get("ops")
    return Event("MGMT-3", f"hosts/{host}",
                 f"HostReconciledEvent: the agent of {host} repaired drift from generation "
                 f"{report.get('generation')} ({ops} ops"
                 f"{': ' + '; '.join(repaired) if repaired else ''})")


# -- the controller's side: one cache per controller ---------------------------------------


# -- the cluster part: what an agent's FDM needs of a cluster with `ha: true` -------------


def management_addresses(dc: Datacenter, host: str) -> list[str]:
    h = dc.hosts[host]
    out = []
    for vmk in sorted(h.vmknics_with(Service.MANAGEMENT)):
        v4 = static_v4(h.vmknics[vmk])
        if v4 is not None:
            out.append(str(v4.ip))
    return out


def _nfs_adapter(dc: Datacenter, host: str, server: str) -> dict[str, str | None]:
    """The default stack's adapter whose subnet holds the NFS server (as ESXi routes NFS,
    storage/nfs.py `reach`): the datastore heartbeats leave by it, not by management."""
    h = dc.hosts[host]
    for vmk in sorted(h.vmknics_on(DEFAULT_STACK)):
        v4 = static_v4(h.vmknics[vmk])
        try:
            if v4 is not None and ipaddress.ip_address(server) in v4.network:
                return {"vmk": vmk, "source": str(v4.ip)}
        except ValueError:
            break
    return {"vmk": None, "source": None}


def ha_part(dc: Datacenter, host: str, key: bytes) -> dict[str, Any] | None:
    """The HA settings of `host`'s cluster for its FDM (ha/config.py parses them), or None
    when the host is in no cluster with `ha: true`. `key` is the cluster's HMAC key."""
    found = dc.cluster_of(host)
    if found is None or not found[1].ha or host not in dc.hosts:
        return None
    name, cluster = found
    das = cluster.das
    members = {}
    for member in cluster.hosts:
        if member not in dc.hosts or not management_addresses(dc, member):
            continue
        nfs = dc.hosts[member].storage.nfs
        members[member] = {
            "addresses": management_addresses(dc, member),
            "datastores": [{"name": ds, "server": m.servers[0], "share": m.share,
                            "version": m.version, **_nfs_adapter(dc, member, m.servers[0])}
                           for ds, m in sorted(nfs.items()) if m.servers]}
    if host not in members:
        return None
    isolation = das.isolation_addresses()
    stack = dc.hosts[host].netstacks.get(DEFAULT_STACK)
    if das.use_default_isolation_address() and stack is not None and stack.gateway:
        isolation.append(str(stack.gateway))
    adm = das.admission_control
    return {"cluster": name, "key": key.hex(), "members": members,
            "isolationAddresses": isolation, "isolationResponse": das.isolation_response,
            "restartPriority": das.restart_priority,
            "vmRestartPriority": dict(das.vm_restart_priority),
            "heartbeatDatastores": das.heartbeat_datastores(),
            "admission": {"enabled": adm.enabled,
                          "failoverPercent": adm.memory_failover_percent,
                          "hostMemory": adm.host_memory_mib << 20}}


def cluster_key(folder: Path, cluster: str) -> bytes:
    """The cluster's HA key: derived from the controller's CA key, so every controller of
    the lab (they share the CA) hands out the same one, and no host can derive it."""
    secret = (folder / "ca" / "ca.key").read_bytes()
    return hmac.new(secret, f"vmknet-ha:{cluster}".encode(), hashlib.sha256).digest()


def ha_events(host: str, dc: Datacenter, raw: object) -> list[Event]:
    """An FDM's events, checked: HA rules only, about its own cluster's hosts and VMs."""
    found = dc.cluster_of(host)
    if found is None or not isinstance(raw, list):
        return []
    name, cluster = found
    allowed = {f"clusters/{name}"} | {f"hosts/{h}" for h in cluster.hosts}
    out = []
    for item in raw[:MAX_HA_EVENTS]:
        if not isinstance(item, dict):
            continue
        kind, message, path = item.get("kind"), item.get("message"), item.get("path")
        if kind not in HA_RULES or not isinstance(message, str) or not isinstance(path, str):
            continue
        if path in allowed or (path.startswith("vms/") and len(path) <= 80):
            out.append(Event(str(kind), path, message[:500]))
    return out


def ha(controller: _Controller, host: str, params: dict[str, Any]) -> dict[str, Any]:
    """The management door's `ha`: an FDM's events go to the log; it gets its settings."""
    _gen, dc = generation(controller.inventory)
    events = ha_events(host, dc, params.get("events"))
    if events:
        threading.Thread(target=controller.record, args=(events,), daemon=True).start()
    found = dc.cluster_of(host)
    if found is None or not found[1].ha:
        return {"ha": None}
    return {"ha": ha_part(dc, host, cluster_key(controller.folder, found[0]))}


class _Controller(Protocol):
    """What of `service.Controller` this module uses (service imports this module)."""

    @property
    def folder(self) -> Path: ...

    @property
    def hosts(self) -> HostTable: ...

    @property
    def record(self) -> Callable[[list[Event]], None]: ...

    @property
    def inventory(self) -> Callable[[], Datacenter]: ...


def vsan_peers(dc: Datacenter, cluster: str, host: str) -> list[str]:
    """VSAN-1: the unicast agent list the controller hands `host`'s vSAN node: every other
    node of the cluster (its members, then its witness host) by the adapter pair resolve()
    picks (PATH-5; vsanWitness between a member and the witness host, VSAN-3), never `host`
    itself. Each entry: `host,stack,source,address,v|w` (vsan/config.py's Route)."""
    cl = dc.clusters[cluster]
    witness = cl.vsan_config.witness_host
    out = []
    for other in [*sorted(cl.hosts), *([witness] if witness else [])]:
        if other == host:
            continue
        svc = Service.VSAN_WITNESS if witness in (host, other) else Service.VSAN
        flow = resolve(dc, svc, host, other)[0]
        out.append(",".join((other, flow.source.netstack, str(flow.source.address.ip),
                             str(flow.target.address.ip),
                             "w" if svc is Service.VSAN_WITNESS else "v")))
    return out


def generation(inventory: Callable[[], Datacenter]) -> tuple[int, Datacenter]:
    """The committed inventory and its generation: the store version it was read at (a
    digest of the document for an inventory without a store, as in unit tests: one object
    per version there, since an object changed in place keeps its digest)."""
    if isinstance(inventory, InventorySnapshot | FixedInventory):
        return inventory.versioned()
    dc = inventory()
    with _LAST.lock:  # the same object again (every heartbeat): not dumped and hashed again
        if _LAST.dc is dc:
            return _LAST.generation, dc
    digest = hashlib.sha256(dc.model_dump_json().encode()).digest()
    gen = int.from_bytes(digest[:6], "big")
    with _LAST.lock:
        _LAST.dc, _LAST.generation = dc, gen
    return gen, dc


class _LastDigest:
    """The last inventory `generation` digested, and its generation."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.dc: Datacenter | None = None
        self.generation = 0


_LAST = _LastDigest()


class _Rendered:
    """The last rendered lab, kept while the inventory does not move."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key: tuple[int, str] | None = None
        self.state = KernelState()
        self.packed: dict[str, tuple[str, str]] = {}  # host -> pack_state(its part)


_RENDERED: weakref.WeakKeyDictionary[Any, _Rendered] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def _packed(controller: _Controller, lab: str, host: str
            ) -> tuple[int, Datacenter, tuple[str, str]]:
    """The generation, the inventory, and `pack_state` of the host's part, made once per
    generation (render once for the lab, cut and pack once per host)."""
    gen, dc = generation(controller.inventory)
    with _GUARD:
        cache = _RENDERED.setdefault(controller, _Rendered())
    with cache.lock:
        if cache.key != (gen, lab):
            cache.state, cache.key, cache.packed = render(dc, lab), (gen, lab), {}
        packed = cache.packed.get(host)
        if packed is None:
            packed = cache.packed[host] = pack_state(host_part(cache.state, lab, host,
                                                               dc.hosts))
        return gen, dc, packed


def desired(controller: _Controller, host: str, params: dict[str, Any]) -> dict[str, Any]:
    """The management door's `desired`: {generation, hosts, digest, state} of the calling
    host; `same: true` instead of the state when the agent already has it (`have`)."""
    lab = str(params.get("lab", ""))
    try:
        naming.prefix(lab)
    except ValueError as err:
        raise InvalidArgument(str(err)) from err
    gen, dc, (digest, packed) = _packed(controller, lab, host)
    reply: dict[str, Any] = {"generation": gen, "hosts": sorted(dc.hosts), "digest": digest}
    if params.get("have") == digest:
        return reply | {"same": True}
    return reply | {"state": packed}


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
