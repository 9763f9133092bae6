"""Which physical NICs carry one VMkernel adapter now: the vSphere Client's "trace route".

    trace(dc, "esx01", "vmk1", states=stp.port_states)   # a lab: the kernel says
    trace(dc, "esx01", "vmk1")                           # no lab: what teaming predicts

The lab gives each adapter one wire per vmnic of its teaming order (active,
then standby), plugged into the adapter's STP bridge with rising path costs
(dataplane.render); STP forwards on the cheapest wire whose NIC has link, so
a wire in "forwarding" state is the NIC carrying the adapter now. Without a
lab (or when the kernel cannot be read) the answer is the prediction: the
first NIC of the order whose link is up, marked `measured: false`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..dataplane import naming
from ..dataplane.render import render
from ..errors import DataplaneError, NotFound
from ..model import Datacenter
from ..rules.topology import attachment
from .topology import adapter

Json = dict[str, Any]
PortStates = Callable[[str], dict[str, str]]  # namespace -> bridge port -> STP state


def _wires(dc: Datacenter, lab: str, host: str, vmk: str) -> list[tuple[str, str]]:
    """(wire interface, vmnic) in failover order, as the lab renders them."""
    state = render(dc, lab)
    hns, bridge = naming.host_ns(lab, host), naming.adapter_bridge(vmk)
    nics = dc.host(host).nics
    wires = [link for link in state.links.values()
             if link.ns == hns and link.master == bridge and link.port_cost is not None]
    wires.sort(key=lambda link: link.port_cost or 0)
    by_name = {naming.wire_host(vmk, nic, nics): nic for nic in nics}
    return [(link.name, by_name[link.name]) for link in wires if link.name in by_name]


def _role(nic: str, uplinks: dict[str, str], active: list[str], standby: list[str]) -> tuple[
        str, str]:
    uplink = next((u for u, n in uplinks.items() if n == nic), nic)
    role = "active" if uplink in active else "standby" if uplink in standby else "unused"
    return uplink, role


def trace(dc: Datacenter, host: str, vmk: str, lab: str = "lab",
          states: PortStates | None = None) -> Json:
    """The adapter, its port group and switch, and each NIC behind it with whether it carries."""
    h = dc.host(host)
    nic = h.vmknics.get(vmk)
    if nic is None:
        raise NotFound(f"VMkernel adapter {vmk} of host {host} is not in the inventory",
                       name=vmk)
    att = attachment(dc, host, h, nic)
    out: Json = {"host": host, "vmknic": adapter(h, vmk, nic), "switch": None,
                 "portgroup": None, "distributed": False, "vlan": None, "hops": [],
                 "measured": False, "carrying": []}
    if att is None:
        return out
    out |= {"switch": att.switch, "portgroup": att.portgroup, "distributed": att.distributed,
            "vlan": att.vlan}
    seen: dict[str, str] = {}
    if states is not None:
        try:
            seen = states(naming.host_ns(lab, host))
            out["measured"] = True
        except (DataplaneError, OSError):  # no kernel to read: fall back to the prediction
            seen = {}
    hops = []
    for wire, vmnic in _wires(dc, lab, host, vmk):
        uplink, role = _role(vmnic, att.uplinks, att.teaming.active, att.teaming.standby)
        link = h.nics[vmnic].link
        hops.append({"nic": vmnic, "uplink": uplink, "role": role, "link": link,
                     "stp": seen.get(wire) if out["measured"] else None, "wire": wire})
    if out["measured"]:
        carrying = [hop["nic"] for hop in hops if hop["stp"] == "forwarding"]
    else:
        carrying = next(([hop["nic"]] for hop in hops if hop["link"] == "up"), [])
    out["hops"], out["carrying"] = hops, carrying
    return out
