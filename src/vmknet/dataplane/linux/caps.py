"""What this kernel offers for VLANs and teaming, detected once in a scratch namespace.

vmknet's lab realises VLANs as one separate segment (bridge) per VLAN and NIC
teaming as STP failover over per-adapter bridges (the teaming order becomes STP
path costs), because those need only veth + bridge. A kernel with 802.1Q
devices and bonding would allow VLAN sub-interfaces on one trunk and
active-backup bonds; `Capabilities` reports both, so `lab up` can say which
mechanism it uses and why.
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from typing import Any

from . import netns
from .nl import Netlink

PROBES: dict[str, dict[str, Any]] = {
    "dummy": {"kind": "dummy"},
    "bond": {"kind": "bond"},
    "team": {"kind": "team"},
    "vrf": {"kind": "vrf", "vrf_table": 100},
    "vxlan": {"kind": "vxlan", "vxlan_id": 42},
    "macvlan": {"kind": "macvlan", "macvlan_mode": "bridge"},
    "vlan": {"kind": "vlan", "vlan_id": 42},
    "bridge_vlan_filtering": {"kind": "bridge", "br_vlan_filtering": 1},
}


@dataclass(frozen=True, slots=True)
class Capabilities:
    kernel: tuple[tuple[str, bool], ...]  # (feature, present)
    vlan_mechanism: str  # what the lab uses
    vlan_alternative: str | None  # what this kernel would also allow
    teaming_mechanism: str
    teaming_alternative: str | None

    def has(self, feature: str) -> bool:
        return dict(self.kernel).get(feature, False)

    def to_dict(self) -> dict[str, object]:
        return {
            "kernel": dict(self.kernel),
            "vlan": {"used": self.vlan_mechanism, "available": self.vlan_alternative},
            "teaming": {"used": self.teaming_mechanism, "available": self.teaming_alternative},
        }


SEGMENT_PER_VLAN = "segment-per-vlan (one bridge per VLAN; frames of VLANs never share a wire)"
STP_FAILOVER = "stp-failover (per-adapter bridges; teaming order = STP path cost)"


def _probe() -> dict[str, bool]:
    scratch = f"vmkl-caps-{os.getpid()}"
    netns.create(scratch)
    found: dict[str, bool] = {}
    try:
        with netns.open_netlink(scratch) as nlk:
            nlk.add_link("probe0", "bridge", 1500, None)
            parent = nlk.index("probe0")
            for i, (feature, spec) in enumerate(PROBES.items()):
                extra = {k: v for k, v in spec.items() if k != "kind"}
                if feature in ("vlan", "macvlan", "vxlan"):
                    extra["link"] = parent
                found[feature] = _try(nlk, f"probe{i + 1}", str(spec["kind"]), extra)
    finally:
        netns.remove(scratch)
    return found


def _try(nlk: Netlink, name: str, kind: str, extra: dict[str, Any]) -> bool:
    try:
        nlk.add_link(name, kind, 1500, None, **extra)
    except Exception:
        return False
    with contextlib.suppress(Exception):
        nlk.delete_link(name)
    return True


@functools.cache
def detect() -> Capabilities:
    kernel = _probe()
    vlan = "8021q (VLAN sub-interfaces on one trunk)" if kernel.get("vlan") else None
    if vlan is None and kernel.get("vxlan"):
        vlan = "vxlan (VNI = VLAN id over the uplink)"
    team = "bond active-backup" if kernel.get("bond") else None
    return Capabilities(tuple(sorted(kernel.items())), SEGMENT_PER_VLAN, vlan, STP_FAILOVER, team)
