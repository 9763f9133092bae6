"""The example lab built by `lab up`: stacks isolated, a gateway per stack, VLANs, status, re-apply.

One lab per module (per xdist worker) keeps the suite short: building it costs
~1.5 s of kernel ops plus ~4 s of STP, and these tests only read it (the
drift test repairs what it breaks).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from kernelkit import ping, run, wait_until
from labkit import agent_pid, lab_name

from vmknet.cli.main import main
from vmknet.dataplane import naming
from vmknet.dataplane.apply import FaultInjector
from vmknet.dataplane.linux import LinuxBackend, netns
from vmknet.inventory import Inventory
from vmknet.lab import Lab, lifecycle
from vmknet.lab.realise import KernelRealiser
from vmknet.state import load_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"
UNROUTED = "198.19.255.1"  # in 198.18.0.0/15, in no subnet of the lab: the default route's


@dataclass
class Built:
    lab: Lab
    store: Path
    report: lifecycle.UpReport

    def ns(self, host: str, stack: str) -> str:
        return naming.stack_ns(self.lab.name, host, stack)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    store = tmp_path_factory.mktemp("example") / "inventory.db"
    inv = Inventory.open(store)
    name = lab_name()
    try:
        report = lifecycle.up(inv, EXAMPLE, name)
        yield Built(Lab.named(name), store, report)
    finally:
        lifecycle.down(inv, name)


def test_up_converged_and_reached_every_management_adapter(built: Built) -> None:
    done = built.report.realised
    assert done is not None and done.converge_seconds is not None
    print(f"\nlab up: {len(done.result.ops)} ops, execute {done.result.seconds['execute']:.2f} s,"
          f" STP {done.converge_seconds:.2f} s, total {built.report.seconds:.2f} s")
    assert sorted(t.host for t in done.replies) == ["esx01", "esx02", "esx03"]
    assert all(rtt is not None for rtt in done.replies.values())


def _connect(ns: str, address: str, port: int, timeout: float = 1.0) -> bool:
    """A TCP connect from inside `ns` (the socket is made there, used from here)."""
    sock = netns.in_netns(ns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    with sock:
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
        except OSError:
            return False
        return True


def test_no_path_between_the_stacks_of_a_host(built: Built) -> None:
    default = built.ns("esx01", "defaultTcpipStack")
    listener = netns.in_netns(default, lambda: socket.create_server(("198.18.12.11", 2233)))
    with listener:
        # vSAN (VLAN 50) has no router: only the default stack of some host reaches it.
        assert _connect(built.ns("esx02", "defaultTcpipStack"), "198.18.12.11", 2233)
        for stack in ("vmotion", "vSphereProvisioning"):
            assert not _connect(built.ns("esx01", stack), "198.18.12.11", 2233, 0.5)
            assert not ping(built.ns("esx01", stack), "198.18.12.11", wait=0.5)
    # rtr01 routes vMotion only (SEC-6): the vmotion stack reaches vmk0 neither inside the
    # host nor through the router (test_isolation.py opens that route and proves the hop).
    vmotion = built.ns("esx01", "vmotion")
    assert not ping(vmotion, "198.18.0.11", wait=0.5)
    assert not _connect(vmotion, "198.18.0.11", 443, 0.5)


def _route(ns: str, dst: str) -> dict[str, str]:
    out = subprocess.run(["ip", "-n", ns, "-j", "route", "get", dst], capture_output=True,
                         text=True, check=True, timeout=10).stdout
    entry: dict[str, str] = json.loads(out)[0]
    return entry


@pytest.mark.parametrize(("host", "stack", "gateway", "devs"), [
    ("esx01", "defaultTcpipStack", "198.18.0.1", {"vmk0"}),
    ("esx01", "vmotion", "198.18.4.1", {"vmk1", "vmk2"}),
    ("esx01", "vSphereProvisioning", "198.18.8.1", {"vmk3"}),
    ("esx03", "vmotion", "198.18.5.1", {"vmk1", "vmk2"}),
])
def test_each_stack_routes_through_its_own_gateway(built: Built, host: str, stack: str,
                                                   gateway: str, devs: set[str]) -> None:
    route = _route(built.ns(host, stack), UNROUTED)
    assert route["gateway"] == gateway
    assert route["dev"] in devs


def test_routed_vmotion_crosses_one_router_hop(built: Built) -> None:
    # esx03's vmotion stack (198.18.5.0/24) to esx01's vmk1 (198.18.4.0/24): via 198.18.5.1.
    out = run(built.ns("esx03", "vmotion"), "ping", "-n", "-c", "1", "-W", "2",
              "198.18.4.11").stdout
    assert "ttl=63" in out  # one hop: the vmotion stack's own gateway forwarded it


def test_same_vlan_across_hosts_reaches_other_vlans_do_not(built: Built) -> None:
    default = built.ns("esx01", "defaultTcpipStack")
    # a few tries: on a loaded 2-core machine one echo can miss its 1 s
    assert wait_until(lambda: ping(default, "198.18.12.12"), 5) is not None  # vSAN VLAN 50
    assert wait_until(lambda: ping(default, "198.18.16.13"), 5) is not None  # FT VLAN 60
    # Forced out of vmk5 (VLAN 60) towards a VLAN 50 address: nobody there answers ARP.
    assert not ping(default, "198.18.12.12", source="vmk5", wait=0.5)


def test_status_reports_drift_per_namespace_and_repair_fixes_it(built: Built) -> None:
    runner = CliRunner()
    args = ["--store", str(built.store), "lab", "status"]
    clean = runner.invoke(main, args)
    assert clean.exit_code == 0, clean.output
    assert "In sync" in clean.output
    ns = built.ns("esx02", "vSphereProvisioning")
    # esx02's agent repairs drift by itself (its reconcile pass): held still while the
    # drift is looked at, so `lab status` is what this test sees first.
    agent = agent_pid(built.lab.name, "esx02")
    os.kill(agent, signal.SIGSTOP)
    try:
        subprocess.run(["ip", "-n", ns, "addr", "del", "198.18.8.12/24", "dev", "vmk3"],
                       check=True, timeout=10)
        drift = runner.invoke(main, args)
    finally:
        os.kill(agent, signal.SIGCONT)
    assert drift.exit_code == 1
    assert f"{ns}:" in drift.output
    assert "AddAddress" in drift.output and "198.18.8.12/24" in drift.output
    repaired = runner.invoke(main, [*args, "--repair"])
    assert repaired.exit_code == 0, repaired.output
    assert runner.invoke(main, args).exit_code == 0
    assert wait_until(lambda: ping(ns, "198.18.8.1", wait=0.3), 5) is not None


def test_applying_the_same_state_twice_runs_no_kernel_op(built: Built) -> None:
    counting = FaultInjector(LinuxBackend(), fail_at=-1)  # never fails: it only counts
    inv = Inventory.open(built.store, realiser=KernelRealiser(counting))
    inv.apply(load_file(EXAMPLE))
    assert counting.calls == 0


def test_up_again_reapplies_for_this_store_and_refuses_another(built: Built,
                                                               tmp_path: Path) -> None:
    again = lifecycle.up(Inventory.open(built.store), EXAMPLE, built.lab.name)
    assert again.reapplied and again.realised is not None and not again.realised.result.ops
    other = CliRunner().invoke(main, ["--store", str(tmp_path / "other.db"), "lab", "up",
                                      str(EXAMPLE), "--name", built.lab.name])
    assert other.exit_code == 4  # AlreadyExists
    assert "lab down --name" in other.output
    listed = CliRunner().invoke(main, ["--store", str(built.store), "lab", "list"])
    line = next(li for li in listed.output.splitlines() if li.startswith(built.lab.name + " "))
    assert str(built.store.resolve()) in line and line.rstrip().endswith("yes")
