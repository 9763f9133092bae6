"""SEC-6 on the wire: the example lab's router forwards only vMotion between its networks.

One lab of examples/lab.yaml for the module (~5 s to bring up). It proves:
the negative checks of `lab check` pass (every other traffic type and its
gateway is unreachable from every stack, by ICMP and TCP), a route declared
in the topology makes that pair reachable (and only that pair), and a
filter changed by hand in the router's namespace is drift that `lab status`
reports and `--repair` puts back.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from kernelkit import ping, run, wait_until
from labkit import lab_name

from vmknet.cli.main import main
from vmknet.dataplane import naming
from vmknet.dataplane.linux import LinuxBackend
from vmknet.inventory import Inventory
from vmknet.lab import Lab, lifecycle
from vmknet.model import Datacenter
from vmknet.state import load_file
from vmknet.traffic import checks, isolation

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"


@dataclass
class Built:
    lab: Lab
    store: Path

    def ns(self, host: str, stack: str) -> str:
        return naming.stack_ns(self.lab.name, host, stack)

    @property
    def router(self) -> str:
        return naming.router_ns(self.lab.name, "rtr01")

    def status(self, *more: str) -> tuple[int, str]:
        out = CliRunner().invoke(main, ["--store", str(self.store), "lab", "status", *more])
        return out.exit_code, out.output


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    store = tmp_path_factory.mktemp("isolation") / "inventory.db"
    inv = Inventory.open(store)
    name = lab_name()
    try:
        lifecycle.up(inv, EXAMPLE, name)
        yield Built(Lab.named(name), store)
    finally:
        lifecycle.down(inv, name)


def _isolation(dc: Datacenter, lab: Lab) -> list[checks.Result]:
    return isolation.run(isolation.plan(dc, lab))


def test_every_stack_is_isolated_from_the_other_traffic_types(built: Built) -> None:
    report = checks.check(load_file(EXAMPLE), built.lab)
    negative = [r for r in report.results if r.check == "isolation"]
    assert report.ok, report.failed[:3]
    assert len(negative) == 114 and all(r.detail.startswith("isolated") for r in negative)
    print(f"\nlab check: {report.summary()}")
    assert report.seconds < 5
    # What the router does forward still works: vMotion VLAN 40 -> 41, one hop.
    assert ping(built.ns("esx01", "vmotion"), "198.18.5.13")
    assert not ping(built.ns("esx01", "vmotion"), "198.18.0.12", wait=0.3)


def test_a_declared_route_makes_that_pair_reachable_and_only_it(built: Built) -> None:
    inv = Inventory.open(built.store)
    routed = load_file(EXAMPLE)
    routed.physical.routers["rtr01"].routes = [("management", "vSphereProvisioning")]
    default, prov = built.ns("esx01", "defaultTcpipStack"), built.ns("esx01", "vSphereProvisioning")
    assert not ping(default, "198.18.8.12", wait=0.3)
    inv.apply(routed)
    try:
        assert wait_until(lambda: ping(default, "198.18.8.12", wait=0.3), 5) is not None
        assert ping(prov, "198.18.0.1")  # the management gateway answers provisioning now
        # esx01's own vmk0 is reached only through the router: with TTL 1 the echo dies there,
        # there is no shortcut between the stacks inside the host (NS-2).
        assert ping(prov, "198.18.0.11")
        assert run(prov, "ping", "-n", "-c", "1", "-W", "1", "-t", "1",
                   "198.18.0.11").returncode != 0
        assert not ping(built.ns("esx01", "vmotion"), "198.18.0.12", wait=0.3)
        results = _isolation(routed, built.lab)
        assert results and all(r.ok for r in results), [r for r in results if not r.ok][:3]
        assert not any(r.source == "esx01/defaultTcpipStack" and "198.18.8.12" in r.target
                       for r in results)
        # The plan of the unrouted file expects that pair isolated: it is not now.
        unrouted = {(r.source, r.target): r for r in _isolation(load_file(EXAMPLE), built.lab)}
        crossed = unrouted[("esx01/defaultTcpipStack", "esx02/vmk3 198.18.8.12")]
        assert not crossed.ok and crossed.detail.startswith("reachable: echo reply")
        assert "tcp/902 reset by the target" in crossed.detail
    finally:
        inv.apply(load_file(EXAMPLE))
    assert not ping(default, "198.18.8.12", wait=0.3)


@pytest.mark.parametrize("tamper", [
    ["add", "rule", "inet", "vmknet", "forward", "iifname", "r2", "oifname", "r0", "accept"],
    ["flush", "ruleset"],
    ["add", "chain", "inet", "vmknet", "forward", "{", "policy", "accept", ";", "}"],
], ids=["extra-rule", "flushed", "policy-accept"])
def test_drift_in_the_router_filter_is_reported_and_repaired(built: Built,
                                                             tamper: list[str]) -> None:
    assert built.status()[0] == 0
    done = run(built.router, "nft", *tamper)
    assert done.returncode == 0, done.stderr
    code, out = built.status()
    assert code == 1 and f"{built.router}:" in out and "SetFilter" in out and "nftables" in out
    if tamper == ["flush", "ruleset"]:  # wide open: the negative checks see it too
        assert any(not r.ok for r in _isolation(load_file(EXAMPLE), built.lab))
    code, out = built.status("--repair")
    assert code == 0, out
    code, out = built.status()
    assert code == 0 and "In sync" in out
    results = _isolation(load_file(EXAMPLE), built.lab)
    assert all(r.ok for r in results)
    read = LinuxBackend().read(built.lab.prefix).filters[built.router]
    assert read.drift == () and ("r2", "r0") not in read.forward


def test_nft_in_the_router_namespace_only(built: Built) -> None:
    # The filter lives in the router's namespace: the root namespace's ruleset is untouched.
    root = subprocess.run(["nft", "-j", "list", "tables"], capture_output=True, text=True,
                          check=True, timeout=10).stdout
    assert "vmknet" not in root
    listed = run(built.router, "nft", "list", "table", "inet", "vmknet")
    assert 'iifname "r2" oifname "r3" accept' in listed.stdout
