"""`iscsi networkportal list`, live: each bound adapter as the lab's kernel has it now.

ESXi's port binding view is more than the binding: the uplink's link, the
adapter's packet counters, whether its paths are in use, and whether the
binding is compliant (STO-1). The inventory already refuses a non-compliant
binding, so the live part is what can drift under a valid design: the adapter
not realised in its stack (removed or unaddressed behind vmknet's back), its one
active uplink without link. Path Status is ESXi's: `active` when a path over the
adapter logs in now, `last path` when it is the only adapter with an active
path, `not used` when the last rescan found nothing through it, `dead` when its
paths do not log in.
"""

from __future__ import annotations

from ...dataplane import naming
from ...lab import Lab
from ...model import Datacenter
from ...rules.topology import attachment
from ...storage import scan
from ...traffic import kernel_info
from ...traffic.place import stack_ns
from .formatting import Record

REMEDY = {
    "not realised": "Run 'vmknet lab status --repair' (or let the host's agent reconcile)",
    "no link": "Check the cable or switch port of the adapter's active uplink",
}


def _realised(lab: str, host: str, stack: str, vmk: str, address: str
              ) -> tuple[kernel_info.LinkInfo | None, str | None]:
    """The adapter's interface and why it is not usable as bound (None: it is)."""
    ifname, ns = naming.adapter_ifname(vmk), stack_ns(lab, host, stack)
    try:
        link = next((x for x in kernel_info.links(ns) if x.name == ifname), None)
        held = kernel_info.addresses(ns).get(link.index, set()) if link else set()
    except FileNotFoundError:
        return None, f"{vmk}'s stack {stack} is not realised"
    if link is None:
        return None, f"{vmk} is not realised in stack {stack}"
    if not link.admin_up:
        return link, f"{vmk} is administratively down"
    if address and address not in held:
        return link, f"{vmk} does not hold its address {address}"
    return link, None


def live(rows: list[Record], dc: Datacenter, lab: Lab, host: str, adapter: str,
         carriers: dict[str, bool]) -> list[Record]:
    """The rows of `networkportal list` with the kernel's facts; `carriers`: vmnic -> link."""
    h = dc.host(host)
    states = scan.path_states(dc, lab.name, host, adapter)
    active = {p.vmk for p, s in states if s == "active"}
    found = {p.vmk for p, _ in states}
    out = []
    for row in rows:
        vmk = str(row["Vmknic"])
        nic = h.vmknics[vmk]
        link, why = _realised(lab.name, host, nic.netstack, vmk, str(row["IPv4"]))
        att = attachment(dc, host, h, nic)
        vmnic = att.uplinks.get(att.teaming.active[0]) if att and att.teaming.active else None
        link_up = bool(vmnic and carriers.get(vmnic, False))
        if why is None and not link_up:
            why, remedy = f"{vmk}'s active uplink {vmnic or '-'} has no link", REMEDY["no link"]
        else:
            remedy = REMEDY["not realised"] if why else ""
        if vmk in active:
            status = "last path" if active == {vmk} and len(found) > 1 else "active"
        else:
            status = "dead" if vmk in found else "not used"
        out.append({**row,
                    "Link Up": link_up,
                    "Rx Packets": link.rx_packets if link else 0,
                    "Tx Packets": link.tx_packets if link else 0,
                    "Compliant Status": "non-compliant" if why else "compliant",
                    "NonCompliant Message": why or "",
                    "NonCompliant Remedy": remedy,
                    "Path Status": status})
    return out
