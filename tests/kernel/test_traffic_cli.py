"""The traffic commands against a lab brought up by `vmknet lab up` (the shipped example lab).

One lab for the whole module (bringing it up costs ~5 s): lab check passes
everywhere, vmkping/stats/esxcli kernel views read it, and pulling esx03's
distributed-switch uplinks makes lab check fail exactly there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import OWN_PREFIX

from vmknet.cli.main import main
from vmknet.dataplane.linux import LinuxBackend

LAB = f"{OWN_PREFIX.removeprefix('vmkl-')}cli"


class Cli:
    def __init__(self, store: Path) -> None:
        self.store = store
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(main, ["--store", str(self.store), *args],
                                  catch_exceptions=False)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    run = Cli(tmp_path_factory.mktemp("traffic") / "inventory.db")
    try:
        up = run("lab", "up", "--name", LAB)
        assert up.exit_code == 0, up.output
        yield run
    finally:
        run("lab", "down", "--name", LAB)
        LinuxBackend().cleanup(f"vmkl-{LAB}.")


def test_lab_check_passes_on_the_example_lab_in_about_a_second(cli: Cli) -> None:
    start = time.monotonic()
    result = cli("lab", "check", "--json")
    took = time.monotonic() - start
    report = json.loads(result.output)
    failed = [r for r in report["results"] if r["result"] != "ok"]
    assert result.exit_code == 0 and not failed, failed
    services = {r["service"] for r in report["results"]}
    assert {"management", "vMotion", "provisioning", "vSAN", "FT logging"} <= services
    large = [r for r in report["results"]
             if r["check"] == "large-packet" and r["service"] == "vSAN"]
    assert large and all(r["size"] == 8972 for r in large)
    print(f"\nlab check: {report['checks']} checks, echoes {report['seconds']:.2f} s, "
          f"command {took:.2f} s")
    assert took < 10
    text = cli("lab", "check")
    assert text.exit_code == 0 and f"{report['checks']} checks, {report['checks']} passed" \
        in text.output


def test_vmkping_prints_esxi_lines(cli: Cli) -> None:
    ok = cli("vmkping", "-H", "esx01", "-I", "vmk4", "-d", "-s", "8972", "-c", "2", "-i", "0.1",
             "198.18.12.12")
    lines = ok.output.splitlines()
    assert ok.exit_code == 0, ok.output
    assert lines[0] == "PING 198.18.12.12 (198.18.12.12): 8972 data bytes"
    assert lines[1].startswith("8980 bytes from 198.18.12.12: icmp_seq=0 ttl=64 time=")
    assert "--- 198.18.12.12 ping statistics ---" in lines
    assert "2 packets transmitted, 2 packets received, 0% packet loss" in lines
    assert lines[-1].startswith("round-trip min/avg/max = ")
    too_big = cli("vmkping", "-H", "esx01", "-d", "-s", "8972", "-c", "1", "198.18.0.12")
    assert too_big.exit_code == 1
    assert "sendto() failed (Message too long)" in too_big.output
    assert "1 packets transmitted, 0 packets received, 100% packet loss" in too_big.output


def test_stats_and_esxcli_kernel_views(cli: Cli) -> None:
    rows = json.loads(cli("stats", "-H", "esx01", "--json").output)
    names = {(r["kind"], r["name"]) for r in rows}
    assert {("adapter", f"vmk{i}") for i in range(6)} <= names
    assert {("uplink", f"vmnic{i}") for i in range(6)} <= names
    assert all(r["txPackets"] > 0 for r in rows if r["kind"] == "adapter")
    routes = cli("esxcli", "-H", "esx01", "network", "ip", "route", "ipv4", "list", "-N",
                 "vmotion", "--json")
    assert {"Network": "default", "Netmask": "0.0.0.0", "Gateway": "198.18.4.1",
            "Interface": "vmk1", "Source": "MANUAL"} in json.loads(routes.output)
    assert cli("vmkping", "-H", "esx01", "-I", "vmk1", "-c", "1", "198.18.4.12").exit_code == 0
    neighbours = json.loads(cli("esxcli", "-H", "esx01", "network", "ip", "neighbor", "list",
                                "-N", "vmotion", "--json").output)
    assert {n["Vmknic"] for n in neighbours} <= {"vmk1", "vmk2"} and neighbours
    conns = cli("esxcli", "-H", "esx01", "network", "ip", "connection", "list")
    assert conns.exit_code == 0 and conns.output.startswith("Proto  Recv Q  Send Q")
    nics = json.loads(cli("esxcli", "-H", "esx01", "network", "nic", "list", "--json").output)
    assert {n["Link Status"] for n in nics} == {"Up"}


def test_lab_check_fails_where_the_uplinks_are_pulled(cli: Cli) -> None:
    for nic in ("vmnic4", "vmnic5"):
        pulled = cli("esxcli", "-H", "esx03", "network", "nic", "down", "-n", nic)
        assert pulled.exit_code == 0, pulled.output
    try:
        nics = json.loads(cli("esxcli", "-H", "esx03", "network", "nic", "list",
                              "--json").output)
        assert {n["Name"]: n["Link Status"] for n in nics}["vmnic4"] == "Down"
        result = cli("lab", "check", "--json", "--timeout", "0.3")
        assert result.exit_code == 1
        failed = [r for r in json.loads(result.output)["results"] if r["result"] == "FAIL"]
        assert failed and all("esx03" in r["source"] + r["target"] for r in failed)
        assert {r["service"] for r in failed} >= {"vSAN", "FT logging"}
    finally:
        for nic in ("vmnic4", "vmnic5"):
            cli("esxcli", "-H", "esx03", "network", "nic", "up", "-n", nic)
        # Leave the shared lab healthy for the other tests: wait out STP on the restored wires.
        deadline = time.monotonic() + 20
        while cli("lab", "check", "--timeout", "0.3").exit_code != 0:
            assert time.monotonic() < deadline, "lab did not recover after the uplinks came back"
            time.sleep(0.5)


def test_without_a_lab_the_commands_say_so(tmp_path: Path) -> None:
    empty = Cli(tmp_path / "empty.db")
    for args in (("lab", "check"), ("stats",), ("vmkping", "-H", "esx01", "198.18.0.12")):
        result = empty(*args)
        assert result.exit_code == 3 and "No lab is up" in result.output, args
