"""Helpers of the vMotion kernel tests: a 3-host lab, VM helpers, a VM-process leak check.

esx01 and esx02 have two vMotion adapters on the vmotion stack (198.18.4.0/24,
VLAN 40): vmk1 on vMotion-A (active vmnic2, standby vmnic4: teaming failover),
vmk2 on vMotion-B (vmnic3 only: taking it down kills that pair). esx03 has one
in 198.18.5.0/24 (VLAN 41): esx01 -> esx03 is routed through rtr01 by the
vmotion stack's gateway. esx04 has no vMotion adapter at all (EX-5); esx05's
is in 198.18.6.0/24 (VLAN 42) without a gateway: no path (NoPath).
"""

from __future__ import annotations

import time

from vmknet.vm import manage, registry

HOST = """
  {name}:
    nics: {{vmnic0: {{}}, vmnic2: {{mtu: 9000}}, vmnic3: {{mtu: 9000}}, vmnic4: {{mtu: 9000}}}}
    vswitches:
      vSwitch0:
        uplinks: [vmnic0]
        teaming: {{active: [vmnic0]}}
        portgroups: {{Management Network: {{vlan: 10}}}}
      vSwitch1:
        mtu: 9000
        uplinks: [vmnic2, vmnic3, vmnic4]
        teaming: {{active: [vmnic2, vmnic3, vmnic4]}}
        portgroups:
          vMotion-A:
            vlan: {vlan}
            teaming: {{loadBalancing: explicit, active: [vmnic2], standby: [vmnic4]}}
          vMotion-B:
            vlan: {vlan}
            teaming: {{loadBalancing: explicit, active: [vmnic3]}}
    netstacks:
      defaultTcpipStack: {{gateway: 198.18.0.1}}
      vmotion: {{gateway: {gw}}}
    vmknics:
      vmk0:
        portgroup: Management Network
        ipv4: {{type: static, address: 198.18.0.{n}/24}}
        services: [management]
{vmotion}"""
VMK = """      vmk{i}:
        portgroup: vMotion-{pg}
        netstack: vmotion
        mtu: 9000
        ipv4: {{type: static, address: {address}/24}}
"""


def _host(name: str, n: int, net: int, vmks: list[tuple[str, str]]) -> str:
    body = "".join(VMK.format(i=i, pg=pg, address=a) for i, (pg, a) in enumerate(vmks, 1))
    gw = f"198.18.{net}.1" if net in (4, 5) else "null"  # 198.18.6.0/24: no route anywhere
    return HOST.format(name=name, n=n, vlan=36 + net, gw=gw, vmotion=body).replace(
        "vmotion: {gateway: null}", "vmotion: {}")


VMOTION_LAB = (
    "physical:\n  controller: {vlan: 10, address: 198.18.0.250/24, gateway: 198.18.0.1}\n"
    "  routers:\n    rtr01:\n      interfaces:\n"
    "        - {vlan: 10, addresses: [198.18.0.1/24]}\n"
    "        - {vlan: 40, addresses: [198.18.4.1/24]}\n"
    "        - {vlan: 41, addresses: [198.18.5.1/24]}\n"
    "hosts:"
    + _host("esx01", 11, 4, [("A", "198.18.4.11"), ("B", "198.18.4.21")])
    + _host("esx02", 12, 4, [("A", "198.18.4.12"), ("B", "198.18.4.22")])
    + _host("esx03", 13, 5, [("A", "198.18.5.13")])
    + _host("esx04", 14, 4, [])
    + _host("esx05", 15, 6, [("A", "198.18.6.15")])
)


def wait_writes(lab: str, vm: str, more_than: int, limit: float = 5.0) -> int:
    """The VM's write counter once it passed `more_than` (the workload is running)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        writes = int(manage.status(lab, vm)["writes"])
        if writes > more_than:
            return writes
        time.sleep(0.05)
    raise AssertionError(f"VM {vm} made no progress past {more_than} writes in {limit} s")


def vm_processes(lab: str) -> list[int]:
    return [p for p in registry.vm_pids(lab) if registry.alive(p)]
