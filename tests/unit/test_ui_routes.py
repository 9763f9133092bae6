"""The web UI's routes through FastAPI's TestClient over a temporary store (no lab, no kernel)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from vmknet.api.app import create_app
from vmknet.api.tokens import ROLES, TokenBook
from vmknet.inventory import Inventory
from vmknet.state import load_file
from vmknet.ui import STATIC

SVG_NS = "http://www.w3.org/2000/svg"
LAB = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"


@dataclass
class Ui:
    client: TestClient
    store: Path
    tokens: dict[str, str]

    def as_(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def vlan(self, host: str, vswitch: str, pg: str) -> int:
        return Inventory.open(self.store).read().hosts[host].vswitches[vswitch].portgroups[pg].vlan


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[Ui]:
    store = tmp_path / "inventory.db"
    Inventory.open(store).apply(load_file(LAB))
    book = TokenBook(tmp_path / "controller" / "api-tokens.json")
    tokens = {role: book.create(role, f"test-{role}")[0] for role in ROLES}
    app = create_app(None, lambda: Inventory.open(store), book)
    with TestClient(app) as client:
        yield Ui(client, store, tokens)
    app.state.pending.cancel_all()


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "details"} and body["code"] == code, body
    return body


def test_the_page_and_its_assets_are_served_without_a_token_and_load_nothing_from_elsewhere(
        ui: Ui) -> None:
    page = ui.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    for name in ("app.js", "api.js", "diagram.js", "change.js", "app.css", "favicon.svg"):
        asset = ui.client.get(f"/ui/{name}")
        assert asset.status_code == 200, name
        assert not _remote(asset.text), name
    assert not _remote(page.text)
    problem(ui.client.get("/ui/missing.js"), 404, "NotFound")
    assert "/" not in ui.client.get("/openapi.json").json()["paths"]


def _remote(text: str) -> bool:
    """Any address outside the page's own origin (the SVG namespace is a name, not a fetch)."""
    return bool(re.search(r"(https?:)?//[a-z0-9-]+(\.[a-z0-9-]+)+", text.replace(SVG_NS, "")))


def test_every_static_file_ships_with_the_package() -> None:
    names = {p.name for p in STATIC.iterdir()}
    assert {"index.html", "app.js", "api.js", "diagram.js", "change.js", "app.css"} <= names
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"ui/static/*"' in pyproject


def test_ui_routes_need_a_token_and_the_right_role(ui: Ui) -> None:
    problem(ui.client.get("/api/v1/ui/hosts/esx01/diagram"), 401, "NotAuthenticated")
    problem(ui.client.get("/api/v1/ui/traffic?count=1"), 401, "NotAuthenticated")
    problem(ui.client.post("/api/v1/ui/changes?version=1", json={},
                           headers=ui.as_("read-only")), 403, "NoPermission")
    problem(ui.client.post("/api/v1/ui/changes/abc/confirm", headers=ui.as_("read-only")),
            403, "NoPermission")


def test_diagram_has_standard_and_distributed_switches_with_teaming_and_adapters(ui: Ui) -> None:
    r = ui.client.get("/api/v1/ui/hosts/esx01/diagram", headers=ui.as_("read-only"))
    assert r.status_code == 200
    d = r.json()
    kinds = {s["name"]: s["kind"] for s in d["switches"]}
    assert kinds == {"vSwitch0": "standard", "vSwitch1": "standard", "dvs01": "distributed"}
    vs1 = next(s for s in d["switches"] if s["name"] == "vSwitch1")
    pg = next(p for p in vs1["portgroups"] if p["name"] == "vMotion-A")
    assert pg["vlan"] == 40 and pg["teaming"]["active"] == ["vmnic2"]
    assert pg["teaming"]["standby"] == ["vmnic3"] and pg["teaming"]["unused"] == []
    (vmk1,) = pg["vmknics"]
    assert vmk1 | {"mac": None} == {"name": "vmk1", "addresses": ["198.18.4.11/24"], "mtu": 9000,
                                    "netstack": "vmotion", "services": ["vmotion"],
                                    "enabled": True, "mac": None}
    dvs = next(s for s in d["switches"] if s["name"] == "dvs01")
    assert [(u["name"], u["nic"], u["link"]) for u in dvs["uplinks"]] == [
        ("Uplink 1", "vmnic4", "up"), ("Uplink 2", "vmnic5", "up")]
    problem(ui.client.get("/api/v1/ui/hosts/esx99/diagram", headers=ui.as_("read-only")),
            404, "NotFound")


def test_trace_without_a_lab_predicts_the_first_nic_with_link(ui: Ui) -> None:
    r = ui.client.get("/api/v1/ui/hosts/esx01/vmknics/vmk2/trace", headers=ui.as_("read-only"))
    t = r.json()
    assert (t["switch"], t["portgroup"], t["vlan"], t["measured"]) == (
        "vSwitch1", "vMotion-B", 40, False)
    assert [(h["nic"], h["role"]) for h in t["hops"]] == [("vmnic3", "active"),
                                                          ("vmnic2", "standby")]
    assert t["carrying"] == ["vmnic3"]
    problem(ui.client.get("/api/v1/ui/hosts/esx01/vmknics/vmk99/trace",
                          headers=ui.as_("read-only")), 404, "NotFound")


def _events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def test_traffic_stream_sends_the_asked_number_of_events_on_schedule(ui: Ui) -> None:
    start = time.monotonic()
    with ui.client.stream("GET", "/api/v1/ui/traffic?count=3&interval=0.2",
                          headers=ui.as_("read-only")) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = _events(r.read().decode())
    assert [e["seq"] for e in events] == [0, 1, 2]
    assert 0.35 <= time.monotonic() - start < 3
    assert all(e["measured"] is False and e["adapters"] == {} for e in events)  # no lab
    problem(ui.client.get("/api/v1/ui/traffic?host=esx99&count=1", headers=ui.as_("read-only")),
            404, "NotFound")
    problem(ui.client.get("/api/v1/ui/traffic?interval=0.01", headers=ui.as_("read-only")),
            422, "InvalidRequest")


def _vlan_doc(ui: Ui, vlan: int) -> tuple[dict[str, Any], int]:
    doc = ui.client.get("/api/v1/datacenter", headers=ui.as_("operator")).json()
    doc["hosts"]["esx01"]["vswitches"]["vSwitch1"]["portgroups"]["vMotion-A"]["vlan"] = vlan
    plan = ui.client.post("/api/v1/plan", json=doc, headers=ui.as_("operator")).json()
    assert [c["summary"] for c in plan["changes"]] == [f"vlan 40 -> {vlan}"]
    return doc, plan["version"]


def test_a_confirmed_change_stays(ui: Ui) -> None:
    doc, version = _vlan_doc(ui, 41)
    r = ui.client.post(f"/api/v1/ui/changes?version={version}&timeout=30", json=doc,
                       headers=ui.as_("operator"))
    assert r.status_code == 201, r.text
    change = r.json()["change"]
    assert change["state"] == "waiting" and r.json()["applied"] == 1
    assert ui.vlan("esx01", "vSwitch1", "vMotion-A") == 41
    # a second change while this one waits is refused
    problem(ui.client.post(f"/api/v1/ui/changes?version={change['version']}", json=doc,
                           headers=ui.as_("operator")), 409, "ResourceInUse")
    ok = ui.client.post(f"/api/v1/ui/changes/{change['id']}/confirm", headers=ui.as_("operator"))
    assert ok.json()["state"] == "confirmed"
    assert ui.client.get(f"/api/v1/ui/changes/{change['id']}",
                         headers=ui.as_("read-only")).json()["state"] == "confirmed"
    assert ui.vlan("esx01", "vSwitch1", "vMotion-A") == 41


def test_an_unconfirmed_change_is_reverted_by_the_controller(ui: Ui) -> None:
    doc, version = _vlan_doc(ui, 99)
    r = ui.client.post(f"/api/v1/ui/changes?version={version}&timeout=1", json=doc,
                       headers=ui.as_("operator"))
    change = r.json()["change"]
    assert ui.vlan("esx01", "vSwitch1", "vMotion-A") == 99
    deadline = time.monotonic() + 10
    state = "waiting"
    while state == "waiting" and time.monotonic() < deadline:
        time.sleep(0.1)
        state = ui.client.get(f"/api/v1/ui/changes/{change['id']}",
                              headers=ui.as_("read-only")).json()["state"]
    assert state == "reverted"
    assert ui.vlan("esx01", "vSwitch1", "vMotion-A") == 40
    problem(ui.client.post(f"/api/v1/ui/changes/{change['id']}/confirm",
                           headers=ui.as_("operator")), 409, "ConcurrentModification")


def test_a_change_against_a_stale_version_or_refused_by_the_rules_changes_nothing(ui: Ui) -> None:
    doc, version = _vlan_doc(ui, 41)
    problem(ui.client.post(f"/api/v1/ui/changes?version={version + 5}", json=doc,
                           headers=ui.as_("operator")), 409, "ConcurrentModification")
    doc["hosts"]["esx01"]["vmknics"]["vmk1"]["mtu"] = 100
    problem(ui.client.post(f"/api/v1/ui/changes?version={version}", json=doc,
                           headers=ui.as_("operator")), 400, "InvalidArgument")
    assert ui.vlan("esx01", "vSwitch1", "vMotion-A") == 40
    assert ui.client.app.state.pending.waiting() is None  # type: ignore[attr-defined]
    problem(ui.client.get("/api/v1/ui/changes/nope", headers=ui.as_("read-only")),
            404, "NotFound")


def test_the_event_stream_is_left_out_of_the_openapi_document_the_rest_is_in(ui: Ui) -> None:
    paths = ui.client.get("/openapi.json").json()["paths"]
    assert "/api/v1/ui/traffic" not in paths
    assert {"/api/v1/ui/hosts/{host}/diagram", "/api/v1/ui/hosts/{host}/vmknics/{vmk}/trace",
            "/api/v1/ui/changes", "/api/v1/ui/changes/{change_id}",
            "/api/v1/ui/changes/{change_id}/confirm"} <= set(paths)
