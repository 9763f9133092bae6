"""esxcli views that read the running kernel of the bound lab instead of the inventory.

    esxcli network ip connection list [-N stack]     /proc/net/{tcp,udp}[6] per stack namespace
    esxcli network ip neighbor list [-N stack]       the stack's neighbour (ARP/ND) table
    esxcli network ip route ipv4|ipv6 list -N stack  the stack's main table (when a lab is up)
    esxcli network nic list                          Link Status from the vmnic's wires
    esxcli network nic stats get -n vmnicN           counters summed over the vmnic's wires

Connections and neighbours exist only in a kernel, so without a lab they
fail with NotFound; route and nic lists fall back to the inventory (hooks
below, called by route_dns.py and nic.py).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from ipaddress import ip_network
from typing import TypeVar

import click

from ...dataplane import naming
from ...dataplane.render import render_index
from ...lab import Lab, bound_lab, require_lab
from ...model import DEFAULT_STACK, Host
from ...ops import lookup
from ...traffic import kernel_info, stats
from ...traffic.place import host_ns, stack_ns
from .common import Esx, pass_esx
from .errors import esxcli_reported
from .formatting import Record, formatter, json_option, show_blocks, show_table

CONNECTION_COLUMNS = ("Proto", "Recv Q", "Send Q", "Local Address", "Foreign Address", "State",
                      "World ID", "CC Algo", "World Name")
NEIGHBOR_COLUMNS = ("Neighbor", "Mac Address", "Vmknic", "Expiry", "State", "Type")
REACHABLE_SECONDS = 30  # the kernel's base_reachable_time: a Reachable entry turns Stale after
PROTO_DHCP = 16  # RTPROT_DHCP; every other route is MANUAL as ESXi shows static ones
T = TypeVar("T")


def _lab(esx: Esx) -> Lab:
    with esxcli_reported():
        return require_lab(esx.app.inventory)


def _stacks(esx: Esx, h: Host, netstack: str | None) -> list[str]:
    """The stacks to read: the one named by -N (checked), else every stack the host has."""
    present = set(h.netstacks) | {v.netstack for v in h.vmknics.values()}
    if netstack is not None:
        esx.netstack(netstack)
        return [netstack]
    return sorted(present, key=lambda s: (s != DEFAULT_STACK, s))


def _vmk_names(h: Host, stack: str) -> dict[str, str]:
    """Kernel ifname -> vmkN for the adapters of one stack."""
    return {naming.adapter_ifname(v): v for v, n in h.vmknics.items() if n.netstack == stack}


def _endpoint(addr: tuple[str, int]) -> str:
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connection_rows(h: Host, stack: str, entries: list[kernel_info.SockEntry],
                    owners: dict[int, tuple[int, str]]) -> list[Record]:
    cc = h.netstacks[stack].congestion_control if stack in h.netstacks else "newreno"
    rows: list[Record] = []
    for e in entries:
        pid, name = owners.get(e.inode, (0, ""))
        rows.append({"Proto": e.proto.rstrip("6"), "Recv Q": e.recv_q, "Send Q": e.send_q,
                     "Local Address": _endpoint(e.local), "Foreign Address": _endpoint(e.remote),
                     "State": e.state, "World ID": pid,
                     "CC Algo": cc if e.proto.startswith("tcp") else "", "World Name": name})
    return rows


def _read(lab: Lab, host: str, stack: str, reader: Callable[[str], list[T]]) -> list[T]:
    """`reader(namespace)` for one stack; a stack the lab has not built shows nothing."""
    try:
        return reader(stack_ns(lab, host, stack))
    except FileNotFoundError:
        return []


# ----------------------------------------------------------------- connections


@click.group()
def connection() -> None:
    """Sockets of the host's TCP/IP stacks (read from the kernel)."""


@connection.command("list")
@click.option("-N", "--netstack", "netstack", help="Only this netstack [default: all].")
@json_option
@pass_esx
def connection_list(esx: Esx, netstack: str | None, as_json: bool) -> None:
    """List TCP and UDP sockets per netstack."""
    lab, h = _lab(esx), esx.read()
    owners = kernel_info.socket_owners()
    rows: list[Record] = []
    for stack in _stacks(esx, h, netstack):
        rows += connection_rows(h, stack, _read(lab, esx.host, stack, kernel_info.connections),
                                owners)
    show_table(CONNECTION_COLUMNS, rows, as_json, type_name="IpConnection")


# ------------------------------------------------------------------ neighbours


def neighbor_rows(h: Host, stack: str, entries: list[kernel_info.NeighInfo],
                  ifnames: dict[int, str]) -> list[Record]:
    vmks = _vmk_names(h, stack)
    rows: list[Record] = []
    for n in entries:
        ifname = ifnames.get(n.ifindex, "")
        expiry = ""
        if n.state == "Reachable" and n.updated_s is not None:
            expiry = f"{max(0, REACHABLE_SECONDS - n.updated_s)} sec"
        rows.append({"Neighbor": n.address, "Mac Address": n.mac or "", "Vmknic":
                     vmks.get(ifname, ifname), "Expiry": expiry, "State": n.state,
                     "Type": "Static" if n.state == "Permanent" else "Dynamic"})
    return sorted(rows, key=lambda r: (naming.natural_key(str(r["Vmknic"])),
                                       ":" in str(r["Neighbor"]), str(r["Neighbor"])))


@click.group()
def neighbor() -> None:
    """Neighbour (ARP and IPv6 ND) tables of the host's TCP/IP stacks."""


@neighbor.command("list")
@click.option("-N", "--netstack", "netstack", help="Only this netstack [default: all].")
@click.option("-v", "--version", "version", type=click.Choice(["4", "6", "all"]), default="all",
              show_default=True, help="IP version.")
@click.option("-i", "--interface-name", "vmk", metavar="vmkN", help="Only this adapter.")
@json_option
@pass_esx
def neighbor_list(esx: Esx, netstack: str | None, version: str, vmk: str | None,
                  as_json: bool) -> None:
    """List the neighbours each stack has resolved."""
    lab, h = _lab(esx), esx.read()
    rows: list[Record] = []
    for stack in _stacks(esx, h, netstack):
        entries = _read(lab, esx.host, stack, kernel_info.neighbours)
        links = _read(lab, esx.host, stack, kernel_info.links)
        rows += neighbor_rows(h, stack, entries, {link.index: link.name for link in links})
    if version != "all":
        rows = [r for r in rows if (":" in str(r["Neighbor"])) == (version == "6")]
    if vmk is not None:
        rows = [r for r in rows if r["Vmknic"] == vmk]
    show_table(NEIGHBOR_COLUMNS, rows, as_json, type_name="Neighbor")


# ---------------------------------------------------------------------- routes


def kernel_route_rows(h: Host, stack: str, version: int,
                      found: list[kernel_info.RouteInfo], ifnames: dict[int, str]) -> list[Record]:
    """The main table as ESXi's route list shows it; IPv6 link-local routes are left out."""
    vmks = _vmk_names(h, stack)
    any_addr = "0.0.0.0" if version == 4 else "::"
    rows: list[Record] = []
    for r in sorted(found, key=lambda r: (r.dst_len != 0, r.dst or "", r.dst_len)):
        if r.dst is None and r.dst_len:
            continue
        net = ip_network(f"{r.dst or any_addr}/{r.dst_len}", strict=False)
        if net.version == 6 and net.is_link_local:
            continue
        ifname = ifnames.get(r.oif or -1, "None")
        rows.append({
            "Network": "default" if r.dst_len == 0 else str(net.network_address),
            "Netmask": str(net.netmask) if version == 4 else r.dst_len,
            "Gateway": r.gateway or any_addr,
            "Interface": vmks.get(ifname, ifname),
            "Source": "DHCP" if r.proto == PROTO_DHCP else "MANUAL",
        })
    return rows


def routes_if_bound(esx: Esx, stack: str, version: int) -> list[Record] | None:
    """Hook of `route ipvX list`: the kernel's routes when a lab is up, else None."""
    lab = bound_lab(esx.app.inventory)
    if lab is None:
        return None
    h = esx.read()
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    found = _read(lab, esx.host, stack, lambda ns: kernel_info.routes(ns, family))
    links = _read(lab, esx.host, stack, kernel_info.links)
    return kernel_route_rows(h, stack, version, found, {link.index: link.name for link in links})


# ------------------------------------------------------------------------ nics


def nic_links_if_bound(esx: Esx) -> dict[str, bool] | None:
    """Hook of `nic list`: vmnic -> carrier on any of its wires, when a lab is up.

    A wire's near end has carrier while its far end (in the physical network)
    is up: a pulled cable drops it, just as a real link would. vmnics without a
    wire (unused by every port group) are left to the inventory.
    """
    lab = bound_lab(esx.app.inventory)
    if lab is None:
        return None
    dc = esx.datacenter()
    ns = host_ns(lab, esx.host)
    index = render_index(dc, lab.name)
    try:
        found = kernel_info.links(ns)
    except FileNotFoundError:
        return {}
    out: dict[str, bool] = {}
    for link in found:
        end = index.get((ns, link.name))
        if end is not None and end.role == "wire-host" and end.nic is not None:
            out[end.nic] = out.get(end.nic, False) or link.carrier
    return out


@click.group("stats")
def nic_stats() -> None:
    """Counters of a physical NIC (summed over its wires in the lab)."""


@nic_stats.command("get")
@click.option("-n", "--nic-name", "nic_name", required=True, help="The physical NIC (vmnicN).")
@json_option
@pass_esx
def nic_stats_get(esx: Esx, nic_name: str, as_json: bool) -> None:
    """Packets and bytes a physical NIC moved (ESXi's `nic stats get`)."""
    lab = _lab(esx)
    dc = esx.datacenter()
    esx.find(lookup.nic, nic_name)
    counters, _ = stats.uplink_counters(dc, lab, esx.host).get(nic_name, (stats.Counters(), []))
    record: Record = {
        "Packets received": counters.rx_packets,
        "Packets sent": counters.tx_packets,
        "Bytes received": counters.rx_bytes,
        "Bytes sent": counters.tx_bytes,
    }
    if formatter(as_json) is None:  # ESXi's header line belongs to the plain text only
        click.echo(f"NIC statistics for {nic_name}")
    show_blocks([record], as_json, title=None, type_name="NicStats", single=True)



def nic_link_overrides(esx: Esx, rows: list[Record]) -> list[tuple[Record, bool]]:
    """(row, carrier) for each `nic list` row whose vmnic has wires in the bound lab."""
    links = nic_links_if_bound(esx)
    if not links:
        return []
    return [(row, links[str(row["Name"])]) for row in rows if str(row["Name"]) in links]
