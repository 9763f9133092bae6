"""The datacenter as a flat list of objects, each with its own fields: what a plan acts on.

A plan speaks of objects a vSphere administrator creates one at a time
(a host, a port group, a vmknic), so the canonical dump is cut at the
collections that hold child objects. Any field not declared here as a
child collection stays an own field of its parent, so a field added to the
model later is still compared, never silently skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ..model import Storage
from ..model.physical import PhysicalNetwork

Data = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """One type of plan object and where its children live in the dump."""

    name: str
    keyed: Mapping[str, Kind] = field(default_factory=dict)  # field -> {name: child}
    single: Mapping[str, Kind] = field(default_factory=dict)  # field -> one child section
    # Own fields that cannot change in place: changing one means remove and re-create.
    fixed: Mapping[str, str] = field(default_factory=dict)  # field -> SPEC rule id
    # A single section equal to its default model is "absent": nothing to add or remove.
    default: Data | None = None


def _dump_default(model: type[BaseModel]) -> Data:
    data: Data = model().model_dump(mode="json", by_alias=True)
    return data


CLUSTER = Kind("cluster")
DVPORTGROUP = Kind("dvportgroup")
DVS = Kind("distributed switch", keyed={"portgroups": DVPORTGROUP})
NIC = Kind("nic")
PORTGROUP = Kind("portgroup")
VSWITCH = Kind("vswitch", keyed={"portgroups": PORTGROUP})
NETSTACK = Kind("netstack")
VMKNIC = Kind("vmknic", fixed={"netstack": "NS-4"})
STORAGE = Kind("storage", default=_dump_default(Storage))
HOST = Kind(
    "host",
    keyed={"nics": NIC, "vswitches": VSWITCH, "netstacks": NETSTACK, "vmknics": VMKNIC},
    single={"storage": STORAGE},
)
PHYSICAL = Kind("physical network", default=_dump_default(PhysicalNetwork))
DATACENTER = Kind(
    "datacenter",
    keyed={"clusters": CLUSTER, "distributedSwitches": DVS, "hosts": HOST},
    single={"physical": PHYSICAL},
)

@dataclass(frozen=True)
class Obj:
    kind: Kind
    key: tuple[str, ...]  # ("hosts", "esx01", "vmknics", "vmk2")
    own: Data  # fields of this object only, children cut off
    full: Data  # the whole subtree, for summaries (counts, addresses)

    @property
    def path(self) -> str:
        return "/".join(self.key)


def dump(dc: BaseModel) -> Data:
    """Every field, defaults included, so a summary can say `mtu 1500 -> 9000`."""
    data: Data = dc.model_dump(mode="json", by_alias=True)
    return data


def objects(data: Data, kind: Kind = DATACENTER, key: tuple[str, ...] = ()) -> Iterator[Obj]:
    """Parents before children, in document order."""
    cut = kind.keyed.keys() | kind.single.keys()
    yield Obj(kind, key, {k: v for k, v in data.items() if k not in cut}, data)
    for name, child in kind.keyed.items():
        for child_name, child_data in (data.get(name) or {}).items():
            yield from objects(child_data, child, (*key, name, child_name))
    for name, child in kind.single.items():
        section = data.get(name)
        if section is not None and section != child.default:
            yield from objects(section, child, (*key, name))
