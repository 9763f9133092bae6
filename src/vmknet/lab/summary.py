"""What a lab consists of, as table rows: per host stacks and adapters, the physical network."""

from __future__ import annotations

from collections import defaultdict

from ..dataplane import naming
from ..dataplane.kstate import KernelState
from ..dataplane.render import render_index
from ..model import Datacenter
from ..rules.topology import attachment

ADAPTER_COLUMNS = ("Host", "Stack", "Namespace", "Adapter", "Addresses", "MTU", "Port group",
                   "Uplinks (failover order)")
SEGMENT_COLUMNS = ("VLAN", "Segment", "Ports", "Attached")
ROUTER_COLUMNS = ("Router", "Namespace", "Interfaces")
ARRAY_COLUMNS = ("Array", "Namespace", "Interfaces", "Serves")


def adapter_rows(dc: Datacenter, state: KernelState, lab: str) -> list[list[str]]:
    index = render_index(dc, lab)
    uplinks: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    for key, end in index.items():
        link = state.links.get(key)
        if end.role == "wire-host" and link is not None and end.host and end.vmk and end.nic:
            uplinks[(end.host, end.vmk)].append((link.port_cost or 0, end.nic))
    rows = []
    for host_name in sorted(dc.hosts):
        host = dc.hosts[host_name]
        for vmk_name in sorted(host.vmknics, key=naming.natural_key):
            vmk = host.vmknics[vmk_name]
            att = attachment(dc, host_name, host, vmk)
            addresses = [str(vmk.ipv4.address)] if vmk.ipv4.address is not None else []
            addresses += [str(a) for a in vmk.ipv6.addresses]
            group = (f"{att.portgroup} (VLAN {att.vlan})" if att is not None else "-")
            wires = [nic for _, nic in sorted(uplinks[(host_name, vmk_name)])]
            rows.append([host_name, vmk.netstack,
                         naming.stack_ns(lab, host_name, vmk.netstack), vmk_name,
                         ", ".join(addresses) or "-", str(vmk.mtu), group,
                         " > ".join(wires) or "-"])
    return rows


def segment_rows(dc: Datacenter, state: KernelState, lab: str) -> list[list[str]]:
    index = render_index(dc, lab)
    pnet = naming.pnet_ns(lab)
    members: dict[str, list[str]] = defaultdict(list)
    for (ns, name), link in sorted(state.links.items()):
        if ns != pnet or link.master is None:
            continue
        end = index.get((ns, name))
        if end is None:
            continue
        if end.role == "wire-pnet":
            members[link.master].append(f"{end.host}/{end.vmk}:{end.nic}")
        elif end.role == "router-port":
            members[link.master].append(f"router {end.router}")
        elif end.role == "controller-port":
            members[link.master].append("controller")
    rows = []
    for key, end in sorted(index.items(), key=lambda item: item[1].vlan or 0):
        if end.role == "segment":
            ports = sorted(members.get(key[1], []), key=naming.natural_key)
            rows.append([str(end.vlan), f"{pnet}/{key[1]}", str(len(ports)),
                         ", ".join(ports) or "-"])
    return rows


def router_rows(dc: Datacenter, lab: str) -> list[list[str]]:
    rows = []
    for name in sorted(dc.physical.routers):
        router = dc.physical.routers[name]
        interfaces = [f"VLAN {i.vlan}" + (f" ({i.traffic})" if i.traffic else "") + ": "
                      + " ".join(str(a) for a in i.addresses) for i in router.interfaces]
        routes = [f"routes {a} <-> {b}" for a, b in router.routes]  # SEC-6: declared crossings
        rows.append([name, naming.router_ns(lab, name), "; ".join(interfaces + routes)])
    ctl = dc.physical.controller
    if ctl is not None:
        rows.append(["(controller)", naming.controller_ns(lab),
                     f"VLAN {ctl.vlan}: {ctl.address}"
                     + (f" via {ctl.gateway}" if ctl.gateway else "")])
    return rows


def totals(state: KernelState) -> dict[str, int]:
    return {"namespaces": len(state.namespaces), "links": len(state.links),
            "addresses": len(state.addresses), "routes": len(state.routes),
            "rules": len(state.rules)}


def array_rows(dc: Datacenter, lab: str) -> list[list[str]]:
    """The storage arrays (STO-6): where each is and what it serves (tgtd, nfs-ganesha)."""
    rows = []
    for name in sorted(dc.physical.storage_arrays):
        array = dc.physical.storage_arrays[name]
        interfaces = "; ".join(f"VLAN {i.vlan}: " + " ".join(str(a) for a in i.addresses)
                               for i in array.interfaces)
        serves = [f"iSCSI {t.iqn} ({len(t.luns)} LUN{'s' * (len(t.luns) > 1)})"
                  for t in (array.iscsi.targets if array.iscsi else [])]
        serves += [f"NFS {e.path}" for e in (array.nfs.exports if array.nfs else [])]
        rows.append([name, naming.array_ns(lab, name), interfaces, "; ".join(serves) or "-"])
    return rows
