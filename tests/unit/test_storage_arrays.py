"""Storage arrays in the desired state (STO-6), their names and their rendering (no kernel)."""

from __future__ import annotations

import json
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from vmknet.cli.main import main
from vmknet.dataplane import naming
from vmknet.dataplane.apply import apply
from vmknet.dataplane.memory import MemoryBackend
from vmknet.dataplane.plan import plan
from vmknet.dataplane.render import render, render_index
from vmknet.errors import InvalidArgument
from vmknet.model import PhysicalNetwork, StorageArray
from vmknet.state import load_file
from vmknet.storage import tgt
from vmknet.storage.arrays import arrays_dir, backing_file, storage_ports

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "iscsi-lab.yaml"
IQN = "iqn.2026-11.com.example:array01.ds01"


def _array(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "interfaces": [{"vlan": 30, "addresses": ["198.18.30.100/24"]}],
        "iscsi": {"targets": [{"iqn": IQN, "luns": [{"id": 1, "size": "256MiB"}]}]},
    }
    base.update(over)
    return base


def _refused(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        PhysicalNetwork.model_validate(data)
    errors = caught.value.errors()
    assert len(errors) == 1
    message = str(errors[0]["msg"])
    assert "STO-6" in message and "\n" not in message
    return message


def test_the_example_reads_back_with_sizes_in_bytes() -> None:
    array = load_file(EXAMPLE).physical.storage_arrays["array01"]
    assert array.addresses == [IPv4Interface("198.18.30.100/24")]
    assert array.iqns == [IQN]
    assert array.iscsi is not None
    assert [(lun.id, int(lun.size)) for lun in array.iscsi.targets[0].luns] == [
        (1, 256 << 20), (2, 64 << 20)]
    again = StorageArray.model_validate(array.model_dump(by_alias=True))
    assert again == array


@pytest.mark.parametrize(("array", "words"), [
    (_array(interfaces=[{"vlan": 30, "addresses": ["192.0.2.5/24"]}]), "not in 198.18.0.0/15"),
    (_array(interfaces=[{"vlan": 30, "addresses": ["198.18.30.0/24"]}]), "network or broadcast"),
    (_array(interfaces=[{"vlan": 30, "addresses": ["198.18.30.5/24"]},
                        {"vlan": 31, "addresses": ["198.18.30.6/24"]}]), "own subnet"),
    (_array(iscsi={"targets": [{"iqn": "IQN.2026-11.Example", "luns": [{"id": 1,
                                                                       "size": "1MiB"}]}]}),
     "not an iSCSI qualified name"),
    (_array(iscsi={"targets": [{"iqn": IQN, "luns": [{"id": 1, "size": 1000}]}]}),
     "multiple of 512"),
    (_array(iscsi={"targets": [{"iqn": IQN, "luns": [{"id": 1, "size": "128GiB"}]}]}),
     "1MiB to 64GiB"),
    (_array(iscsi={"targets": [{"iqn": IQN, "luns": [{"id": 1, "size": "1MiB"},
                                                    {"id": 1, "size": "2MiB"}]}]}),
     "LUN 1 is declared twice"),
    (_array(iscsi={"targets": [{"iqn": IQN, "luns": [{"id": 1, "size": "1MiB"}]},
                               {"iqn": IQN, "luns": [{"id": 1, "size": "1MiB"}]}]}),
     "declared twice"),
])
def test_refusals_are_one_line_naming_sto_6(array: dict[str, Any], words: str) -> None:
    assert words in _refused({"storageArrays": {"a1": array}})


def test_lun_0_is_the_targets_controller() -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        PhysicalNetwork.model_validate({"storageArrays": {"a1": _array(iscsi={"targets": [
            {"iqn": IQN, "luns": [{"id": 0, "size": "1MiB"}]}]})}})


def test_an_array_address_is_nobody_elses_and_an_iqn_one_arrays() -> None:
    router = {"interfaces": [{"vlan": 30, "addresses": ["198.18.30.100/24"]}]}
    assert "also router r1's" in _refused({"routers": {"r1": router},
                                           "storageArrays": {"a1": _array()}})
    controller = {"vlan": 30, "address": "198.18.30.100/24"}
    assert "also the controller's" in _refused({"controller": controller,
                                                "storageArrays": {"a1": _array()}})
    second = _array(interfaces=[{"vlan": 30, "addresses": ["198.18.30.101/24"]}])
    assert "also array a1's" in _refused({"storageArrays": {"a1": _array(), "a2": second}})
    twice = _array(interfaces=[{"vlan": 30, "addresses": ["198.18.30.100/24",
                                                          "198.18.30.100/25"]}])
    assert "declared twice" in _refused({"storageArrays": {"a1": twice}})


def test_an_array_name_cannot_leave_its_directory() -> None:
    with pytest.raises(ValidationError):
        PhysicalNetwork.model_validate({"storageArrays": {"../x": _array()}})
    with pytest.raises(ValidationError):
        PhysicalNetwork.model_validate({"storageArrays": {"a.b": _array()}})


def test_validate_prints_one_coded_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("physical:\n  storageArrays:\n    a1:\n      interfaces:\n"
                   "        - {vlan: 30, addresses: [203.0.113.5/24]}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(bad)])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error [InvalidArgument]:")
    assert "STO-6" in lines[0]


def test_render_puts_the_array_in_its_namespace_plugged_into_its_segment() -> None:
    dc = load_file(EXAMPLE)
    state = render(dc, "lab")
    ns = naming.array_ns("lab", "array01")
    assert ns == "vmkl-lab._sto.array01"
    assert ns in state.namespaces
    assert state.sysctls[(ns, "net.ipv4.ip_forward")] == "0"
    inner = state.links[(ns, "s0")]
    outer = state.links[(naming.pnet_ns("lab"), "array01.0")]
    assert inner.peer == outer.key and outer.master == "vl30"
    assert [a.cidr for a in state.addresses if a.ns == ns] == ["198.18.30.100/24"]
    index = render_index(dc, "lab")
    assert index[outer.key].role == "array-port" and index[outer.key].array == "array01"
    assert naming.parse_ns(ns, "lab", dc.hosts) == naming.NsInfo("array", array="array01")
    assert naming.parse_ns(ns, "lab") == naming.NsInfo("array", array="array01")


def test_the_rendered_array_applies_and_reads_back_without_drift() -> None:
    desired = render(load_file(EXAMPLE), "lab")
    backend = MemoryBackend()
    first = apply(backend, desired, "vmkl-lab.")
    assert first.changed
    assert naming.array_ns("lab", "array01") in backend.read("vmkl-lab.").namespaces
    assert plan(backend.read("vmkl-lab."), desired) == []


def test_storage_ports_are_the_arrays_and_the_bound_adapters_wires() -> None:
    ports = storage_ports(load_file(EXAMPLE), "lab")
    pnet = naming.pnet_ns("lab")
    assert (pnet, "array01.0") in ports
    assert ("vmkl-lab.esx01", "vmk2-n2") in ports and ("vmkl-lab.esx02", "vmk3-n3") in ports
    assert not any(port.startswith(("vmk0", "vmk1")) for _, port in ports)


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}", fullmatch=True),
       st.integers(min_value=0, max_value=7))
def test_array_ports_fit_and_never_look_like_other_pnet_ports(name: str, index: int) -> None:
    port = naming.array_port(name, index)
    assert naming.fits(port) and "." in port
    assert naming.array_port(name, index) == port  # stable


@given(st.text(min_size=1, max_size=40), st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True))
def test_control_ports_are_in_tgtds_range_and_never_the_system_ones(lab: str, array: str
                                                                    ) -> None:
    port = tgt.control_port(lab, array)
    assert tgt.PORT_BASE <= port < tgt.PORT_BASE + tgt.PORT_SPAN <= 32768


def test_backing_files_stay_under_the_lab() -> None:
    assert backing_file("lab", "array01", 1, 2) == arrays_dir("lab") / "array01" / "t1-lun2.img"
    with pytest.raises(InvalidArgument) as caught:
        backing_file("lab", "..", 1, 1)
    assert caught.value.code == "SEC-5"


def test_storage_core_without_a_lab_is_one_line(tmp_path: Path) -> None:
    store = ["--store", str(tmp_path / "inventory.db")]
    runner = CliRunner()
    applied = runner.invoke(main, [*store, "apply", str(EXAMPLE), "--yes"])
    assert applied.exit_code == 0, applied.output
    for words in (["adapter", "rescan", "-A", "vmhba64"], ["path", "list"], ["device", "list"]):
        result = runner.invoke(main, [*store, "esxcli", "-H", "esx01", "storage", "core",
                                      *words])
        assert result.exit_code != 0
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert "lab" in result.output
    listed = runner.invoke(main, [*store, "esxcli", "-H", "esx01", "storage", "core", "adapter",
                                  "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(a["HBA Name"], a["Driver"]) for a in json.loads(listed.output)] == [
        ("vmhba64", "iscsi_vmk")]
    wrong = runner.invoke(main, [*store, "esxcli", "-H", "esx01", "storage", "core", "adapter",
                                 "rescan", "-A", "vmhba65"])
    assert wrong.exit_code != 0 and "Adapter vmhba65 not found" in wrong.output
