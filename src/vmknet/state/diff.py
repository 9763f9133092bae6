"""Plan: the ordered changes that turn the current datacenter into the desired one.

One change per object (see objects.py). The order is one that can be
executed step by step, as vCenter would have to:

1. removals, dependents first: storage bindings, vmknics, port groups,
   switches and stacks, NICs, hosts, then distributed port groups, distributed
   switches, clusters;
2. modifications, parents first;
3. additions (and NS-4 replacements), parents first: clusters, distributed
   switches and their port groups, hosts, NICs, switches, port groups,
   stacks, vmknics, storage.

A replacement is listed with the additions because its new stack must exist
before the adapter is re-created on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..model import Datacenter
from . import objects as o
from .describe import describe, field_changes

Action = Literal["add", "remove", "modify", "replace"]


@dataclass(frozen=True)
class Change:
    action: Action
    path: str  # "hosts/esx01/vmknics/vmk2"; "" is the datacenter itself
    summary: str
    before: Any  # own fields before (None for add), children excluded
    after: Any  # own fields after (None for remove)
    kind: str = ""  # "vmknic", "portgroup", ... (see objects.py)


# Storage first among removals: iSCSI bindings and FCoE name the vmknics removed next.
REMOVE_ORDER = (o.STORAGE, o.VMKNIC, o.PORTGROUP, o.VSWITCH, o.NETSTACK, o.NIC, o.HOST,
                o.DVPORTGROUP, o.DVS, o.CLUSTER, o.PHYSICAL)
ADD_ORDER = (o.DATACENTER, o.PHYSICAL, o.CLUSTER, o.DVS, o.DVPORTGROUP, o.HOST, o.NIC,
             o.VSWITCH, o.PORTGROUP, o.NETSTACK, o.VMKNIC, o.STORAGE)
_PHASE = {"remove": 0, "modify": 1, "add": 2, "replace": 2}
_REMOVE_RANK = {kind.name: i for i, kind in enumerate(REMOVE_ORDER)}
_ADD_RANK = {kind.name: i for i, kind in enumerate(ADD_ORDER)}
_SYMBOL = {"add": "+", "remove": "-", "modify": "~", "replace": "±"}


def diff(current: Datacenter, desired: Datacenter) -> list[Change]:
    """Ordered changes from `current` to `desired`; `diff(x, x) == []`."""
    before = {obj.key: obj for obj in o.objects(o.dump(current))}
    after = {obj.key: obj for obj in o.objects(o.dump(desired))}
    changes = [_removed(obj) for key, obj in before.items() if key not in after]
    for key, obj in after.items():
        old = before.get(key)
        if old is None:
            changes.append(_added(obj))
        elif old.own != obj.own:
            changes.append(_modified(old, obj))
    # sorted() is stable: document order is kept within one phase and kind
    return sorted(changes, key=_rank)


def format_plan(changes: list[Change]) -> list[str]:
    """`+ hosts/esx01/vmknics/vmk2  (vmotion stack, 198.18.4.11/24)`, one line per change."""
    lines = []
    for change in changes:
        line = f"{_SYMBOL[change.action]} {change.path or 'datacenter'}"
        lines.append(f"{line}  ({change.summary})" if change.summary else line)
    return lines


def _rank(change: Change) -> tuple[int, int]:
    ranks = _REMOVE_RANK if change.action == "remove" else _ADD_RANK
    return _PHASE[change.action], ranks[change.kind]


def _added(obj: o.Obj) -> Change:
    return Change("add", obj.path, describe(obj.kind, obj.full), None, obj.own, obj.kind.name)


def _removed(obj: o.Obj) -> Change:
    return Change("remove", obj.path, describe(obj.kind, obj.full), obj.own, None, obj.kind.name)


def _modified(old: o.Obj, new: o.Obj) -> Change:
    fixed = {f: rule for f, rule in old.kind.fixed.items() if old.own.get(f) != new.own.get(f)}
    if not fixed:
        summary = "; ".join(field_changes(old.own, new.own))
        return Change("modify", new.path, summary, old.own, new.own, new.kind.name)
    # NS-4: the stack of an adapter is chosen at creation, so the plan re-creates it
    why = [f"{rule}: {f} {old.own.get(f)} -> {new.own.get(f)} is fixed at creation, "
           "remove and re-create" for f, rule in fixed.items()]
    rest = field_changes({k: v for k, v in old.own.items() if k not in fixed},
                         {k: v for k, v in new.own.items() if k not in fixed})
    return Change("replace", new.path, "; ".join(why + rest), old.own, new.own, new.kind.name)
