"""The lab of the vMotion benchmark: N hosts, K vMotion adapters each, one uplink per adapter.

    dc = datacenter(LabSpec(pairs=4, speed_mbit=1000))   # a vmknet Datacenter
    text = lab_yaml(LabSpec(pairs=2))                       # the same as a desired-state file
    python bench/vmotion_lab.py --pairs 2 --speed 1000      # print the YAML

Every host (`esx01`, `esx02`, ...) has

* management as ESXi installs it, made redundant (SW-7): `vSwitch0` on vmnic0
  (active) and vmnic1 (standby), port group `Management Network` on VLAN 10,
  `vmk0` 198.18.0.(10 + h)/24; the controller (REQ-5) is 198.18.0.250;
* multi-NIC vMotion (SW-6): `vSwitch1` with one uplink per vMotion adapter,
  vmnic(2 + i) for adapter i = 0..K-1, each at `speed_mbit` (a tbf on its wire)
  and `mtu`; port group `vMotion-<i + 1>` with that one uplink active (and,
  with `standby=True`, the next adapter's uplink standby: a ring; one adapter
  gets a spare NIC of its own); adapter `vmk(i + 1)` on the `vmotion` stack,
  198.18.4.(10 * h + i + 1)/24, all on VLAN 40 in one subnet (SW-6 allows that,
  PATH-8). resolve() pairs vmkN of one host with vmkN of the other (PATH-1).

Only 198.18.0.0/15 is used (LAB.md). Pure: no I/O; the benchmark writes the
YAML to a file and brings it up with `vmknet.lab.lifecycle.up`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface

from vmknet.model import (
    Controller,
    Datacenter,
    Host,
    IPv4Config,
    PhysicalNetwork,
    PhysicalNic,
    PortGroup,
    Service,
    StandardSwitch,
    TeamingPolicy,
    Vmknic,
)
from vmknet.state import dumps

MGMT_VLAN, VMOTION_VLAN = 10, 40
MGMT_NET, VMOTION_NET = "198.18.0", "198.18.4"
CONTROLLER = IPv4Interface(f"{MGMT_NET}.250/24")
MAX_HOSTS, MAX_PAIRS = 20, 9  # 10 * h + i + 1 must stay below the controller's .250
VMOTION_STACK = "vmotion"
FIRST_VMOTION_NIC = 2  # vmnic0/1 carry management


@dataclass(frozen=True)
class LabSpec:
    """What the benchmark varies: hosts, vMotion adapter pairs, uplink speed and MTU."""

    hosts: int = 2
    pairs: int = 1  # vMotion adapters per host (one adapter pair per index between two hosts)
    speed_mbit: int = 10000  # of each vMotion uplink; a tbf at this rate on its wire
    mtu: int = 9000
    standby: bool = False

    def __post_init__(self) -> None:
        if not 2 <= self.hosts <= MAX_HOSTS:
            raise ValueError(f"hosts must be 2..{MAX_HOSTS}, not {self.hosts}")
        if not 1 <= self.pairs <= MAX_PAIRS:
            raise ValueError(f"pairs must be 1..{MAX_PAIRS}, not {self.pairs}")
        if not 1280 <= self.mtu <= 9000:
            raise ValueError(f"mtu must be 1280..9000, not {self.mtu}")
        if not 10 <= self.speed_mbit <= 400000:
            raise ValueError(f"speed must be 10..400000 Mbit/s, not {self.speed_mbit}")


def host_name(h: int) -> str:
    """Host h = 1, 2, ... is esx01, esx02, ..."""
    return f"esx{h:02d}"


def management_address(h: int) -> IPv4Interface:
    return IPv4Interface(f"{MGMT_NET}.{10 + h}/24")


def vmotion_address(h: int, i: int) -> IPv4Interface:
    """Address of vMotion adapter i (0-based, vmk(i + 1)) of host h (1-based)."""
    return IPv4Interface(f"{VMOTION_NET}.{10 * h + i + 1}/24")


def vmotion_nic(i: int) -> str:
    return f"vmnic{FIRST_VMOTION_NIC + i}"


def vmotion_vmk(i: int) -> str:
    return f"vmk{i + 1}"


def vmotion_portgroup(i: int) -> str:
    return f"vMotion-{i + 1}"


def _standby(spec: LabSpec, i: int) -> list[str]:
    if not spec.standby:
        return []
    if spec.pairs == 1:
        return [vmotion_nic(1)]  # the spare NIC of a single adapter
    return [vmotion_nic((i + 1) % spec.pairs)]


def vmotion_nics(spec: LabSpec) -> list[str]:
    """The uplinks of vSwitch1 (with a spare for a single adapter with standby)."""
    count = spec.pairs + (1 if spec.standby and spec.pairs == 1 else 0)
    return [vmotion_nic(i) for i in range(count)]


def host(spec: LabSpec, h: int) -> Host:
    nics = {"vmnic0": PhysicalNic(), "vmnic1": PhysicalNic()}
    nics |= {n: PhysicalNic(speed=spec.speed_mbit, mtu=spec.mtu) for n in vmotion_nics(spec)}
    portgroups = {
        vmotion_portgroup(i): PortGroup(vlan=VMOTION_VLAN, teaming=TeamingPolicy(
            load_balancing="explicit", active=[vmotion_nic(i)], standby=_standby(spec, i)))
        for i in range(spec.pairs)
    }
    vmknics = {"vmk0": Vmknic(portgroup="Management Network", services=[Service.MANAGEMENT],
                              ipv4=IPv4Config(type="static", address=management_address(h)))}
    vmknics |= {
        vmotion_vmk(i): Vmknic(portgroup=vmotion_portgroup(i), netstack=VMOTION_STACK,
                               mtu=spec.mtu,
                               ipv4=IPv4Config(type="static", address=vmotion_address(h, i)))
        for i in range(spec.pairs)
    }
    return Host(
        nics=nics,
        vswitches={
            "vSwitch0": StandardSwitch(
                uplinks=["vmnic0", "vmnic1"],
                teaming=TeamingPolicy(load_balancing="explicit", active=["vmnic0"],
                                      standby=["vmnic1"]),
                portgroups={"Management Network": PortGroup(vlan=MGMT_VLAN)}),
            "vSwitch1": StandardSwitch(
                mtu=spec.mtu, uplinks=vmotion_nics(spec),
                teaming=TeamingPolicy(active=vmotion_nics(spec)), portgroups=portgroups),
        },
        vmknics=vmknics,
    )


def datacenter(spec: LabSpec) -> Datacenter:
    physical = PhysicalNetwork(controller=Controller(vlan=MGMT_VLAN, address=CONTROLLER))
    return Datacenter(name="vmotion-bench", physical=physical,
                      hosts={host_name(h): host(spec, h) for h in range(1, spec.hosts + 1)})


def lab_yaml(spec: LabSpec) -> str:
    """The desired-state file of the lab (what `vmknet lab up FILE` takes)."""
    return dumps(datacenter(spec))


@dataclass(frozen=True)
class Pair:
    """vMotion adapter pair i between a source and a target host of the lab."""

    index: int
    source_host: str
    target_host: str
    source_vmk: str
    target_vmk: str
    source: IPv4Address
    target: IPv4Address

    @property
    def label(self) -> str:
        return f"{self.source_host}/{self.source_vmk}->{self.target_host}/{self.target_vmk}"


def pairs(spec: LabSpec, source: int = 1, target: int = 2) -> list[Pair]:
    """The adapter pairs resolve() stripes vMotion over from host `source` to `target`."""
    return [Pair(i, host_name(source), host_name(target), vmotion_vmk(i), vmotion_vmk(i),
                 vmotion_address(source, i).ip, vmotion_address(target, i).ip)
            for i in range(spec.pairs)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=1)
    parser.add_argument("--speed", type=int, default=10000, help="Mbit/s of each vMotion uplink")
    parser.add_argument("--mtu", type=int, default=9000)
    parser.add_argument("--standby", action="store_true")
    args = parser.parse_args(argv)
    spec = LabSpec(args.hosts, args.pairs, args.speed, args.mtu, args.standby)
    sys.stdout.write(lab_yaml(spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
