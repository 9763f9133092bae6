"""The `vmknet` command end to end through CliRunner, against a store in a temporary directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from vmknet.cli.main import main
from vmknet.cli.output import plain_table
from vmknet.inventory import Inventory
from vmknet.model import Service
from vmknet.ops import interface, vswitch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DATACENTER = EXAMPLES / "datacenter.yaml"
REFUSED = EXAMPLES / "ex3-refused.yaml"
WARNINGS = EXAMPLES / "warnings.yaml"

Vmknet = Callable[..., Result]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store" / "inventory.db"


@pytest.fixture
def vmknet(store: Path) -> Vmknet:
    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(main, ["--store", str(store), *args], input=input)

    return run


def snapshot(store: Path) -> dict[str, bytes]:
    """Every file of the store's directory (a database may keep a journal beside it)."""
    return {p.name: p.read_bytes() for p in sorted(store.parent.iterdir()) if p.is_file()}


def test_validate_clean_file(vmknet: Vmknet) -> None:
    result = vmknet("validate", str(DATACENTER))
    assert result.exit_code == 0, result.output
    assert "valid (3 hosts, 1 clusters, 1 distributed switches)" in result.stdout


def test_validate_prints_code_and_path_and_exits_by_rule(vmknet: Vmknet) -> None:
    result = vmknet("validate", str(REFUSED))
    assert result.exit_code == 1
    assert "Error [EX-3]: hosts/esx01/vmknics/vmk0: Cannot enable VMotion on vmk0" in result.stderr
    assert "(vmk1)" in result.stderr
    assert result.stdout == ""


def test_validate_schema_error_is_invalid_argument(vmknet: Vmknet, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("hosts:\n  esx01:\n    vmknics:\n      vmk0: {mtu: 99999}\n")
    result = vmknet("validate", str(bad))
    assert result.exit_code == 2
    assert result.stderr.startswith("Error [InvalidArgument]:")


def test_plan_apply_show_roundtrip(vmknet: Vmknet, tmp_path: Path) -> None:
    planned = vmknet("plan", str(DATACENTER))
    assert planned.exit_code == 0, planned.output
    assert "esx01" in planned.stdout and "No changes." not in planned.stdout
    applied = vmknet("apply", str(DATACENTER), "--yes")
    assert applied.exit_code == 0, applied.output
    assert "Applied" in applied.stdout
    assert vmknet("plan", str(DATACENTER)).stdout.strip() == "No changes."
    shown = vmknet("show")
    assert shown.exit_code == 0
    dumped = tmp_path / "shown.yaml"
    dumped.write_text(shown.stdout)
    again = vmknet("apply", str(dumped))  # no --yes needed when nothing changes
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == "No changes."


def test_show_json_is_the_same_document(vmknet: Vmknet) -> None:
    vmknet("apply", str(DATACENTER), "--yes")
    data = json.loads(vmknet("show", "--json").stdout)
    assert sorted(data["hosts"]) == ["esx01", "esx02", "esx03"]


def test_apply_is_all_or_nothing(vmknet: Vmknet, store: Path) -> None:
    assert vmknet("apply", str(DATACENTER), "--yes").exit_code == 0
    before = snapshot(store)
    refused = vmknet("apply", str(REFUSED), "--yes")
    assert refused.exit_code == 1
    assert "Error [EX-3]" in refused.stderr
    assert snapshot(store) == before
    assert vmknet("plan", str(DATACENTER)).stdout.strip() == "No changes."


def test_apply_asks_and_a_no_changes_nothing(vmknet: Vmknet, store: Path) -> None:
    vmknet("host", "add", "esx09")
    before = snapshot(store)
    result = vmknet("apply", str(DATACENTER), input="n\n")
    assert result.exit_code == 1
    assert "Apply these changes?" in result.output
    assert snapshot(store) == before


def test_lint_json_shape(vmknet: Vmknet) -> None:
    result = vmknet("lint", str(WARNINGS), "--json")
    findings = json.loads(result.stdout)
    assert isinstance(findings, list) and findings
    for f in findings:
        assert set(f) == {"rule", "severity", "path", "message", "hint"}
        assert f["severity"] in ("error", "warning", "info")
        assert all(isinstance(v, str) for v in f.values())
    assert {"SVC-6", "SW-7", "REQ-3"} <= {f["rule"] for f in findings}
    assert result.exit_code == (1 if any(f["severity"] == "error" for f in findings) else 0)


def test_lint_table_and_severity_filter(vmknet: Vmknet) -> None:
    table = vmknet("lint", str(WARNINGS))
    header = table.stdout.splitlines()[0].split()
    assert header == ["severity", "rule", "path", "message", "hint"]
    assert "SVC-6" in table.stdout
    only_errors = vmknet("lint", str(WARNINGS), "--severity", "error")
    assert "SVC-6" not in only_errors.stdout


def test_lint_store_without_file(vmknet: Vmknet) -> None:
    vmknet("apply", str(DATACENTER), "--yes")
    result = vmknet("lint")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "No findings."


def test_resolve_table(vmknet: Vmknet) -> None:
    vmknet("apply", str(DATACENTER), "--yes")
    result = vmknet("resolve", "vmotion", "esx01", "esx02")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "VMotion esx01 -> esx02"
    assert lines[1].split()[:3] == ["pair", "source", "vmk"]
    rows = [line.split() for line in lines[3:]]
    assert [r[:6] for r in rows] == [
        ["1/2", "vmk1", "vmotion", "198.18.4.11/24", "vmk1", "198.18.4.12/24"],
        ["2/2", "vmk2", "vmotion", "198.18.4.21/24", "vmk2", "198.18.4.22/24"],
    ]
    assert all(r[6] == "on-link" for r in rows)
    assert "\x1b" not in result.stdout and "━" not in result.stdout  # plain text off a TTY


def test_resolve_json(vmknet: Vmknet) -> None:
    vmknet("apply", str(DATACENTER), "--yes")
    flows = json.loads(vmknet("resolve", "ft", "esx01", "esx03", "--json").stdout)
    assert flows == [{
        "source": {"host": "esx01", "vmknic": "vmk5", "netstack": "defaultTcpipStack",
                   "address": "198.18.16.11/24"},
        "target": {"host": "esx03", "vmknic": "vmk5", "netstack": "defaultTcpipStack",
                   "address": "198.18.16.13/24"},
        "nextHop": None,
        "reason": flows[0]["reason"],
    }]


@pytest.mark.parametrize(("name", "vmk"), [
    ("vmotion", "vmk1"), ("VMotion", "vmk1"), ("provisioning", "vmk3"),
    ("vSphereProvisioning", "vmk3"), ("vsan", "vmk4"), ("VSAN", "vmk4"), ("ft", "vmk5"),
    ("faultToleranceLogging", "vmk5"), ("Management", "vmk0"),
])
def test_resolve_accepts_api_names_tags_and_aliases(vmknet: Vmknet, name: str, vmk: str) -> None:
    vmknet("apply", str(DATACENTER), "--yes")
    result = vmknet("resolve", name, "esx02", "esx03", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["source"]["vmknic"] == vmk


def test_resolve_unknown_service_is_a_usage_error(vmknet: Vmknet) -> None:
    result = vmknet("resolve", "teleport", "esx01", "esx02")
    assert result.exit_code == 2
    assert "unknown service 'teleport'" in result.stderr


def test_resolve_without_addresses_is_no_path(vmknet: Vmknet) -> None:
    vmknet("host", "add", "esx01")
    vmknet("host", "add", "esx02")
    result = vmknet("resolve", "management", "esx01", "esx02")
    assert result.exit_code == 6
    assert result.stderr.startswith("Error [NoPath]:")


def test_host_add_has_sw1_defaults(vmknet: Vmknet, store: Path) -> None:
    result = vmknet("host", "add", "esx01", "--management-ip", "198.18.0.11/24")
    assert result.exit_code == 0, result.output
    host = Inventory.open(store).read().hosts["esx01"]
    assert list(host.nics) == ["vmnic0", "vmnic1", "vmnic2", "vmnic3"]
    assert all(n.speed == 10000 and n.link_up for n in host.nics.values())
    assert host.vswitches["vSwitch0"].uplinks == ["vmnic0"]
    assert "Management Network" in host.vswitches["vSwitch0"].portgroups
    vmk0 = host.vmknics["vmk0"]
    assert (vmk0.netstack, vmk0.services) == ("defaultTcpipStack", [Service.MANAGEMENT])
    assert str(vmk0.ipv4.address) == "198.18.0.11/24"
    listing = vmknet("host", "list").stdout
    assert "esx01" in listing and "vmk0 198.18.0.11/24" in listing


def test_host_add_nics_and_remove(vmknet: Vmknet, store: Path) -> None:
    assert vmknet("host", "add", "esx02", "--nics", "2").exit_code == 0
    assert list(Inventory.open(store).read().hosts["esx02"].nics) == ["vmnic0", "vmnic1"]
    assert vmknet("host", "remove", "esx02").exit_code == 0
    assert Inventory.open(store).read().hosts == {}


def test_cluster_and_dvs_commands(vmknet: Vmknet, store: Path) -> None:
    for args in (["host", "add", "esx01"], ["cluster", "add", "cl01", "--ha", "--vsan"],
                 ["cluster", "host", "add", "cl01", "esx01"],
                 ["dvs", "add", "dvs01", "--mtu", "9000", "--uplinks", "2"],
                 ["dvs", "host", "add", "dvs01", "esx01", "--map",
                  "Uplink 1=vmnic2,Uplink 2=vmnic3"],
                 ["dvs", "portgroup", "add", "dvs01", "vSAN", "--vlan", "50"]):
        result = vmknet(*args)
        assert result.exit_code == 0, (args, result.output)
    dc = Inventory.open(store).read()
    assert (dc.clusters["cl01"].ha, dc.clusters["cl01"].vsan, dc.clusters["cl01"].ft) == (
        True, True, False)
    assert dc.clusters["cl01"].hosts == ["esx01"]
    dvs = dc.distributed_switches["dvs01"]
    assert dvs.mtu == 9000
    assert dvs.hosts["esx01"] == {"Uplink 1": "vmnic2", "Uplink 2": "vmnic3"}
    assert dvs.portgroups["vSAN"].vlan == 50
    assert "cl01" in vmknet("cluster", "list").stdout
    assert "vSAN (VLAN 50)" in vmknet("dvs", "list").stdout


def test_dvs_map_must_be_uplink_equals_vmnic(vmknet: Vmknet) -> None:
    vmknet("host", "add", "esx01")
    vmknet("dvs", "add", "dvs01")
    result = vmknet("dvs", "host", "add", "dvs01", "esx01", "--map", "vmnic2")
    assert result.exit_code == 2
    assert "is not UPLINK=VMNIC" in result.stderr


def test_events_after_ex1(vmknet: Vmknet, store: Path) -> None:
    vmknet("host", "add", "esx01", "--management-ip", "198.18.0.11/24")
    inv = Inventory.open(store)
    inv.run(partial(interface.tag_add, host="esx01", name="vmk0", service=Service.VMOTION))
    inv.run(partial(vswitch.portgroup_add, host="esx01", vswitch="vSwitch0", name="vMotion"))
    inv.run(partial(interface.add, host="esx01", name="vmk1", portgroup="vMotion",
                    netstack="vmotion"))
    result = vmknet("events")
    assert result.exit_code == 0, result.output
    ex1 = [line for line in result.stdout.splitlines() if line.startswith("EX-1")]
    assert len(ex1) == 1 and "hosts/esx01/vmknics/vmk0" in ex1[0]
    listed = json.loads(vmknet("events", "--json", "--limit", "1").stdout)
    assert len(listed) == 1 and set(listed[0]) == {"rule", "path", "message"}


@pytest.mark.parametrize(("args", "code", "prefix"), [
    (["host", "remove", "nope"], 3, "Error [NotFound]:"),
    (["host", "add", "bad name!"], 2, "Error [InvalidArgument]:"),
    (["cluster", "host", "add", "nope", "esx01"], 3, "Error [NotFound]:"),
])
def test_exit_codes(vmknet: Vmknet, args: list[str], code: int, prefix: str) -> None:
    result = vmknet(*args)
    assert result.exit_code == code, result.output
    assert result.stderr.startswith(prefix)


def test_already_exists_exits_4(vmknet: Vmknet) -> None:
    vmknet("host", "add", "esx01")
    result = vmknet("host", "add", "esx01")
    assert result.exit_code == 4
    assert result.stderr == "Error [AlreadyExists]: Host esx01 already exists\n"


def test_store_from_environment(tmp_path: Path) -> None:
    env_store = tmp_path / "env" / "inventory.db"
    runner = CliRunner()
    runner.invoke(main, ["host", "add", "esx01"], env={"VMKNET_STORE": str(env_store)})
    assert "esx01" in Inventory.open(env_store).read().hosts


def test_esxcli_is_mounted() -> None:
    assert "esxcli" in main.commands


def test_plain_table_layout() -> None:
    text = plain_table(["a", "bb"], [["xyz", "1"]], title="T")
    assert text.splitlines() == ["T", "a    bb", "---  --", "xyz  1"]


def test_console_script(store: Path) -> None:
    script = Path(sys.executable).with_name("vmknet")
    env = {**os.environ, "VMKNET_STORE": str(store)}
    env.pop("FORCE_COLOR", None)
    done = subprocess.run([str(script), "validate", str(DATACENTER)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout
    refused = subprocess.run([str(script), "validate", str(REFUSED)], env=env,
                             capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 1
    assert "Error [EX-3]" in refused.stderr


def test_host_status_table_shows_the_realised_and_desired_generation() -> None:
    from vmknet.cli.commands_mgmt import COLUMNS, rows

    base = {"host": "esx01", "condition": "Available", "connected": True,
            "lastHeartbeat": 99.0, "links": [], "agentPid": 7, "error": None}
    got = rows([base | {"desiredGeneration": 41, "realisedGeneration": 40},
                base | {"desiredGeneration": 41, "realisedGeneration": None}, base], 100.0)
    column = COLUMNS.index("realised/desired")
    assert [r[column] for r in got] == ["40/41", "-/41", "-"]
    assert [r[2] for r in got] == ["yes"] * 3  # the columns before it did not move
