"""Helpers of the lab kernel tests: small lab files, lab names under the test prefix, dumps."""

from __future__ import annotations

import difflib
import itertools
import os
import re
import subprocess
from pathlib import Path

from vmknet.dataplane.linux import netns
from vmknet.mgmt import paths
from vmknet.processes import lab_pids

_labs = itertools.count()

# Two hosts, management on VLAN 10 with a controller; PG-A (VLAN 70) and PG-B (VLAN 71)
# share vSwitch1 and its one uplink. Same subnet on both VLANs: only the VLAN separates them.
SMALL_LAB = """
physical:
  controller: {vlan: 10, address: 198.18.0.250/24, rollbackTimeout: 4}
hosts:
  h1:
    nics: {vmnic0: {}, vmnic1: {}, vmnic2: {}}
    vswitches:
      vSwitch0:
        uplinks: [vmnic0, vmnic1]
        teaming: {loadBalancing: explicit, active: [vmnic0], standby: [vmnic1]}
        portgroups: {Management Network: {vlan: 10}}
      vSwitch1:
        uplinks: [vmnic2]
        teaming: {active: [vmnic2]}
        portgroups: {PG-A: {vlan: 70}, PG-B: {vlan: 71}}
    netstacks:
      defaultTcpipStack: {}
      iso: {}
    vmknics:
      vmk0:
        portgroup: Management Network
        ipv4: {type: static, address: 198.18.0.11/24}
        services: [management]
      vmk1:
        portgroup: PG-A
        ipv4: {type: static, address: 198.18.20.1/24}
      vmk2:
        portgroup: PG-B
        netstack: iso
        ipv4: {type: static, address: 198.18.20.2/24}
  h2:
    nics: {vmnic0: {}, vmnic1: {}, vmnic2: {}}
    vswitches:
      vSwitch0:
        uplinks: [vmnic0, vmnic1]
        teaming: {loadBalancing: explicit, active: [vmnic0], standby: [vmnic1]}
        portgroups: {Management Network: {vlan: 10}}
      vSwitch1:
        uplinks: [vmnic2]
        teaming: {active: [vmnic2]}
        portgroups: {PG-A: {vlan: 70}}
    vmknics:
      vmk0:
        portgroup: Management Network
        ipv4: {type: static, address: 198.18.0.12/24}
        services: [management]
      vmk1:
        portgroup: PG-A
        ipv4: {type: static, address: 198.18.20.3/24}
"""


def agent_pid(lab: str, host: str) -> int:
    """The pid of `host`'s agent in `lab` (there must be exactly one)."""
    (pid,) = [p for p in lab_pids(paths.AGENT_MARKER, lab)
              if f"--host={host}".encode() in Path(f"/proc/{p}/cmdline").read_bytes()
              .split(b"\0")]
    return pid


def lab_name() -> str:
    """Under the conftest's per-process prefix (vmkl-t<pid>-...), so its leak check covers it."""
    return f"t{os.getpid()}-lab{next(_labs)}"


def write_small_lab(folder: Path) -> Path:
    path = folder / "small-lab.yaml"
    path.write_text(SMALL_LAB, encoding="utf-8")
    return path


# What the kernel's STP decides at run time (timers, port states, topology-change flags,
# port numbers handed out as a port re-joins its bridge, designated/root bridge and
# port, the short ageing time during a topology change, a bridge's carrier while no
# port forwards): not configuration, so not part of "the kernel as before".
_VOLATILE = re.compile(r"\b(\w+_timer|topology_change\w*|state|port_id|port_no|designated_\w+"
                       r"|root_id|root_port|root_path_cost|bridge_id|ageing_time|config_pending)\s+\S+")
_CARRIER = re.compile(r"NO-CARRIER,|,LOWER_UP")


def dump(prefix: str) -> dict[str, str]:
    """`ip -d` link, address, route (v4 and v6, every table) and rule text of each namespace."""
    out = {}
    for ns in netns.listed(prefix):
        parts = []
        for cmd in (["-d", "link", "show"], ["-d", "addr", "show"],
                    ["-d", "route", "show", "table", "all"],
                    ["-6", "-d", "route", "show", "table", "all"], ["-d", "rule", "show"],
                    ["-6", "-d", "rule", "show"]):
            text = subprocess.run(["ip", "-n", ns, *cmd], capture_output=True, text=True,
                                  check=True, timeout=10).stdout
            parts.append(_CARRIER.sub("", _VOLATILE.sub(r"\1 *", text)))
        out[ns] = "\n".join(parts)
    return out


def changed(before: dict[str, str], after: dict[str, str]) -> str:
    """A unified diff of two dumps ('' when equal), for a readable assertion message."""
    lines: list[str] = []
    for ns in sorted(set(before) | set(after)):
        a, b = before.get(ns, "").splitlines(), after.get(ns, "").splitlines()
        if a != b:
            lines += difflib.unified_diff(a, b, f"before {ns}", f"after {ns}", lineterm="", n=1)
    return "\n".join(lines)
