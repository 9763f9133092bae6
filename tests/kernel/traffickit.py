"""Helpers of the traffic kernel tests: small labs brought up with render + apply, STP waits."""

from __future__ import annotations

import time

from vmknet.dataplane.apply import apply
from vmknet.dataplane.linux import LinuxBackend
from vmknet.dataplane.render import render
from vmknet.model import Datacenter
from vmknet.state import loads
from vmknet.traffic.icmp import ping_once
from vmknet.traffic.place import stack_ns

STP_LIMIT = 20.0  # s; forwarding normally starts ~4 s after the bridges (2 x forward delay)


def two_hosts(mtu: int = 9000, vmotion_stack: bool = False) -> Datacenter:
    """esx01, esx02: vmk0 management (VLAN 10), vmk1 vMotion on the default stack (VLAN 40)."""
    hosts = []
    for i in (1, 2):
        hosts.append(f"""
  esx0{i}:
    vswitches:
      vSwitch0:
        uplinks: [vmnic0]
        teaming: {{active: [vmnic0]}}
        portgroups:
          Management Network: {{vlan: 10}}
      vSwitch1:
        mtu: {mtu}
        uplinks: [vmnic1]
        teaming: {{active: [vmnic1]}}
        portgroups:
          vMotion: {{vlan: 40}}
    vmknics:
      vmk0:
        portgroup: Management Network
        ipv4: {{type: static, address: 198.18.0.1{i}/24}}
        services: [management]
      vmk1:
        portgroup: vMotion
        mtu: {mtu}
        {"netstack: vmotion" if vmotion_stack else "services: [vmotion]"}
        ipv4: {{type: static, address: 198.18.4.1{i}/24}}""")
    return loads("hosts:" + "".join(hosts))


def lab_of(prefix: str) -> str:
    """The lab whose namespaces carry the fixture's prefix (vmkl-<lab>.)."""
    return prefix.removeprefix("vmkl-").removesuffix(".")


def up(dc: Datacenter, prefix: str) -> str:
    lab = lab_of(prefix)
    apply(LinuxBackend(), render(dc, lab), prefix)
    return lab


def wait_path(lab: str, host: str, stack: str, target: str, source: str | None = None,
              limit: float = STP_LIMIT) -> float:
    """Seconds until an echo from `host`'s `stack` reaches `target` (STP forwarding)."""
    start = time.monotonic()
    ns = stack_ns(lab, host, stack)
    while time.monotonic() - start < limit:
        if ping_once(ns, target, source=source, timeout=0.2).ok:
            return time.monotonic() - start
    raise AssertionError(f"{target} not reachable from {ns} within {limit} s")
