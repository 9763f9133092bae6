"""Words for a plan line: what an added or removed object is, and which fields changed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..model.services import DEFAULT_STACK, EXCLUSIVE_STACK_SERVICE
from . import objects as o

Describer = Callable[[o.Data], str]
_MISSING: Any = object()


def describe(kind: o.Kind, data: o.Data) -> str:
    """A short identity of an object for `+`/`-` lines, e.g. `vmotion stack, 198.18.4.11/24`."""
    describer = _DESCRIBERS.get(kind.name)
    return describer(data) if describer else ""


def field_changes(before: o.Data, after: o.Data) -> list[str]:
    """`mtu 1500 -> 9000`, `services +vmotion`, `ipv4.address unset -> 198.18.4.11/24`."""
    return [_one(name, a, b) for name, a, b in _leaves(before, after, "")]


def _leaves(a: Any, b: Any, prefix: str) -> Iterator[tuple[str, Any, Any]]:
    """Differing leaves; nested mappings are walked so only the changed field is named."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*b, *(k for k in a if k not in b)]:
            name = f"{prefix}.{key}" if prefix else str(key)
            yield from _leaves(a.get(key, _MISSING), b.get(key, _MISSING), name)
    elif a != b:
        yield prefix, a, b


def _one(name: str, a: Any, b: Any) -> str:
    if isinstance(a, list) and isinstance(b, list):
        old, new = [_text(x) for x in a], [_text(x) for x in b]
        delta = [f"+{x}" for x in new if x not in old] + [f"-{x}" for x in old if x not in new]
        if delta:
            return f"{name} {' '.join(delta)}"
    return f"{name} {_text(a)} -> {_text(b)}"  # scalars, or a list only reordered


def _text(value: Any) -> str:
    if value is None or value is _MISSING:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_text(v)}" for k, v in value.items()) + "}"
    return str(value)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 'es' if noun.endswith('h') else 's'}"


def _vmknic(d: o.Data) -> str:
    stack = d.get("netstack", DEFAULT_STACK)
    parts = ["default stack" if stack == DEFAULT_STACK else f"{stack} stack"]
    ipv4, ipv6 = d.get("ipv4") or {}, d.get("ipv6") or {}
    if ipv4.get("address"):
        parts.append(str(ipv4["address"]))
    elif ipv4.get("type") == "dhcp":
        parts.append("dhcp")
    parts += [str(a) for a in ipv6.get("addresses", [])]
    if d.get("portgroup"):
        parts.append(f"portgroup {d['portgroup']}")
    elif d.get("dvportgroup"):
        parts.append(f"dvportgroup {d.get('dvs')}/{d['dvportgroup']}")
    implied = EXCLUSIVE_STACK_SERVICE.get(stack)
    services = [s for s in d.get("services", []) if s != implied]
    if services:
        parts.append("services " + ", ".join(services))
    return ", ".join(parts)


def _host(d: o.Data) -> str:
    counts = [(len(d.get("nics", {})), "nic"), (len(d.get("vswitches", {})), "vswitch"),
              (len(d.get("netstacks", {})), "netstack"), (len(d.get("vmknics", {})), "vmknic")]
    return ", ".join(_count(n, noun) for n, noun in counts)


def _storage(d: o.Data) -> str:
    parts = []
    if d.get("iscsi"):
        bound = d["iscsi"].get("boundVmknics", [])
        parts.append(f"iscsi {d['iscsi'].get('name')} bound to {', '.join(bound) or 'nothing'}")
    if d.get("nfs"):
        parts.append(_count(len(d["nfs"]), "nfs datastore"))
    if d.get("fcoe"):
        parts.append(_count(len(d["fcoe"]), "fcoe adapter"))
    return ", ".join(parts)


def _cluster(d: o.Data) -> str:
    flags = [f for f in ("ha", "vsan", "ft") if d.get(f)]
    return ", ".join([*flags, _count(len(d.get("hosts", [])), "host")])


def _dvs(d: o.Data) -> str:
    return f"mtu {d.get('mtu')}, {_count(len(d.get('hosts', {})), 'host')}"


def _vswitch(d: o.Data) -> str:
    return f"mtu {d.get('mtu')}, uplinks {', '.join(d.get('uplinks', [])) or 'none'}"


def _netstack(d: o.Data) -> str:
    gateways = [f"gateway {d[g]}" for g in ("gateway", "ipv6Gateway") if d.get(g)]
    return ", ".join(gateways)


_DESCRIBERS: dict[str, Describer] = {
    o.VMKNIC.name: _vmknic,
    o.HOST.name: _host,
    o.STORAGE.name: _storage,
    o.CLUSTER.name: _cluster,
    o.DVS.name: _dvs,
    o.VSWITCH.name: _vswitch,
    o.NETSTACK.name: _netstack,
    o.NIC.name: lambda d: f"{d.get('speed')} Mbit/s, link {d.get('link')}",
    o.PORTGROUP.name: lambda d: f"vlan {d.get('vlan')}",
    o.DVPORTGROUP.name: lambda d: f"vlan {d.get('vlan')}",
}
