"""The replication lab of the bench and the kernel tests: one management VLAN and a routed
replication VLAN 80; each host given as (name, last octet, service tag of its vmk1 or None)."""

from __future__ import annotations

HOST = """
  {name}:
    nics: {{vmnic0: {{}}, vmnic1: {{}}}}
    vswitches:
      vSwitch0:
        uplinks: [vmnic0]
        teaming: {{active: [vmnic0]}}
        portgroups: {{Management Network: {{vlan: 10}}, Repl: {{vlan: 80}}}}
    netstacks:
      defaultTcpipStack: {{gateway: 198.18.0.1}}
    vmknics:
      vmk0:
        portgroup: Management Network
        ipv4: {{type: static, address: 198.18.0.{n}/24}}
        services: [management]
{extra}"""
EXTRA = """      vmk1:
        portgroup: Repl
        ipv4: {{type: static, address: 198.18.8.{n}/24, gateway: 198.18.8.1}}
        services: [{service}]
"""
PHYSICAL = (
    "physical:\n  controller: {vlan: 10, address: 198.18.0.250/24, gateway: 198.18.0.1}\n"
    "  routers:\n    rtr01:\n      interfaces:\n"
    "        - {vlan: 10, addresses: [198.18.0.1/24]}\n"
    "        - {vlan: 80, addresses: [198.18.8.1/24]}\n"
    "hosts:")


def lab_yaml(hosts: list[tuple[str, int, str | None]]) -> str:
    return PHYSICAL + "".join(
        HOST.format(name=name, n=n, extra=EXTRA.format(n=n, service=svc) if svc else "")
        for name, n, svc in hosts)
