"""vSphere HA (FDM) in the host agents, in the kernel: the fault cases of issue 11.

One lab for the module: examples/ha-lab.yaml (three hosts, two management adapters each,
a controller, an NFS array), with the isolation response "leave powered on" so a cut host's
VMs keep running (the last test switches it to powerOff and back). Every test leaves the
three hosts live with no VM, so the next starts clean. Waits are bounded: a verdict within
FAIL_AFTER + DS_DEAD + a ping + a tick.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kernelkit import wait_until
from labkit import agent_pid

from vmknet.cli.main import main
from vmknet.controller import lab as mgmt
from vmknet.controller.client import ControllerClient
from vmknet.dataplane import naming
from vmknet.dataplane.linux import netns
from vmknet.errors import VmknetError
from vmknet.ha import status, view, wire
from vmknet.ha.verdicts import DS_DEAD, FAIL_AFTER
from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.mgmt import paths
from vmknet.processes import alive, lab_pids
from vmknet.supervise import scan
from vmknet.vm import manage, registry

HOSTS = ["esx01", "esx02", "esx03"]
NICS = ["vmnic0", "vmnic1", "vmnic2"]
MiB = 1 << 20
VERDICT = FAIL_AFTER + DS_DEAD + 4.0  # s: a failure declared, with a ping and a tick to spare
EXAMPLE = Path(__file__).parents[2] / "examples" / "ha-lab.yaml"


@dataclass
class Lab:
    name: str
    inv: Inventory
    store: Path

    def status(self) -> dict[str, Any]:
        return status.cluster_status("cl01", HOSTS, lambda h: view.read(self.name, h))

    def view(self, host: str) -> dict[str, Any]:
        return view.read(self.name, host) or {}

    def ha_events(self) -> list[tuple[str, str, str]]:
        return [(e.rule, e.path, e.message) for e in self.inv.events(500)
                if e.rule.startswith("HA-")]

    def vm_hosts(self, vm: str) -> list[str]:
        """The host of every process that runs `vm` (exactly one when all is well)."""
        return sorted(r.host for r in scan.find(self.name) if r.kind == "vm" and r.name == vm)

    def vm(self, name: str, host: str) -> None:
        try:
            manage.create(self.inv.read(), self.name, name, host, 16 * MiB, 0)
        except VmknetError as err:
            # The controller may still hold its connection to the agent a test killed and
            # started again: the first call on it fails, the next one opens a new one.
            assert "closed the management connection" in str(err), err
            manage.create(self.inv.read(), self.name, name, host, 16 * MiB, 0)

    def wires(self, host: str, vmks: list[str], up: bool) -> None:
        """The host's side of each wire of `vmks` (every uplink): the cable pulled or back."""
        ns = naming.host_ns(self.name, host)
        for vmk in vmks:
            for nic in NICS:
                ifname = naming.wire_host(vmk, nic, NICS)
                subprocess.run(["ip", "-n", ns, "link", "set", ifname, "up" if up else "down"],
                               capture_output=True, check=False, timeout=10)

    def cut(self, host: str, vmks: list[str], nics: list[str] | None = None,
            on: bool = True) -> None:
        """Frames to and from the host's cables of `vmks` (on `nics`, default all) dropped in
        the physical network (a bridge filter: the host's agent does not see it as drift to
        repair, as it would a link set down), or let through again."""
        ns = naming.pnet_ns(self.name)
        subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "bridge",
                        "ha_cut"], capture_output=True, check=False, timeout=10)
        if not on:
            return
        ports = ", ".join(sorted(naming.wire_pnet(host, v, n) for v in vmks
                                 for n in nics or NICS))
        rules = (f"table bridge ha_cut {{\n chain forward_ {{\n"
                 f"  type filter hook forward priority 0; policy accept;\n"
                 f"  iifname {{ {ports} }} drop\n  oifname {{ {ports} }} drop\n }}\n}}\n")
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules, text=True,
                       check=True, capture_output=True, timeout=10)

    def kill(self, host: str) -> None:
        """The host dies: its agent and its VMs killed, its cables pulled."""
        pids = [agent_pid(self.name, host)] + [r.pid for r in scan.find(self.name, host)]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        self.wires(host, ["vmk0", "vmk1", "vmk2"], up=False)
        assert wait_until(lambda: not any(alive(p) for p in pids), 10) is not None

    def revive(self, *hosts: str) -> None:
        for host in hosts:
            self.wires(host, ["vmk0", "vmk1", "vmk2"], up=True)
        mgmt.start(self.name, self.inv.read(), str(self.store))
        assert wait_until(lambda: self.settled(), 30) is not None, self.status()
        # and the controller has them back (the next VM is started through their agents)
        assert wait_until(lambda: all(r["condition"] == "Available" for r in ControllerClient(
            self.name).host_status()), 30) is not None

    def settled(self) -> bool:
        st = self.status()
        return len(st["primaries"]) == 1 and all(
            r["state"] == "live" and r["primary"] == st["primaries"][0]
            for r in st["hosts"].values())

    def links_fresh(self) -> bool:
        """Every link between every pair of hosts carries heartbeats again (after a cable
        comes back, the physical network's STP takes a few seconds to forward on it)."""
        return all(len(row["links"]) == 4 and all(lk["ago"] < 1.5 for lk in row["links"])
                   for h in HOSTS for peer, row in self.view(h).get("hosts", {}).items()
                   if peer != h)

    def clean(self) -> None:
        for rec in manage.records(self.name):
            manage.destroy(self.name, rec.name)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    folder = tmp_path_factory.mktemp("ha")
    path = folder / "ha-lab.yaml"
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "isolationResponse: powerOff" in text
    path.write_text(text.replace("isolationResponse: powerOff", "isolationResponse: none"),
                    encoding="utf-8")
    inv = Inventory.open(folder / "inventory.db")
    name = f"t{os.getpid()}-h23"  # under the kernel suite's leak check
    try:
        assert lifecycle.up(inv, path, name).management is not None
        built = Lab(name, inv, folder / "inventory.db")
        assert wait_until(built.settled, 30) is not None, built.status()
        yield built
    finally:
        lifecycle.down(inv, name)
    assert not lab_pids(paths.AGENT_MARKER, name) + lab_pids(paths.CONTROLLER_MARKER, name)


def test_one_primary_every_link_heard_and_datastore_heartbeats(lab: Lab) -> None:
    st = lab.status()
    (primary,) = st["primaries"]
    pv = lab.view(primary)
    for host in HOSTS:
        if host == primary:
            continue
        row = pv["hosts"][host]
        # 2 management adapters here x 2 there: four links, each heard within a heartbeat
        assert len(row["links"]) == 4 and all(lk["ago"] < 2.5 for lk in row["links"]), row
        assert sorted(row["datastores"]) == ["nfs01", "nfs02"], row
    assert lab.view(primary)["heartbeatDatastores"] == ["nfs01", "nfs02"]
    events = lab.ha_events()
    assert any(f"sees {primary} as the primary" in m for _r, _p, m in events), events


def test_a_stranger_on_the_management_network_moves_nothing(lab: Lab) -> None:
    """A restart request and a heartbeat from esx02's own management address, sealed with
    a key that is not the cluster's, and bytes that are no FDM message at all: esx01's
    FDM refuses each before acting (counted in its view), starts nothing, the cluster
    keeps its verdicts."""
    before = int(lab.view("esx01").get("refused", {}).get("count", 0))
    at = time.time()
    common = {"from": "esx02", "cluster": "cl01", "to": "esx01", "at": at}
    forged = [
        wire.seal(b"\0" * 32, {**common, "kind": "restart", "id": "x" * 16,
                               "vm": {"name": "intruder", "memory": 1 << 20,
                                      "dirtyRate": 0, "disk": None}}),
        wire.seal(b"\0" * 32, {**common, "kind": "hb", "role": "primary", "primary": "esx02",
                               "datastores": 1000, "heard": [], "vms": [],
                               "isolated": False}),
        b"FDM1" + os.urandom(64),
    ]
    udp = netns.in_netns(naming.stack_ns(lab.name, "esx02", "defaultTcpipStack"),
                         lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    with udp:
        udp.bind(("198.18.0.12", 0))  # a peer's address: only the key tells them apart
        for datagram in forged:
            udp.sendto(datagram, ("198.18.0.11", wire.PORT))
    assert wait_until(lambda: int(lab.view("esx01").get("refused", {}).get("count", 0))
                      >= before + len(forged), 5) is not None, lab.view("esx01")
    assert "Bad MAC" in lab.view("esx01")["refused"]["last"]
    time.sleep(1.5)  # what a request would have started by now
    assert lab.vm_hosts("intruder") == [] and lab.settled(), lab.status()


def test_one_management_adapter_lost_is_no_verdict(lab: Lab) -> None:
    before = set(lab.ha_events())
    lab.cut("esx02", ["vmk1"])
    try:
        time.sleep(VERDICT)
        st = lab.status()
        assert all(r["state"] == "live" for r in st["hosts"].values()), st
        pv = lab.view(st["primaries"][0])
        if st["primaries"][0] != "esx02":
            fresh = {lk["remote"] for lk in pv["hosts"]["esx02"]["links"] if lk["ago"] < 2.5}
            assert fresh == {"198.18.0.12"}, pv["hosts"]["esx02"]  # vmk1's links went quiet
    finally:
        lab.cut("esx02", ["vmk1"], on=False)
    assert wait_until(lab.links_fresh, 30) is not None, lab.status()
    assert [e for e in lab.ha_events() if e not in before and e[0] == "HA-2"] == []


def test_one_uplink_lost_is_no_verdict(lab: Lab) -> None:
    """vmnic0 of esx02 pulled: both management adapters' wires on it go down (vmk0's active
    uplink, vmk1's standby); vmk1 still has its own uplink, so esx02 is heard."""
    assert wait_until(lab.links_fresh, 30) is not None, lab.status()
    before = set(lab.ha_events())
    lab.cut("esx02", ["vmk0", "vmk1"], ["vmnic0"])
    try:
        time.sleep(VERDICT)
        st = lab.status()
        assert all(r["state"] == "live" for r in st["hosts"].values()), st
    finally:
        lab.cut("esx02", ["vmk0", "vmk1"], ["vmnic0"], on=False)
    assert wait_until(lab.links_fresh, 30) is not None, lab.status()
    new = [e for e in lab.ha_events() if e not in before]
    assert [e for e in new if e[0] == "HA-2"] == [], new


def test_management_cut_isolates_the_host_and_its_vm_keeps_running_alone(lab: Lab) -> None:
    lab.vm("web", "esx02")
    pid = next(r.pid for r in scan.find(lab.name, "esx02") if r.name == "web")
    lab.cut("esx02", ["vmk0", "vmk1"])  # its datastore heartbeats go on
    try:
        took = wait_until(lambda: lab.view("esx02").get("isolated") is True
                          and all(lab.view(h)["hosts"]["esx02"]["state"] == "isolated"
                                  for h in ("esx01", "esx03")), VERDICT + 3)
        assert took is not None, lab.status()
        time.sleep(2 * FAIL_AFTER)  # a primary that wanted to restart it would have by now
        assert lab.vm_hosts("web") == ["esx02"] and alive(pid)
        events = [m for _r, _p, m in lab.ha_events()]
        assert any("host esx02 is isolated" in m for m in events), events
        assert not any("restarted VM web" in m for m in events), events
        assert not any("esx02 is failed" in m for m in events), events
    finally:
        lab.cut("esx02", ["vmk0", "vmk1"], on=False)
    assert wait_until(lab.settled, 20) is not None, lab.status()
    lab.clean()


def test_a_host_dies_and_its_vms_restart_once_on_the_others(lab: Lab) -> None:
    victim = next(h for h in HOSTS if h not in lab.status()["primaries"])
    lab.vm("vm1", victim)
    lab.vm("db", victim)
    # one with its disk on a shared datastore: it restarts from that disk
    got = CliRunner().invoke(main, ["--store", str(lab.store), "vm", "create", "dsk", "-H",
                                    victim, "--memory", "16MiB", "--dirty-rate", "0",
                                    "--disk", "[nfs01] dsk/dsk-flat.vmdk", "--disk-size",
                                    "1MiB", "--disk-rate", "5"])
    assert got.exit_code == 0, got.output
    disk = registry.load(lab.name, "dsk").disk
    assert disk is not None and disk["kind"] == "nfs"
    assert wait_until(lambda: {"vm1", "db", "dsk"} <= set(lab.status()["vms"]), 5) is not None
    start = time.monotonic()
    lab.kill(victim)
    took = wait_until(lambda: all(lab.vm_hosts(v) and victim not in lab.vm_hosts(v)
                                  for v in ("vm1", "db", "dsk")), 20)
    assert took is not None, lab.status()
    print(f"\nhost death to its 3 VMs running elsewhere: {time.monotonic() - start:.1f} s")
    for _ in range(10):  # and it stays so: exactly one process each
        assert all(len(lab.vm_hosts(v)) == 1 for v in ("vm1", "db", "dsk"))
        time.sleep(0.3)
    assert registry.load(lab.name, "dsk").disk == disk  # the same disk, on nfs01
    def logged() -> list[str]:
        return [m for _r, _p, m in lab.ha_events()]

    assert wait_until(lambda: sum("restarted VM" in m for m in logged()) >= 3, 5) is not None
    events = logged()
    assert any(f"host {victim} is failed" in m for m in events), events
    assert sorted(m.split()[4] for m in events if "restarted VM" in m) == ["db", "dsk", "vm1"]
    # restart priority: db (high) is asked for before dsk and vm1 (medium, then by name)
    asked = [m.split()[5] for m in events if "is restarting VM" in m]
    assert asked == ["db", "dsk", "vm1"], events
    lab.revive(victim)
    lab.clean()


def test_the_primary_dies_and_the_new_one_restarts_what_was_left(lab: Lab) -> None:
    (primary,) = lab.status()["primaries"]
    other = next(h for h in HOSTS if h != primary)
    survivor = next(h for h in HOSTS if h not in (primary, other))
    lab.vm("p1", primary)
    lab.vm("o1", other)
    assert wait_until(lambda: {"p1", "o1"} <= set(lab.status()["vms"]), 5) is not None
    lab.kill(primary)
    lab.kill(other)  # two at once: the survivor is alone, elects itself, restarts both
    took = wait_until(lambda: lab.vm_hosts("p1") == [survivor]
                      and lab.vm_hosts("o1") == [survivor], 25)
    assert took is not None, lab.status()
    assert lab.view(survivor)["role"] == "primary" and not lab.view(survivor)["isolated"]
    lab.revive(primary, other)
    assert lab.vm_hosts("p1") == [survivor] and lab.vm_hosts("o1") == [survivor]
    lab.clean()


def _partition(lab: Lab, alone: str, on: bool) -> None:
    """Frames between `alone`'s management cables and everyone else's (the other hosts and
    the router) are dropped in the physical network; the controller stays reachable."""
    ns = naming.pnet_ns(lab.name)
    if not on:
        subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "bridge", "ha_split"],
                       capture_output=True, check=False, timeout=10)
        return
    mine = {naming.wire_pnet(alone, v, n) for v in ("vmk0", "vmk1") for n in NICS[:2]}
    theirs = {naming.wire_pnet(h, v, n) for h in HOSTS if h != alone
              for v in ("vmk0", "vmk1") for n in NICS[:2]}
    theirs |= {naming.router_port("rtr01", i) for i in (0, 1)}
    a, b = ", ".join(sorted(mine)), ", ".join(sorted(theirs))
    rules = (f"table bridge ha_split {{\n chain forward_ {{\n"
             f"  type filter hook forward priority 0; policy accept;\n"
             f"  iifname {{ {a} }} oifname {{ {b} }} drop\n"
             f"  iifname {{ {b} }} oifname {{ {a} }} drop\n }}\n}}\n")
    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules, text=True,
                   check=True, capture_output=True, timeout=10)


def test_a_split_gives_each_side_its_primary_and_no_vm_runs_twice(lab: Lab) -> None:
    lab.vm("s1", "esx03")
    lab.vm("s2", "esx01")
    assert wait_until(lambda: {"s1", "s2"} <= set(lab.status()["vms"]), 5) is not None
    _partition(lab, "esx03", on=True)
    try:
        took = wait_until(lambda: len(lab.status()["primaries"]) == 2
                          and lab.view("esx03")["hosts"]["esx01"]["state"] == "partitioned"
                          and lab.view("esx01")["hosts"]["esx03"]["state"] == "partitioned",
                          VERDICT + 6)
        assert took is not None, lab.status()
        st = lab.status()
        assert st["partitioned"] and "esx03" in st["primaries"], st
        assert not lab.view("esx03")["isolated"]  # it reaches the controller: not isolated
        time.sleep(2 * FAIL_AFTER)
        assert lab.vm_hosts("s1") == ["esx03"] and lab.vm_hosts("s2") == ["esx01"]
    finally:
        _partition(lab, "esx03", on=False)
    assert wait_until(lab.settled, 20) is not None, lab.status()
    events = [m for _r, _p, m in lab.ha_events()]
    assert any("is partitioned" in m for m in events), events
    lab.clean()


def test_isolation_response_power_off_moves_the_vm_once(lab: Lab) -> None:
    """The cluster's isolation response changed to powerOff (a desired-state change the FDMs
    pick up from the controller); a cut host powers its VM off, the primary restarts it."""
    dc = lab.inv.read().model_copy(deep=True)
    dc.clusters["cl01"].das.isolation_response = "powerOff"
    lab.inv.apply(dc)
    assert wait_until(lambda: all(lab.view(h).get("isolationResponse") == "powerOff"
                                  for h in HOSTS), 15) is not None
    lab.vm("iso", "esx01")
    assert wait_until(lambda: "iso" in lab.status()["vms"], 5) is not None
    pid = next(r.pid for r in scan.find(lab.name, "esx01") if r.name == "iso")
    lab.cut("esx01", ["vmk0", "vmk1"])
    try:
        took = wait_until(lambda: lab.vm_hosts("iso") not in ([], ["esx01"]), VERDICT + 8)
        assert took is not None, lab.status()
        assert not alive(pid)  # powered off on the isolated host before the restart
        for _ in range(10):
            assert len(lab.vm_hosts("iso")) == 1 and "esx01" not in lab.vm_hosts("iso")
            time.sleep(0.3)
    finally:
        lab.cut("esx01", ["vmk0", "vmk1"], on=False)
        dc = lab.inv.read().model_copy(deep=True)
        dc.clusters["cl01"].das.isolation_response = "none"
        lab.inv.apply(dc)
    assert wait_until(lab.settled, 20) is not None, lab.status()
    # the isolated host's own events reach the controller once it is back
    assert wait_until(lambda: any("isolation response powerOff of VM iso" in m
                                  for _r, _p, m in lab.ha_events()), 15) is not None
    lab.clean()
