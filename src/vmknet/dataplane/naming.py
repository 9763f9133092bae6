"""Names of every kernel object vmknet makes, and the way back from a name to its role.

Pure: no I/O. Namespaces are ``vmkl-<lab>.<...>`` so a crashed lab's leftovers
are found by prefix (LAB.md). Interface names must fit the kernel's IFNAMSIZ
(15 characters) and be unique per namespace; where a readable name could be
too long or clash (wires in the shared physical network) a short stable hash
is used instead, and :func:`vmknet.dataplane.render.render_index` maps it back.

    vmkl-lab._pnet              the physical switch fabric: one bridge ``vl<vlan>`` per VLAN
    vmkl-lab._rtr.<router>      a router joining VLAN segments
    vmkl-lab._ctl               the controller (talks to management adapters, REQ-5)
    vmkl-lab._sto.<array>       a storage array: its interfaces ``s<i>`` and its iSCSI target
    vmkl-lab.<host>             the host's switching plane: per-adapter bridges and uplink wires
    vmkl-lab.<host>.<stack>     one kernel TCP/IP stack (NS-2) holding its adapters ``vmkN``
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Literal

from .kstate import POLICY_TABLES

IFNAMSIZ = 15  # usable characters of a Linux interface name
PNET = "_pnet"
CONTROLLER = "_ctl"
ROUTER = "_rtr"
ARRAY = "_sto"
_LAB_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
_VMK = re.compile(r"vmk(\d{1,4})")
_VMNIC = re.compile(r"vmnic(\d{1,4})")
_RESERVED_TABLES = range(253, 256)  # default, main, local: never a policy table


def prefix(lab: str = "lab") -> str:
    """The prefix of every namespace of one lab; the trailing dot keeps `lab` apart from `lab2`."""
    if not _LAB_NAME.fullmatch(lab):
        raise ValueError(f"lab name {lab!r}: use 1-32 letters, digits, '-' or '_'")
    return f"vmkl-{lab}."


def host_ns(lab: str, host: str) -> str:
    return prefix(lab) + _safe(host)


def stack_ns(lab: str, host: str, stack: str) -> str:
    return f"{host_ns(lab, host)}.{_safe(stack)}"


def pnet_ns(lab: str = "lab") -> str:
    return prefix(lab) + PNET


def router_ns(lab: str, router: str) -> str:
    return f"{prefix(lab)}{ROUTER}.{_safe(router)}"


def controller_ns(lab: str = "lab") -> str:
    return prefix(lab) + CONTROLLER


def array_ns(lab: str, array: str) -> str:
    """A storage array's own namespace (STO-6): its target process runs in it."""
    return f"{prefix(lab)}{ARRAY}.{_safe(array)}"


def _safe(part: str) -> str:
    # A namespace is a file under /run/netns: no '/', and no leading '.'.
    return part.replace("/", "_").lstrip(".") or "_"


# ---------------------------------------------------------------- interfaces


def _short_hash(text: str, length: int) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:length]


def fits(name: str) -> bool:
    """A valid kernel interface name (dev_valid_name)."""
    return (0 < len(name) <= IFNAMSIZ and name not in (".", "..")
            and not any(c in name for c in "/: \t\n"))


def adapter_ifname(vmk: str) -> str:
    """The adapter keeps its ESXi name (`vmk2`) inside its stack namespace when it fits."""
    return vmk if fits(vmk) else "vmk-" + _short_hash(vmk, 8)


def _adapter_token(vmk: str) -> str:
    # Short enough that "<token>-br" and "<token>-n<nic>" fit in 15 characters.
    return vmk if _VMK.fullmatch(vmk) else "a" + _short_hash(vmk, 6)


def adapter_port(vmk: str) -> str:
    """Host-plane end of the adapter's veth, on the adapter's bridge."""
    return _adapter_token(vmk) + "-p"


def adapter_bridge(vmk: str) -> str:
    """Per-adapter bridge: teaming is per virtual port in ESXi (portid load balancing)."""
    return _adapter_token(vmk) + "-br"


def nic_token(nic: str, host_nics: Iterable[str]) -> str:
    """`n3` for vmnic3; other names get their position, `x<i>`, which cannot clash with `n`."""
    match = _VMNIC.fullmatch(nic)
    if match:
        return "n" + match.group(1)
    odd = sorted(n for n in host_nics if not _VMNIC.fullmatch(n))
    return f"x{odd.index(nic) if nic in odd else len(odd)}"


def wire_host(vmk: str, nic: str, host_nics: Iterable[str]) -> str:
    """Host-plane end of one uplink wire of one adapter (`vmk2-n3`: vmk2's wire on vmnic3)."""
    return f"{_adapter_token(vmk)}-{nic_token(nic, host_nics)}"


def wire_pnet(host: str, vmk: str, nic: str) -> str:
    """Physical-network end of a wire: many hosts share `_pnet`, so a 40-bit stable hash."""
    return "w" + _short_hash(f"{host}/{vmk}/{nic}", 10)


def segment_bridge(vlan: int) -> str:
    """One bridge per VLAN in `_pnet`: separate segments give SW-3 isolation without 802.1Q."""
    return f"vl{vlan}"


def router_ifname(index: int) -> str:
    return f"r{index}"


def router_port(router: str, index: int) -> str:
    """`<router>-<i>` in `_pnet`, shortened with a hash when it would not fit."""
    name = f"{router}-{index}"
    # Never clashes with `w<hex>` wires, `vl<id>` segments or `ctl`: those have no '-'.
    if fits(name):
        return name
    return f"{router[:4]}_{_short_hash(router, 4)}-{index}"


def array_ifname(index: int) -> str:
    return f"s{index}"


def array_port(array: str, index: int) -> str:
    """`<array>.<i>` in `_pnet`, shortened with a hash when it would not fit.

    The dot keeps it apart from router ports (`<router>-<i>`: router names have
    no dots), wires (`w<hex>`), segments (`vl<id>`) and the controller (`ctl`).
    """
    name = f"{array}.{index}"
    if fits(name):
        return name
    return f"{array[:4]}.{_short_hash(array, 4)}.{index}"


CONTROLLER_IF = "ctl0"
CONTROLLER_PORT = "ctl"


# ------------------------------------------------------------ policy routing


def adapter_number(vmk: str) -> int:
    """N of vmkN; other names get a stable number above any real ESXi adapter's."""
    match = _VMK.fullmatch(vmk)
    if match:
        return int(match.group(1))
    return 10000 + int(_short_hash(vmk, 4), 16) % 10000


def policy_table(vmk: str) -> int | None:
    """Table 100+N holds vmkN's own routes, skipping the kernel's 253-255.

    None beyond the tables vmknet owns (vmk897 and up): such an adapter gets
    no policy routing, its flows follow the main table.
    """
    table = 100 + adapter_number(vmk)
    if table >= _RESERVED_TABLES.start:
        table += len(_RESERVED_TABLES)
    return table if table in POLICY_TABLES else None


def policy_priority(vmk: str) -> int:
    return 1000 + adapter_number(vmk)


def natural_key(name: str) -> tuple[str, int, str]:
    """vmk2 before vmk10: ports are numbered the way ESXi lists them."""
    match = re.fullmatch(r"(\D*)(\d+)(.*)", name)
    if not match:
        return (name, -1, "")
    return (match.group(1), int(match.group(2)), match.group(3))


# -------------------------------------------------------------- mapping back

NsKind = Literal["host", "stack", "pnet", "router", "controller", "array"]


@dataclass(frozen=True, slots=True)
class NsInfo:
    kind: NsKind
    host: str | None = None
    stack: str | None = None
    router: str | None = None
    array: str | None = None


def parse_ns(ns: str, lab: str = "lab", hosts: Collection[str] = ()) -> NsInfo | None:
    """The role of a namespace name, None when it is not one of this lab's.

    Host names may contain dots; pass the known `hosts` to split `<host>.<stack>`
    exactly, else the last dot separates the stack (stack names have no dots, NS-1).
    """
    pre = prefix(lab)
    if not ns.startswith(pre):
        return None
    rest = ns[len(pre):]
    if rest == PNET:
        return NsInfo("pnet")
    if rest == CONTROLLER:
        return NsInfo("controller")
    if rest.startswith(ROUTER + "."):
        return NsInfo("router", router=rest[len(ROUTER) + 1:])
    if rest.startswith(ARRAY + "."):
        return NsInfo("array", array=rest[len(ARRAY) + 1:])
    for host in sorted(hosts, key=len, reverse=True):
        safe = _safe(host)
        if rest == safe:
            return NsInfo("host", host=host)
        if rest.startswith(safe + "."):
            return NsInfo("stack", host=host, stack=rest[len(safe) + 1:])
    if "." in rest and not hosts:
        host, stack = rest.rsplit(".", 1)
        return NsInfo("stack", host=host, stack=stack)
    return NsInfo("host", host=rest) if not hosts else None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What one interface stands for, for stats and the CLI (see `render_index`)."""

    role: Literal["adapter", "adapter-port", "adapter-bridge", "wire-host", "wire-pnet",
                  "segment", "router-if", "router-port", "controller-if", "controller-port",
                  "array-if", "array-port"]
    host: str | None = None
    vmk: str | None = None
    nic: str | None = None
    vlan: int | None = None
    router: str | None = None
    array: str | None = None
