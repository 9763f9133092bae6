"""`esxcli vsan cluster get` and `esxcli vsan cluster unicastagent list`, as ESXi prints them.

`get` is the host's vSAN node's own view (vsan/node.py's record): its state in CMMDS
(MASTER, BACKUP, AGENT), the master and backup of its sub-cluster (its partition), the
members it sees. A host whose node is not running prints `Enabled: false` fields as ESXi
does for a host that left vSAN. `unicastagent list` is the host's unicast peer list
(VSAN-1): every other node of the cluster, never the host itself.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import click

from ...errors import VmknetError
from ...lab import bound_lab
from ...vsan import config, procs
from ...vsan.objects import node_states
from .common import Esx, pass_esx
from .errors import esxcli_reported
from .formatting import Record, json_option, show_blocks, show_table


def _uuid(lab: str, host: str) -> str:
    h = hashlib.sha256(f"{lab}/{host}/vsan-node".encode()).hexdigest()  # as node.py
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _cluster_uuid(lab: str, cluster: str) -> str:
    h = hashlib.sha256(f"{lab}/{cluster}/vsan-cluster".encode()).hexdigest()
    return f"52{h[:6]}-{h[6:10]}-{h[10:14]}-{h[14:18]}-{h[18:30]}"


@click.group("cluster")
def cluster() -> None:
    """vSAN cluster membership of this host."""


def _where(esx: Esx) -> tuple[str, str]:
    dc = esx.datacenter()
    lab = bound_lab(esx.app.inventory)
    with esxcli_reported():
        if lab is None:
            raise VmknetError("vSAN runs in a lab: 'vmknet lab up' first", code="NotFound")
        return lab.name, config.cluster_of(dc, esx.host)


@cluster.command("get")
@json_option
@pass_esx
def cluster_get(esx: Esx, as_json: bool) -> None:
    """This host's vSAN cluster state (CMMDS)."""
    lab, name = _where(esx)
    rec = node_states(lab, (esx.host,)).get(esx.host)
    row: Record
    if rec is None:
        row = {"Enabled": False, "Current Local Time": _now(), "Local Node UUID": "",
               "Local Node Health State": "", "Sub-Cluster Member Count": 0}
    else:
        part = list(rec["partition"])
        row = {
            "Enabled": True, "Current Local Time": _now(),
            "Local Node UUID": _uuid(lab, esx.host),
            "Local Node Type": "WITNESS" if rec.get("witnessHost") == esx.host else "NORMAL",
            "Local Node State": str(rec["role"]).upper(),
            "Local Node Health State": "HEALTHY",
            "Sub-Cluster Master UUID": _uuid(lab, part[0]),
            "Sub-Cluster Backup UUID": _uuid(lab, part[1]) if len(part) > 1 else "",
            "Sub-Cluster UUID": _cluster_uuid(lab, name),
            "Sub-Cluster Membership Entry Revision": len(part) - 1,
            "Sub-Cluster Member Count": len(part),
            "Sub-Cluster Member UUIDs": ", ".join(_uuid(lab, h) for h in part),
            "Sub-Cluster Member HostNames": ", ".join(part),
            "Sub-Cluster Membership UUID": _cluster_uuid(lab, "/".join(part)),
            "Unicast Mode Enabled": True,
            "Maintenance Mode State": "OFF",
            "Config Generation": f"{_cluster_uuid(lab, name)} 1 {_stamp(rec)}",
            "Mode": "REGULAR",
        }
    show_blocks([row], as_json, title=lambda _r: "Cluster Information",
                type_name="VsanClusterGetInformation", single=True)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _stamp(rec: dict[str, Any]) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000", time.gmtime(float(rec.get("started", 0))))


COLUMNS = ("NodeUuid", "IsWitness", "Supports Unicast", "IP Address", "Port", "Iface Name",
           "Cert Thumbprint", "SubClusterUuid")


@cluster.group("unicastagent")
def unicastagent() -> None:
    """The unicast agent list: the vSAN peers of this host (VSAN-1)."""


@unicastagent.command("list")
@json_option
@pass_esx
def unicastagent_list(esx: Esx, as_json: bool) -> None:
    """List this host's unicast peers."""
    lab, name = _where(esx)
    dc = esx.datacenter()
    with esxcli_reported():
        cv = config.view(dc, name)
        peers = config.peers(dc, cv, esx.host)
    running = procs.pids(lab)
    vmk = {a: v for v, _s, a in config.local_addresses(dc, cv, esx.host)}
    rows: list[Record] = [{
        "NodeUuid": _uuid(lab, p.host), "IsWitness": 1 if p.host == cv.witness_host else 0,
        "Supports Unicast": "true", "IP Address": p.address, "Port": 12321,
        "Iface Name": vmk.get(p.source, ""), "Cert Thumbprint": "",
        "SubClusterUuid": _cluster_uuid(lab, name) if p.host in running else ""}
        for p in peers]
    show_table(COLUMNS, rows, as_json, type_name="VsanUnicastAgent")
