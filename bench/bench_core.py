"""Core benchmark: a large datacenter through load + validate + lint, and resolve() per call.

    python bench/bench_core.py              # 1,000 hosts, 8 adapters each
    python bench/bench_core.py --hosts 200
    python bench/bench_core.py --smoke      # 50 hosts, what CI runs

Addressing (LAB.md: 198.18.0.0/15 only). Each service owns a /19 of
198.18.0.0/16 (8,192 addresses), so every host of one service shares a
subnet and resolve finds on-link pairs, the way a flat vMotion or vSAN
network is built: service s has 198.18.(32*s).0/19, its gateway is .1,
host h's adapter k (k = 0, 1 for the two vMotion adapters) gets
network + 16 + h + k * hosts. That fits 4,080 hosts.

Aims: load + validate + lint of 1,000 hosts under 2 s; one resolve() under 1 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

from vmknet.model import (
    Cluster,
    Datacenter,
    DistributedSwitch,
    DvPortGroup,
    Host,
    IPv4Config,
    Netstack,
    PhysicalNic,
    PortGroup,
    Service,
    StandardSwitch,
    TeamingPolicy,
    Vmknic,
)

# Service index -> its /19 (see the module docstring); the custom stack is "appstack".
MGMT, VMOTION, PROV, VSAN, FT, REPL, CUSTOM = range(7)
CLUSTER_SIZE = 32
DVS = "dvs-core"
UPLINKS = ["Uplink 1", "Uplink 2"]
MAX_HOSTS = 4000  # 16 + 2 * hosts addresses must fit one /19


def subnet(service: int) -> IPv4Network:
    return IPv4Network(f"198.18.{32 * service}.0/19")


def gateway(service: int) -> IPv4Address:
    return subnet(service).network_address + 1


def address(service: int, host: int, hosts: int, k: int = 0) -> IPv4Interface:
    net = subnet(service)
    return IPv4Interface(f"{net.network_address + 16 + host + k * hosts}/{net.prefixlen}")


def vmk(service: int, i: int, n: int, *, k: int = 0, netstack: str = "defaultTcpipStack",
        portgroup: str | None = None, dvpg: str | None = None, mtu: int = 1500,
        services: list[Service] | None = None) -> Vmknic:
    return Vmknic(
        portgroup=portgroup, dvs=DVS if dvpg else None, dvportgroup=dvpg, netstack=netstack,
        mtu=mtu, ipv4=IPv4Config(type="static", address=address(service, i, n, k)),
        services=services or [],
    )


def host(i: int, n: int) -> Host:
    """8 adapters: management, 2 vMotion, provisioning, vSAN, FT, replication, custom stack."""
    team = TeamingPolicy
    return Host(
        nics={f"vmnic{j}": PhysicalNic(mtu=9000) for j in range(6)},
        vswitches={
            "vSwitch0": StandardSwitch(
                uplinks=["vmnic0", "vmnic1"], teaming=team(active=["vmnic0"], standby=["vmnic1"]),
                portgroups={"Management Network": PortGroup(vlan=10)}),
            "vSwitch1": StandardSwitch(mtu=9000, uplinks=["vmnic2", "vmnic3"],
                                       teaming=team(active=["vmnic2", "vmnic3"]), portgroups={
                "vMotion-A": PortGroup(vlan=40, teaming=team(active=["vmnic2"],
                                                             standby=["vmnic3"])),
                "vMotion-B": PortGroup(vlan=40, teaming=team(active=["vmnic3"],
                                                             standby=["vmnic2"]))}),
        },
        netstacks={
            "defaultTcpipStack": Netstack(gateway=gateway(MGMT), dns_servers=[gateway(MGMT) + 1]),
            "vmotion": Netstack(gateway=gateway(VMOTION)),
            "vSphereProvisioning": Netstack(gateway=gateway(PROV)),
            "appstack": Netstack(gateway=gateway(CUSTOM)),
        },
        vmknics={
            "vmk0": vmk(MGMT, i, n, portgroup="Management Network",
                        services=[Service.MANAGEMENT]),
            "vmk1": vmk(VMOTION, i, n, netstack="vmotion", portgroup="vMotion-A", mtu=9000),
            "vmk2": vmk(VMOTION, i, n, k=1, netstack="vmotion", portgroup="vMotion-B", mtu=9000),
            "vmk3": vmk(PROV, i, n, netstack="vSphereProvisioning", dvpg="Provisioning"),
            "vmk4": vmk(VSAN, i, n, dvpg="vSAN", mtu=9000, services=[Service.VSAN]),
            "vmk5": vmk(FT, i, n, dvpg="FT-Logging", mtu=9000, services=[Service.FT_LOGGING]),
            "vmk6": vmk(REPL, i, n, dvpg="Replication", services=[Service.REPLICATION]),
            "vmk7": vmk(CUSTOM, i, n, netstack="appstack", dvpg="AppStack"),
        },
    )


def datacenter(n: int) -> Datacenter:
    if not 2 <= n <= MAX_HOSTS:
        raise SystemExit(f"--hosts must be 2..{MAX_HOSTS} for this addressing plan")
    names = [f"esx{i + 1:04d}" for i in range(n)]
    vlans = {"Provisioning": 20, "vSAN": 50, "FT-Logging": 60, "Replication": 70, "AppStack": 80}
    dvs = DistributedSwitch(
        mtu=9000, uplinks=UPLINKS, teaming=TeamingPolicy(active=UPLINKS),
        hosts={name: {"Uplink 1": "vmnic4", "Uplink 2": "vmnic5"} for name in names},
        portgroups={pg: DvPortGroup(vlan=v) for pg, v in vlans.items()},
    )
    clusters = {
        f"cl{c // CLUSTER_SIZE + 1:03d}": Cluster(ha=True, vsan=True, ft=True,
                                                  hosts=names[c:c + CLUSTER_SIZE])
        for c in range(0, n, CLUSTER_SIZE)
    }
    return Datacenter(name="bench", clusters=clusters, distributed_switches={DVS: dvs},
                      hosts={name: host(i, n) for i, name in enumerate(names)})


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def measure(n: int, calls: int, repeat: int) -> list[tuple[str, float, float, str]]:
    """Median of `repeat` runs for each step (the first run also pays imports and caches)."""
    from vmknet.inventory import Inventory
    from vmknet.resolve import resolve
    from vmknet.rules.lint import lint
    from vmknet.state import dumps, load_file

    with tempfile.TemporaryDirectory(prefix="vmknet-bench-") as tmp:
        path = Path(tmp) / "datacenter.yaml"
        path.write_text(dumps(datacenter(n)))
        size = path.stat().st_size
        runs = [_load_validate_lint(path, load_file, Inventory.validate, lint)
                for _ in range(repeat)]
    t_load, t_validate, t_lint = (statistics.median(r[i] for r in runs) for i in range(3))
    t_total = statistics.median(sum(r[:3]) for r in runs)
    dc, findings = runs[-1][3], runs[-1][4]
    rng = random.Random(1)
    names = list(dc.hosts)
    samples = []
    for _ in range(calls):
        a, b = rng.sample(names, 2)
        t, flows = timed(partial(resolve, dc, Service.VMOTION, a, b))
        assert len(flows) == 2, flows  # multi-NIC vMotion: two stripes
        samples.append(t)
    errs = sum(1 for f in findings if str(f.severity) == "error")
    return [
        (f"load ({n} hosts, {size / 1e6:.1f} MB YAML)", t_load, 0, ""),
        ("validate", t_validate, 0, ""),
        ("lint", t_lint, 0, f"{len(findings)} findings, {errs} errors"),
        ("load+validate+lint", t_total, 2.0 * n / 1000,
         f"median of {repeat}" + ("" if n == 1000 else ", aim scaled from 2 s/1000 hosts")),
        (f"resolve vmotion (median of {calls})", statistics.median(samples), 0.001, ""),
    ]


def _load_validate_lint(path: Path, load: Callable[[Path], Datacenter],
                        validate: Callable[[Datacenter], list[Any]],
                        lint: Callable[[Datacenter], list[Any]]) -> tuple[Any, ...]:
    t_load, dc = timed(partial(load, path))
    t_validate, errors = timed(partial(validate, dc))
    if errors:
        raise SystemExit(f"generated datacenter refused: {errors[0]}")
    t_lint, findings = timed(partial(lint, dc))
    return t_load, t_validate, t_lint, dc, findings


def report(rows: list[tuple[str, float, float, str]]) -> str:
    lines = [f"{'measure':44} {'time':>10} {'aim':>9} {'ratio':>7}  note", "-" * 84]
    for name, seconds, aim, note in rows:
        aim_text = _fmt(aim) if aim else "-"
        ratio = f"{seconds / aim:.2f}" if aim else "-"
        lines.append(f"{name:44} {_fmt(seconds):>10} {aim_text:>9} {ratio:>7}  {note}")
    return "\n".join(lines)


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--smoke", action="store_true", help="50 hosts, 200 resolve calls")
    parser.add_argument("--calls", type=int, default=1000, help="resolve() calls to time")
    parser.add_argument("--repeat", type=int, default=3, help="runs of load+validate+lint")
    args = parser.parse_args(argv)
    n, calls, repeat = (50, 200, 1) if args.smoke else (args.hosts, args.calls, args.repeat)
    rows = measure(n, calls, max(1, repeat))
    print(report(rows))
    over = [name for name, seconds, aim, _ in rows if aim and seconds > aim]
    if over:
        print(f"over the aim: {', '.join(over)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
