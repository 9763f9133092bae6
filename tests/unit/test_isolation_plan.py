"""lab check's negative checks (SEC-6), planned: which stack must not reach which target."""

from __future__ import annotations

from pathlib import Path

from vmknet.state import load_file
from vmknet.traffic import isolation

LAB = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"


def test_example_lab_checks_every_other_traffic_type_and_gateway() -> None:
    pairs = isolation.plan(load_file(LAB), "lab")
    mine = {(p.target, p.traffic, p.port) for p in pairs if p.source == "esx01/vmotion"}
    assert ("esx02/vmk0 198.18.0.12", "management", 443) in mine
    assert ("esx03/vmk0 2001:db8:0:10::13", "management", 443) in mine
    assert ("esx02/vmk3 198.18.8.12", "provisioning", 902) in mine
    assert ("gateway 198.18.0.1", "management+FT logging+vSAN", 443) in mine
    assert ("gateway 198.18.8.1", "provisioning", 902) in mine
    # vMotion's own peers and gateways (routed VLAN 40 <-> 41) are not negative checks
    assert not any("vMotion" in t for t, _, _ in mine)
    assert all(p.ns == f"vmkl-lab.{p.source.replace('/', '.')}" for p in pairs)
    assert len(pairs) == 114 and len({(p.source, p.address) for p in pairs}) == 114


def test_a_declared_route_takes_its_pairs_out_of_the_negative_checks() -> None:
    dc = load_file(LAB)
    before = isolation.plan(dc, "lab")
    dc.physical.routers["rtr01"].routes = [("management", "vSphereProvisioning")]
    after = isolation.plan(dc, "lab")
    gone = {(p.source, p.target) for p in before} - {(p.source, p.target) for p in after}
    assert ("esx01/defaultTcpipStack", "esx02/vmk3 198.18.8.12") in gone
    assert ("esx01/vSphereProvisioning", "gateway 198.18.0.1") in gone
    assert not any("vmotion" in s for s, _ in gone)


def test_a_plain_router_routes_everything_so_nothing_behind_it_is_checked() -> None:
    dc = load_file(LAB)
    for iface in dc.physical.routers["rtr01"].interfaces:
        iface.traffic = None
    targets = {p.address for p in isolation.plan(dc, "lab")}
    # Only what no router joins is left: vSAN and FT logging (VLANs 50, 60) seen from the
    # vMotion and provisioning stacks.
    assert targets == {f"198.18.{net}.{h}" for net in (12, 16) for h in (11, 12, 13)}
