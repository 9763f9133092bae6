"""Object commands: `vmknet host|cluster|dvs ...`, thin wrappers over vmknet.ops."""

from __future__ import annotations

from functools import partial
from ipaddress import IPv4Interface

import click

from ..model import MANAGEMENT_PORTGROUP, Datacenter, Service
from ..ops import Operation
from ..ops import dvs as dvs_ops
from ..ops import host as host_ops
from .commands_state import print_events
from .context import AppContext, pass_app, reported
from .output import say, table


def parse_ipv4(ctx: click.Context, param: click.Parameter,
               value: str | None) -> IPv4Interface | None:
    if value is None:
        return None
    if "/" not in value:
        raise click.BadParameter(f"'{value}' needs a prefix length, e.g. {value}/24",
                                 ctx=ctx, param=param)
    try:
        return IPv4Interface(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not an IPv4 address/prefix, e.g. 198.18.0.11/24",
                                 ctx=ctx, param=param) from None


def run(app: AppContext, operation: Operation, done: str) -> None:
    """Execute one operation all or nothing, then say what happened and its side effects."""
    with reported():
        events = app.inventory.run(operation)
    say(done, style="green")
    print_events(events)


def read(app: AppContext) -> Datacenter:
    with reported():
        return app.inventory.read()


def parse_map(text: str) -> dict[str, str]:
    """`"Uplink 1=vmnic2,Uplink 2=vmnic3"` -> {"Uplink 1": "vmnic2", "Uplink 2": "vmnic3"}."""
    mapping: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        uplink, sep, vmnic = item.partition("=")
        if not sep or not uplink.strip() or not vmnic.strip():
            raise click.BadParameter(f"'{item}' is not UPLINK=VMNIC", param_hint="'--map'")
        mapping[uplink.strip()] = vmnic.strip()
    return mapping


@click.group()
def host() -> None:
    """Hosts (ESXi hosts)."""


@host.command("add")
@click.argument("name")
@click.option("--nics", type=click.IntRange(1, 32), default=4, show_default=True,
              help="Physical NICs vmnic0..vmnicN-1.")
@click.option("--management-ip", callback=parse_ipv4, metavar="ADDRESS/PREFIX",
              help="Static IPv4 of vmk0, e.g. 198.18.0.11/24.")
@pass_app
def host_add(app: AppContext, name: str, nics: int, management_ip: IPv4Interface | None) -> None:
    """Add a host as ESXi installs it (SW-1): vSwitch0, Management Network, vmk0."""
    address = f" ({management_ip})" if management_ip else ""
    run(app, partial(host_ops.host_add, name=name, nics=nics, management_ip=management_ip),
        f"Host {name} added: vSwitch0 on vmnic0, port group '{MANAGEMENT_PORTGROUP}', "
        f"vmk0{address} tagged Management, {nics} NICs")


@host.command("remove")
@click.argument("name")
@pass_app
def host_remove(app: AppContext, name: str) -> None:
    """Remove a host and its memberships."""
    run(app, partial(host_ops.host_remove, name=name), f"Host {name} removed")


@host.command("list")
@pass_app
def host_list(app: AppContext) -> None:
    dc = read(app)
    rows = []
    for name, h in dc.hosts.items():
        member = dc.cluster_of(name)
        mgmt = [f"{v} {vmk.ipv4.address or vmk.ipv4.type}" for v, vmk in h.vmknics.items()
                if Service.MANAGEMENT in vmk.services]
        rows.append([name, member[0] if member else None, len(h.nics), list(h.vswitches),
                     list(h.vmknics), mgmt])
    table(["host", "cluster", "nics", "vswitches", "vmknics", "management"], rows)


@click.group()
def cluster() -> None:
    """Clusters (HA, vSAN, Fault Tolerance)."""


@cluster.command("add")
@click.argument("name")
@click.option("--ha", is_flag=True, help="vSphere HA.")
@click.option("--vsan", is_flag=True, help="vSAN.")
@click.option("--ft", is_flag=True, help="Fault Tolerance.")
@pass_app
def cluster_add(app: AppContext, name: str, ha: bool, vsan: bool, ft: bool) -> None:
    run(app, partial(host_ops.cluster_add, name=name, ha=ha, vsan=vsan, ft=ft),
        f"Cluster {name} added")


@cluster.group("host")
def cluster_host() -> None:
    """Cluster membership."""


@cluster_host.command("add")
@click.argument("cluster_name", metavar="CLUSTER")
@click.argument("host_name", metavar="HOST")
@pass_app
def cluster_host_add(app: AppContext, cluster_name: str, host_name: str) -> None:
    run(app, partial(host_ops.cluster_host_add, name=cluster_name, host=host_name),
        f"Host {host_name} joined cluster {cluster_name}")


@cluster.command("list")
@pass_app
def cluster_list(app: AppContext) -> None:
    dc = read(app)
    table(["cluster", "ha", "vsan", "ft", "hosts"],
          [[n, c.ha, c.vsan, c.ft, c.hosts] for n, c in dc.clusters.items()])


@click.group()
def dvs() -> None:
    """Distributed switches."""


@dvs.command("add")
@click.argument("name")
@click.option("--mtu", type=click.IntRange(1280, 9000), default=1500, show_default=True)
@click.option("--uplinks", type=click.IntRange(1, 32), default=2, show_default=True)
@pass_app
def dvs_add(app: AppContext, name: str, mtu: int, uplinks: int) -> None:
    run(app, partial(dvs_ops.add, name=name, mtu=mtu, uplinks=uplinks),
        f"Distributed switch {name} added (MTU {mtu}, {uplinks} uplinks)")


@dvs.group("host")
def dvs_host() -> None:
    """Member hosts of a distributed switch."""


@dvs_host.command("add")
@click.argument("dvs_name", metavar="DVS")
@click.argument("host_name", metavar="HOST")
@click.option("--map", "mapping", required=True, help='e.g. "Uplink 1=vmnic2,Uplink 2=vmnic3"')
@pass_app
def dvs_host_add(app: AppContext, dvs_name: str, host_name: str, mapping: str) -> None:
    """Join HOST to DVS with a NIC-to-uplink map (SW-5)."""
    uplinks = parse_map(mapping)
    run(app, partial(dvs_ops.host_add, name=dvs_name, host=host_name, mapping=uplinks),
        f"Host {host_name} joined {dvs_name}")


@dvs.group("portgroup")
def dvs_portgroup() -> None:
    """Distributed port groups."""


@dvs_portgroup.command("add")
@click.argument("dvs_name", metavar="DVS")
@click.argument("portgroup", metavar="PG")
@click.option("--vlan", type=click.IntRange(0, 4095), default=0, show_default=True)
@pass_app
def dvs_portgroup_add(app: AppContext, dvs_name: str, portgroup: str, vlan: int) -> None:
    run(app, partial(dvs_ops.portgroup_add, name=dvs_name, portgroup=portgroup, vlan=vlan),
        f"Distributed port group {portgroup} added to {dvs_name} (VLAN {vlan})")


@dvs.command("list")
@pass_app
def dvs_list(app: AppContext) -> None:
    dc = read(app)
    table(["dvs", "mtu", "uplinks", "hosts", "portgroups"],
          [[n, d.mtu, d.uplinks, list(d.hosts), [f"{p} (VLAN {g.vlan})"
                                                 for p, g in d.portgroups.items()]]
           for n, d in dc.distributed_switches.items()])


COMMANDS = (host, cluster, dvs)
