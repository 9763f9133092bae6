"""Lab benchmark: bring-up and tear-down of a real kernel lab, vmknet vs. a plain `ip` script.

    sudo .venv/bin/python bench/bench_lab.py                 # 1, 4 and 16 hosts
    sudo .venv/bin/python bench/bench_lab.py --hosts 1,4,16 --repeat 3
    sudo .venv/bin/python bench/bench_lab.py --smoke         # 1 host, what CI runs
    sudo .venv/bin/python bench/bench_lab.py --hosts 16 --profile   # cProfile of vmknet up

Each host has 4 TCP/IP stacks (defaultTcpipStack, vmotion, vSphereProvisioning
and the custom `appstack`) and 6 adapters: management (IPv4 + IPv6, explicit
failover vmnic0 -> vmnic1) on vSwitch0, two multi-NIC vMotion adapters with
opposite failover orders on vSwitch1 (MTU 9000), and provisioning, vSAN and
`appstack` adapters on a distributed switch (Uplink 1/2 = vmnic4/5, port-id
spreading); every port group has its own VLAN and two uplinks, so every
adapter has two wires. A router `core` joins the VLANs and a controller sits
on the management VLAN. Addresses (LAB.md: 198.18.0.0/15, 2001:db8::/32):
VLAN v uses 198.18.v.0/24 with the router at .1, host h at .(10 + h) (the
second vMotion adapter at .(100 + h)); management IPv6 is 2001:db8:10::/64.

In the same run, for every host count, the same `KernelState` that render()
produced is built twice from empty: by `apply()` (read + plan + execute +
verify on the Linux backend) and by a generated `bash -e` script of plain
`ip`/`tc`/`sysctl` commands (bench/ip_script.py), which is checked to read
back as exactly the desired state (an empty plan). Tear-down is
`LinuxBackend().cleanup()` (what `vmknet lab down` does: remove the lab's
namespaces) against `ip netns del` per namespace; `destroy()` (apply to an
empty state: every object deleted one by one, then verified) is timed as well.
The no-op re-apply is apply() of the same state again (read + plan, zero ops).

Aims: vmknet up / ip-script up <= 1.0; no-op re-apply of 16 hosts under 0.5 s.
Every namespace is named vmkl-bench<pid>.*; it is removed in a `finally`
(also on Ctrl-C or SIGTERM) and the run fails if anything is left.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ip_script import commands, script_down, script_up
from vmknet.dataplane import naming
from vmknet.dataplane.apply import apply, destroy
from vmknet.dataplane.kstate import KernelState
from vmknet.dataplane.linux import LinuxBackend, netns
from vmknet.dataplane.linux.netns import ETC_NETNS, listed
from vmknet.dataplane.plan import differences
from vmknet.dataplane.render import render
from vmknet.model import (
    Controller,
    Datacenter,
    DistributedSwitch,
    DvPortGroup,
    Host,
    IPv4Config,
    IPv6Config,
    Netstack,
    PhysicalNetwork,
    PhysicalNic,
    PortGroup,
    Route,
    Router,
    RouterInterface,
    Service,
    StandardSwitch,
    TeamingPolicy,
    Vmknic,
)

MGMT, PROV, VMOTION, VSAN, APP = 10, 20, 40, 50, 80  # VLAN ids; VLAN v is 198.18.v.0/24
MAX_HOSTS = 64  # .(100 + h) must stay in the /24
DVS = "dvs-lab"
UPLINKS = ["Uplink 1", "Uplink 2"]
NOOP_AIM = 0.5  # s, for 16 hosts
SENTINEL_STEP, SENTINEL_MAX, SETTLE_SECONDS = 0.01, 60.0, 0.5
RATIO_AIM = 1.0


# ------------------------------------------------------------------ the lab


def v4(vlan: int, last: int) -> IPv4Address:
    return IPv4Address(f"198.18.{vlan}.{last}")


def iface(vlan: int, last: int) -> IPv4Interface:
    return IPv4Interface(f"{v4(vlan, last)}/24")


def v6(last: int) -> IPv6Address:
    return IPv6Address(f"2001:db8:{MGMT}::{last:x}")


def adapter(vlan: int, last: int, *, stack: str = "defaultTcpipStack", pg: str | None = None,
            dvpg: str | None = None, mtu: int = 1500, services: list[Service] | None = None,
            ipv6: bool = False) -> Vmknic:
    return Vmknic(
        portgroup=pg, dvs=DVS if dvpg else None, dvportgroup=dvpg, netstack=stack, mtu=mtu,
        ipv4=IPv4Config(type="static", address=iface(vlan, last)),
        ipv6=IPv6Config(addresses=[IPv6Interface(f"{v6(last)}/64")] if ipv6 else []),
        services=services or [],
    )


def host(h: int) -> Host:
    """4 stacks, 6 adapters, 6 NICs: see the module docstring."""
    team = TeamingPolicy
    me = 10 + h
    return Host(
        nics={f"vmnic{j}": PhysicalNic(speed=1000 if j < 2 else 10000,
                                       mtu=1500 if j < 2 else 9000) for j in range(6)},
        vswitches={
            "vSwitch0": StandardSwitch(
                uplinks=["vmnic0", "vmnic1"],
                teaming=team(load_balancing="explicit", active=["vmnic0"], standby=["vmnic1"]),
                portgroups={"Management Network": PortGroup(vlan=MGMT)}),
            "vSwitch1": StandardSwitch(
                mtu=9000, uplinks=["vmnic2", "vmnic3"], teaming=team(active=["vmnic2", "vmnic3"]),
                portgroups={
                    "vMotion-A": PortGroup(vlan=VMOTION, teaming=team(
                        load_balancing="explicit", active=["vmnic2"], standby=["vmnic3"])),
                    "vMotion-B": PortGroup(vlan=VMOTION, teaming=team(
                        load_balancing="explicit", active=["vmnic3"], standby=["vmnic2"]))}),
        },
        netstacks={
            "defaultTcpipStack": Netstack(gateway=v4(MGMT, 1), ipv6_gateway=v6(1),
                                          dns_servers=[v4(MGMT, 2)]),
            "vmotion": Netstack(gateway=v4(VMOTION, 1)),
            "vSphereProvisioning": Netstack(gateway=v4(PROV, 1)),
            "appstack": Netstack(gateway=v4(APP, 1), routes=[
                Route(network=IPv4Network("198.19.0.0/16"), gateway=v4(APP, 1))]),
        },
        vmknics={
            "vmk0": adapter(MGMT, me, pg="Management Network", services=[Service.MANAGEMENT],
                            ipv6=True),
            "vmk1": adapter(VMOTION, me, stack="vmotion", pg="vMotion-A", mtu=9000),
            "vmk2": adapter(VMOTION, 100 + h, stack="vmotion", pg="vMotion-B", mtu=9000),
            "vmk3": adapter(PROV, me, stack="vSphereProvisioning", dvpg="Provisioning"),
            "vmk4": adapter(VSAN, me, dvpg="vSAN", mtu=9000, services=[Service.VSAN]),
            "vmk5": adapter(APP, me, stack="appstack", dvpg="AppStack"),
        },
    )


def datacenter(n: int) -> Datacenter:
    if not 1 <= n <= MAX_HOSTS:
        raise SystemExit(f"--hosts must be 1..{MAX_HOSTS} for this addressing plan")
    names = [f"esx{h:02d}" for h in range(1, n + 1)]
    dvs = DistributedSwitch(
        mtu=9000, uplinks=UPLINKS, teaming=TeamingPolicy(active=UPLINKS),
        hosts={name: {"Uplink 1": "vmnic4", "Uplink 2": "vmnic5"} for name in names},
        portgroups={"Provisioning": DvPortGroup(vlan=PROV), "vSAN": DvPortGroup(vlan=VSAN),
                    "AppStack": DvPortGroup(vlan=APP)},
    )
    core = Router(interfaces=[
        RouterInterface(vlan=MGMT, mtu=1500, addresses=[iface(MGMT, 1),
                                                        IPv6Interface(f"{v6(1)}/64")]),
        RouterInterface(vlan=PROV, addresses=[iface(PROV, 1)]),
        RouterInterface(vlan=VMOTION, addresses=[iface(VMOTION, 1)]),
        RouterInterface(vlan=APP, addresses=[iface(APP, 1)]),
    ])
    physical = PhysicalNetwork(routers={"core": core}, controller=Controller(
        vlan=MGMT, address=iface(MGMT, 2), gateway=v4(MGMT, 1)))
    return Datacenter(name="bench-lab", distributed_switches={DVS: dvs}, physical=physical,
                      hosts={name: host(h) for h, name in enumerate(names, start=1)})


# ------------------------------------------------------------------ running


def lab_name() -> str:
    return f"bench{os.getpid()}"


def run_bash(script: str) -> float:
    """Seconds `bash -e` takes for `script` (fed on stdin); raises if it fails."""
    start = time.perf_counter()
    done = subprocess.run(["bash", "-e"], input=script.encode(), capture_output=True,
                          timeout=600, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"ip script failed ({done.returncode}): "
                           f"{done.stderr.decode(errors='replace').strip()[-500:]}")
    return took


def leftovers(prefix: str) -> list[str]:
    found = listed(prefix)
    if os.path.isdir(ETC_NETNS):
        found += [f"{ETC_NETNS}/{e}" for e in os.listdir(ETC_NETNS) if e.startswith(prefix)]
    return found


def root_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                         check=True, timeout=10).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def sentinel_ns(prefix: str) -> str:
    """A namespace outside the lab's prefix whose veth ends in the lab's `_pnet` (see below)."""
    return prefix.removesuffix(".") + "-sentinel"


def plant_sentinel(prefix: str) -> None:
    """veth `s0` in the sentinel namespace, its peer in `_pnet`: it vanishes only once the
    kernel has really dismantled `_pnet` (a removed namespace's devices go later)."""
    ns, pnet = sentinel_ns(prefix), naming.pnet_ns(prefix.removeprefix("vmkl-").rstrip("."))
    run_bash(f"ip netns add {ns}\nip -n {ns} link add s0 type veth peer name s0p netns {pnet}\n")


def sentinel_gone(prefix: str, since: float) -> float:
    """Seconds from `since` until the sentinel's veth is gone; removes the sentinel namespace."""
    ns = sentinel_ns(prefix)
    try:
        while time.perf_counter() - since < SENTINEL_MAX:
            with netns.open_netlink(ns) as nlk:
                try:
                    nlk.index("s0")
                except FileNotFoundError:
                    return time.perf_counter() - since
            time.sleep(SENTINEL_STEP)
        raise RuntimeError(f"the kernel did not free the lab's _pnet in {SENTINEL_MAX} s")
    finally:
        netns.remove(ns)


def settle(prefix: str) -> None:
    """Between phases: nothing of ours left, and a moment for the kernel to finish freeing."""
    left = leftovers(prefix)
    if left:
        raise RuntimeError(f"left after tear-down: {left[:5]}")
    time.sleep(SETTLE_SECONDS)


@dataclass
class Sample:
    """One round of one host count (seconds)."""

    vmknet_up: float
    ip_up: float
    vmknet_down: float
    ip_down: float
    noop: float
    read: float
    destroy: float
    vmknet_settled: float = 0.0  # down until the kernel has freed `_pnet` (sentinel gone)
    ip_settled: float = 0.0
    breakdown: dict[str, float] = field(default_factory=dict)  # apply's read/plan/execute/verify
    ops: int = 0


def vmknet_round(backend: LinuxBackend, state: KernelState, prefix: str) -> dict[str, Any]:
    start = time.perf_counter()
    result = apply(backend, state, prefix)
    up = time.perf_counter() - start
    start = time.perf_counter()
    current = backend.read(prefix)
    read = time.perf_counter() - start
    if differences(current, state):
        raise RuntimeError("vmknet's lab does not read back as the desired state")
    start = time.perf_counter()
    again = apply(backend, state, prefix)
    noop = time.perf_counter() - start
    if again.changed:
        raise RuntimeError(f"no-op re-apply planned {len(again.ops)} ops")
    plant_sentinel(prefix)
    start = time.perf_counter()
    backend.cleanup(prefix)  # what `vmknet lab down` does
    down = time.perf_counter() - start
    settled = sentinel_gone(prefix, start)
    settle(prefix)
    return {"up": up, "read": read, "noop": noop, "down": down, "settled": settled,
            "ops": len(result.ops), "breakdown": dict(result.seconds)}


def ip_round(backend: LinuxBackend, state: KernelState, prefix: str) -> dict[str, float]:
    up = run_bash(script_up(state))
    diffs = differences(backend.read(prefix), state)
    if diffs:
        raise RuntimeError(f"the ip script built something else ({len(diffs)} differences, "
                           f"first: {diffs[0]})")
    plant_sentinel(prefix)
    start = time.perf_counter()
    down = run_bash(script_down(state))
    settled = sentinel_gone(prefix, start)
    settle(prefix)
    # destroy(), timed on the same lab built again by the script (cheaper than an apply).
    run_bash(script_up(state))
    start = time.perf_counter()
    destroy(backend, prefix)
    took = time.perf_counter() - start
    settle(prefix)
    return {"up": up, "down": down, "settled": settled, "destroy": took}


def measure(n: int, repeat: int, prefix: str, backend: LinuxBackend) -> tuple[list[Sample], int]:
    lab = prefix.removeprefix("vmkl-").removesuffix(".")
    state = render(datacenter(n), lab)
    samples = []
    for r in range(repeat):
        # Alternate which side goes first: the kernel's async netns cleanup of one side's
        # tear-down must not always land on the same side's bring-up.
        if r % 2 == 0:
            vm, ipr = vmknet_round(backend, state, prefix), ip_round(backend, state, prefix)
        else:
            ipr, vm = ip_round(backend, state, prefix), vmknet_round(backend, state, prefix)
        samples.append(Sample(vm["up"], ipr["up"], vm["down"], ipr["down"], vm["noop"],
                              vm["read"], ipr["destroy"], vm["settled"], ipr["settled"],
                              vm["breakdown"], vm["ops"]))
    return samples, sum(1 for _ in commands(script_up(state)))


def size(state: KernelState) -> str:
    return (f"{len(state.namespaces)} ns, {len(state.links)} links, "
            f"{len(state.addresses)} addrs, {len(state.routes)} routes, "
            f"{len(state.rules)} rules, {len(state.qdiscs)} qdiscs, "
            f"{len(state.sysctls)} sysctls")


# ------------------------------------------------------------------ report

Row = tuple[int, list[Sample], int]


def med(samples: list[Sample], get: Callable[[Sample], float]) -> float:
    return statistics.median(get(s) for s in samples)


def med_phase(samples: list[Sample], phase: str) -> float:
    return statistics.median(s.breakdown.get(phase, 0.0) for s in samples)


def report(rows: list[Row], repeat: int) -> str:
    head = (f"{'hosts':>5} {'ops':>5} {'ip cmds':>7} {'vmknet up':>10} {'ip up':>8} {'ratio':>6} "
            f"{'vmknet down':>12} {'ip down':>8} {'ratio':>6} {'settled vmk/ip':>15} "
            f"{'destroy':>8} {'no-op':>7} {'read':>7}")
    lines = [f"median of {repeat} round(s); seconds", head, "-" * len(head)]
    for n, samples, cmds in rows:
        up, ip_up = med(samples, lambda s: s.vmknet_up), med(samples, lambda s: s.ip_up)
        down, ip_down = med(samples, lambda s: s.vmknet_down), med(samples, lambda s: s.ip_down)
        settled = (f"{med(samples, lambda s: s.vmknet_settled):.2f}/"
                   f"{med(samples, lambda s: s.ip_settled):.2f}")
        lines.append(
            f"{n:>5} {samples[0].ops:>5} {cmds:>7} {up:>10.3f} {ip_up:>8.3f} {up / ip_up:>6.2f} "
            f"{down:>12.3f} {ip_down:>8.3f} {down / ip_down:>6.2f} {settled:>15} "
            f"{med(samples, lambda s: s.destroy):>8.3f} {med(samples, lambda s: s.noop):>7.3f} "
            f"{med(samples, lambda s: s.read):>7.3f}")
    lines.append("")
    lines.append("vmknet up = apply(): " + "; ".join(
        f"{n} hosts " + ", ".join(f"{k} {med_phase(s, k):.3f}"
                                  for k in ("read", "plan", "execute", "verify"))
        for n, s, _ in rows))
    lines += [
        "vmknet down = LinuxBackend().cleanup() (what `lab down` does: unmount and unlink the "
        "namespaces); ip down = `ip netns del` each",
        "settled = from the start of the tear-down until the kernel has really freed the "
        "links of `_pnet` (a sentinel veth into it vanishes)",
        "destroy = apply() to an empty state (every object deleted one by one, then verified); "
        "no-op = apply() of the same state again; read = one backend.read()",
    ]
    return "\n".join(lines)


def profile_up(backend: LinuxBackend, state: KernelState, prefix: str, top: int = 25) -> str:
    prof = cProfile.Profile()
    try:
        prof.enable()
        apply(backend, state, prefix)
        prof.disable()
    finally:
        backend.cleanup(prefix)
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt like Ctrl-C, so `finally` cleans up either way."""
    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="1,4,16", help="comma-separated host counts")
    parser.add_argument("--smoke", action="store_true", help="1 host, 1 round (CI)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds per host count")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile one vmknet bring-up of the largest host count")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_lab needs root (it builds network namespaces)", file=sys.stderr)
        return 2
    counts = [1] if args.smoke else [int(x) for x in args.hosts.split(",") if x.strip()]
    repeat = 1 if args.smoke else max(1, args.repeat)
    prefix = f"vmkl-{lab_name()}."
    backend = LinuxBackend()
    caps = backend.capabilities()
    print(f"kernel {os.uname().release}, {os.cpu_count()} cores; VLANs: {caps.vlan_mechanism}; "
          f"teaming: {caps.teaming_mechanism}")
    before = root_links()
    rows: list[Row] = []
    try:
        with interruptible():
            measure(1, 1, prefix, backend)  # warm-up, not counted: lazy imports, page cache
            for n in counts:
                state = render(datacenter(n), lab_name())
                print(f"{n} hosts: {size(state)}", flush=True)
                samples, cmds = measure(n, repeat, prefix, backend)
                rows.append((n, samples, cmds))
            if args.profile:
                state = render(datacenter(max(counts)), lab_name())
                print(profile_up(backend, state, prefix))
    finally:
        backend.cleanup(prefix)
        backend.cleanup(sentinel_ns(prefix))
        left = leftovers(prefix) + leftovers(sentinel_ns(prefix))
        changed = root_links() ^ before
    if rows:
        print(report(rows, repeat))
    if left or changed:
        print(f"LEFT BEHIND: {left} root links changed: {sorted(changed)}", file=sys.stderr)
        return 1
    print(f"clean: no {prefix}* namespace or /etc/netns dir left, root links unchanged")
    over = [f"{n} hosts up ratio" for n, s, _ in rows
            if med(s, lambda x: x.vmknet_up) > RATIO_AIM * med(s, lambda x: x.ip_up)]
    over += [f"{n} hosts no-op" for n, s, _ in rows
             if n >= 16 and med(s, lambda x: x.noop) > NOOP_AIM]
    if over:
        print(f"over the aim: {', '.join(over)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
