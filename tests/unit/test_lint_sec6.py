"""SEC-6 lint: a router that forwards management to vMotion or provisioning is flagged."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmknet.errors import VmknetError
from vmknet.model import Datacenter
from vmknet.rules.lint import Finding, lint
from vmknet.state import load_file, loads

LAB = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"


def sec6(dc: Datacenter) -> list[Finding]:
    return [f for f in lint(dc) if f.rule == "SEC-6"]


def test_sec6_lab_example_routes_only_vmotion_and_is_clean() -> None:
    assert sec6(load_file(LAB)) == []


def test_sec6_declared_route_to_management_warns_once() -> None:
    dc = load_file(LAB)
    dc.physical.routers["rtr01"].routes = [("management", "vSphereProvisioning")]
    [f] = sec6(dc)
    assert (f.severity, f.path) == ("warning", "physical/routers/rtr01/interfaces/1")
    assert "forwards provisioning (VLAN 20" in f.message
    assert "routes [[management, vSphereProvisioning]]" in f.message
    assert f.hint.startswith("Remove the route [management, vSphereProvisioning] from rtr01")


def test_sec6_plain_router_without_traffic_types_warns_per_network() -> None:
    dc = load_file(LAB)
    for iface in dc.physical.routers["rtr01"].interfaces:
        iface.traffic = None
    found = sec6(dc)
    assert [f.path.rsplit("/", 1)[1] for f in found] == ["1", "2", "3"]
    assert all("no traffic types" in f.message for f in found)
    assert "forwards vMotion (VLAN 41: esx03/vmk1, esx03/vmk2)" in found[2].message


def test_sec6_route_between_vmotion_and_provisioning_is_not_management() -> None:
    dc = load_file(LAB)
    dc.physical.routers["rtr01"].routes = [("vmotion", "vSphereProvisioning")]
    assert sec6(dc) == []


def test_sec6_mislabelled_interface_is_judged_by_its_adapters() -> None:
    # Labels say "vmotion" on the management network: the router now joins them.
    dc = load_file(LAB)
    dc.physical.routers["rtr01"].interfaces[0].traffic = "vmotion"
    assert {f.path for f in sec6(dc)} == {"physical/routers/rtr01/interfaces/2",
                                          "physical/routers/rtr01/interfaces/3"}


def test_route_must_name_a_traffic_type_of_the_router() -> None:
    text = LAB.read_text().replace(
        "        - {vlan: 41, traffic: vmotion, addresses: [198.18.5.1/24]}\n",
        "        - {vlan: 41, traffic: vmotion, addresses: [198.18.5.1/24]}\n"
        "      routes: [[management, vmotoin]]\n")
    with pytest.raises(VmknetError, match="no interface of this router has traffic 'vmotoin'"):
        loads(text, "lab.yaml")
