"""The web UI as a person uses it: Debian's headless chromium, driven by selenium, on a real lab.

`lab up` of the example lab (name h16) starts the controller, which serves the
page and the REST API on 127.0.0.1 of the root namespace. The browser logs in
with a token made by the CLI, opens a host, checks the diagram's elements and
their text alternatives, walks every control with Tab, traces an adapter (the
answer must be the kernel's STP state), asks resolve, watches live traffic,
changes a port group's VLAN and confirms it (the kernel moves the adapter's
wires to the new VLAN's segment), then makes a change it does not confirm:
the controller puts the previous configuration back, in the store and the kernel.

Screenshots go to $VMKNET_UI_SHOTS (docs/img for the docs) or the test's tmp dir.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kernelkit import wait_until
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from vmknet.api import files
from vmknet.cli.main import main
from vmknet.dataplane import naming
from vmknet.inventory import Inventory
from vmknet.lab import lifecycle
from vmknet.lab.stp import port_states

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"
LAB = "h16"
VMKNET = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "vmknet")
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@dataclass
class Session:
    url: str
    store: Path
    token: str
    browser: webdriver.Chrome
    shots: Path

    def vlan(self, pg: str) -> int:
        dc = Inventory.open(self.store).read()
        return dc.hosts["esx01"].vswitches["vSwitch1"].portgroups[pg].vlan

    def until(self, script: str, limit: float = 15) -> None:
        ok = wait_until(lambda: bool(self.browser.execute_script(f"return {script}")), limit, 0.1)
        assert ok is not None, f"not within {limit} s: {script}"

    def shot(self, name: str) -> None:
        self.browser.save_screenshot(str(self.shots / f"ui-{name}.png"))


def _browser() -> webdriver.Chrome:
    assert CHROMIUM and DRIVER, "scripts/setup.sh installs chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # --no-sandbox: the suite runs as root, where chromium's sandbox refuses to start
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--no-proxy-server", "--disable-extensions"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    tmp = tmp_path_factory.mktemp("ui")
    store = tmp / "inventory.db"
    inv = Inventory.open(store)
    shots = Path(os.environ.get("VMKNET_UI_SHOTS") or tmp)
    shots.mkdir(parents=True, exist_ok=True)
    browser = None
    try:
        lifecycle.up(inv, EXAMPLE, LAB)
        url = files.served_url(LAB)
        assert url is not None
        made = CliRunner().invoke(main, ["--store", str(store), "api", "token", "create",
                                         "--role", "operator", "--name", "browser"])
        assert made.exit_code == 0, made.output
        browser = _browser()
        browser.set_page_load_timeout(30)
        yield Session(url, store, made.stdout.strip(), browser, shots)
    finally:
        if browser is not None:
            browser.quit()
        lifecycle.down(inv, LAB)


def _login(s: Session) -> None:
    s.browser.get(f"{s.url}/")
    s.until("window.vmknet && window.vmknet.ready")
    s.browser.find_element(By.ID, "token").send_keys("vmk_wrong")
    s.browser.find_element(By.ID, "login").click()
    s.until("document.getElementById('login-error').textContent.includes('NotAuthenticated')")
    field = s.browser.find_element(By.ID, "token")
    field.clear()
    field.send_keys(s.token, Keys.ENTER)
    s.until("document.body.dataset.view === 'datacenter'")


def _svg(s: Session, host: str) -> WebElement:
    return s.browser.find_element(By.CSS_SELECTOR, f"#host-diagram svg[data-host='{host}']")


def _open_host(s: Session, host: str) -> WebElement:
    s.browser.execute_script("document.body.dataset.view = ''")
    if s.browser.current_url == f"{s.url}/#/host/{host}":
        s.browser.refresh()  # the same hash changes nothing: draw the host afresh
    else:
        s.browser.get(f"{s.url}/#/host/{host}")
    s.until(f"document.body.dataset.view === 'host:{host}'")
    return _svg(s, host)


def _ifmaster(ns: str, name: str) -> str | None:
    out = subprocess.run(["ip", "-n", ns, "-j", "link", "show", "dev", name],
                         capture_output=True, text=True, check=True, timeout=10).stdout
    master: str | None = json.loads(out)[0].get("master")
    return master


def _segment_of(vmk: str, nic: str) -> str | None:
    return _ifmaster(naming.pnet_ns(LAB), naming.wire_pnet("esx01", vmk, nic))


def test_datacenter_view_lists_clusters_hosts_switches_and_findings(ui: Session) -> None:
    _login(ui)
    hosts = ui.browser.find_elements(By.CSS_SELECTOR, "#dc-hosts tbody tr")
    assert [r.find_element(By.CSS_SELECTOR, "a").text for r in hosts] == [
        "esx01", "esx02", "esx03"]
    ui.until("[...document.querySelectorAll('#dc-hosts tbody tr td:nth-child(2)')]"
             ".every(td => td.textContent === 'Available')", 30)
    assert ui.browser.find_element(By.CSS_SELECTOR, "#cluster-cl01").text.startswith("cl01")
    assert "dvs01" in ui.browser.find_element(By.ID, "dc-dvs").text
    headings = [h.text for h in ui.browser.find_elements(By.CSS_SELECTOR, "#dc-lint h4")]
    assert [h.split(" ")[0] for h in headings] == ["error", "warning", "info"]
    for a in ui.browser.find_elements(By.CSS_SELECTOR, "#dc-lint a"):  # linked to its object
        assert (a.get_attribute("href") or "").split("#")[1].startswith(("/host/", "/datacenter"))
    ui.shot("datacenter")


def test_host_diagram_shows_switches_port_groups_adapters_and_uplinks(ui: Session) -> None:
    svg = _open_host(ui, "esx01")
    heads = [g.get_attribute("aria-label") or "" for g in
             svg.find_elements(By.CSS_SELECTOR, ".switch-head")]
    assert [h.split(",")[0] for h in heads] == ["Standard switch vSwitch0", "Standard switch "
                                                "vSwitch1", "Distributed switch dvs01"]
    pg = svg.find_element(By.CSS_SELECTOR, ".portgroup[data-pg='vMotion-A']")
    assert "VLAN ID: 40" in pg.text and "active vmnic2" in pg.text and "standby vmnic3" in pg.text
    vmk1 = svg.find_element(By.CSS_SELECTOR, ".vmknic[data-vmk='vmk1']")
    label = vmk1.get_attribute("aria-label") or ""
    assert all(part in label for part in ("198.18.4.11/24", "MTU 9000", "stack vmotion",
                                          "services vmotion"))
    adapters = {v.get_attribute("data-vmk") for v in svg.find_elements(By.CSS_SELECTOR, ".vmknic")}
    assert adapters == {f"vmk{i}" for i in range(6)}
    uplinks = [u.get_attribute("aria-label") or "" for u in
               svg.find_elements(By.CSS_SELECTOR, ".uplink")]
    assert any(u.startswith("Physical adapter Uplink 1 (vmnic4): link up") for u in uplinks)
    standby = svg.find_elements(By.CSS_SELECTOR, ".team-standby[data-pg='vMotion-A']")
    assert [p.get_attribute("data-uplink") for p in standby] == ["vmnic3"]
    # text alternatives: every control of the diagram has an aria-label and a <title>
    controls = svg.find_elements(By.CSS_SELECTOR, "[role='button']")
    assert len(controls) == 3 + 6 + 6  # switches, port groups, adapters
    for c in controls:
        assert c.get_attribute("aria-label") and c.get_attribute("tabindex") == "0"
        assert c.find_element(By.CSS_SELECTOR, ":scope > title").get_attribute("textContent")
    assert ui.browser.execute_script("return +arguments[0].dataset.renderedMs", svg) < 1000
    ui.shot("host")


def test_every_control_is_reachable_with_tab(ui: Session) -> None:
    svg = _open_host(ui, "esx01")
    wanted = ui.browser.execute_script("""
        const sel = 'a[href], button, input, select, [tabindex="0"]';
        return [...document.querySelectorAll(sel)].filter(e => !e.closest('[hidden]') &&
            !e.disabled && e.getClientRects().length).length""")
    ui.browser.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    body = ui.browser.find_element(By.TAG_NAME, "body")
    body.click()
    reached = set()
    for _ in range(wanted + 10):
        ui.browser.switch_to.active_element.send_keys(Keys.TAB)
        reached.add(ui.browser.execute_script("""
            const e = document.activeElement;
            return e.id || e.getAttribute('data-vmk') || e.getAttribute('data-pg') ||
                   e.getAttribute('data-switch') || e.getAttribute('href') ||
                   e.outerHTML.slice(0, 60)"""))
    for needed in ("nav-datacenter", "nav-resolve", "nav-traffic", "host-pick", "logout",
                   "vmk0", "vmk5", "vMotion-A", "vSwitch1", "dvs01"):
        assert needed in reached, (needed, sorted(reached))
    assert len(reached) >= wanted
    del svg


def test_trace_shows_the_nic_the_kernel_forwards_on(ui: Session) -> None:
    svg = _open_host(ui, "esx01")
    vmk1 = svg.find_element(By.CSS_SELECTOR, ".vmknic[data-vmk='vmk1']")
    ui.browser.execute_script("arguments[0].focus()", vmk1)
    ui.browser.switch_to.active_element.send_keys(Keys.ENTER)  # the keyboard works as a click
    ui.until("document.getElementById('trace-basis')")
    hops = ui.browser.find_elements(By.CSS_SELECTOR, "#trace-hops li")
    assert [h.get_attribute("data-nic") for h in hops] == ["vmnic2", "vmnic3"]
    states = port_states(naming.host_ns(LAB, "esx01"))
    forwarding = [nic for nic in ("vmnic2", "vmnic3")
                  if states.get(naming.wire_host("vmk1", nic, [f"vmnic{i}" for i in range(6)]))
                  == "forwarding"]
    carrying = [h.get_attribute("data-nic") for h in hops
                if "carrying" in (h.get_attribute("class") or "")]
    assert carrying == forwarding == ["vmnic2"]
    assert "kernel's STP port states" in ui.browser.find_element(By.ID, "trace-basis").text
    assert svg.find_elements(By.CSS_SELECTOR, ".team.carrying[data-pg='vMotion-A']")
    ui.shot("trace")


def _rest(s: Session, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{s.url}{path}", data=data, method=method, headers={
        "Authorization": f"Bearer {s.token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as r:
        return json.loads(r.read())


def _set_link(s: Session, nic: str, link: str) -> None:
    doc = _rest(s, "GET", "/api/v1/datacenter")
    doc["hosts"]["esx01"]["nics"][nic]["link"] = link
    plan = _rest(s, "POST", "/api/v1/plan", doc)
    _rest(s, "POST", f"/api/v1/apply?version={plan['version']}", doc)


def test_trace_follows_a_failover_when_the_active_nics_link_goes_down(ui: Session) -> None:
    _set_link(ui, "vmnic2", "down")  # the cable of vmk1's active uplink is pulled
    try:
        def moved() -> bool:
            t = _rest(ui, "GET", "/api/v1/ui/hosts/esx01/vmknics/vmk1/trace")
            return bool(t["carrying"] == ["vmnic3"])

        assert wait_until(moved, 40, step=0.25) is not None  # STP moves to the standby wire
        svg = _open_host(ui, "esx01")
        svg.find_element(By.CSS_SELECTOR, ".vmknic[data-vmk='vmk1'] .vmk-name").click()
        ui.until("document.getElementById('trace-basis')")
        hops = {h.get_attribute("data-nic"): h.text
                for h in ui.browser.find_elements(By.CSS_SELECTOR, "#trace-hops li")}
        assert "link down" in hops["vmnic2"] and "carrying it now" not in hops["vmnic2"]
        assert "STP forwarding" in hops["vmnic3"] and "carrying it now" in hops["vmnic3"]
        assert "link-down" in (svg.find_element(
            By.CSS_SELECTOR, ".uplink[data-nic='vmnic2']").get_attribute("class") or "")
        ui.shot("failover")
    finally:
        _set_link(ui, "vmnic2", "up")
    assert wait_until(lambda: _rest(ui, "GET", "/api/v1/ui/hosts/esx01/vmknics/vmk1/trace")[
        "carrying"] == ["vmnic2"], 40, step=0.25) is not None  # failback (teaming default)


def test_resolve_highlights_the_adapter_pairs_in_both_hosts(ui: Session) -> None:
    ui.browser.get(f"{ui.url}/#/resolve")
    ui.until("document.body.dataset.view === 'resolve'")
    Select(ui.browser.find_element(By.ID, "resolve-service")).select_by_value("vmotion")
    Select(ui.browser.find_element(By.ID, "resolve-source")).select_by_value("esx01")
    Select(ui.browser.find_element(By.ID, "resolve-target")).select_by_value("esx02")
    ui.browser.find_element(By.ID, "resolve-go").click()
    ui.until("document.querySelectorAll('#resolve-flows tr.flow').length === 2")
    flows = ui.browser.find_elements(By.CSS_SELECTOR, "#resolve-flows tr.flow")
    assert "PATH-1" in flows[0].text and "multi-NIC vMotion" in flows[0].text
    for side in ("resolve-left", "resolve-right"):
        picked = ui.browser.find_elements(By.CSS_SELECTOR, f"#{side} .vmknic.selected")
        assert sorted(p.get_attribute("data-vmk") or "" for p in picked) == ["vmk1", "vmk2"]
    ui.shot("resolve")


def test_live_traffic_reads_the_labs_counters_every_second(ui: Session) -> None:
    ui.browser.get(f"{ui.url}/#/traffic")
    ui.until("+document.body.dataset.trafficSeq >= 3", 20)
    status = ui.browser.find_element(By.ID, "traffic-status").text
    assert "the lab's kernel counters" in status
    rows = ui.browser.find_elements(By.CSS_SELECTOR, "#traffic-adapters tbody tr")
    assert len(rows) == 18  # 6 adapters on each of 3 hosts
    services = ui.browser.find_element(By.ID, "traffic-services").text
    assert "management" in services and "vmotion" in services
    event = ui.browser.execute_script("return window.vmknet.lastEvent")
    assert 0 <= event["received"] - event["sent"] < 1.0
    ui.shot("traffic")


def test_a_vmotion_task_shows_in_the_traffic_view_until_it_ends(ui: Session) -> None:
    made = subprocess.run([VMKNET, "--store", str(ui.store), "vm", "create", "web01", "-H",
                           "esx01", "--memory", "64MiB", "--dirty-rate", "2MB/s"],
                          capture_output=True, text=True, timeout=180)
    assert made.returncode == 0, made.stderr
    ui.browser.get(f"{ui.url}/#/traffic")
    ui.until("document.body.dataset.view === 'traffic'")
    task = _rest(ui, "POST", "/api/v1/vms/web01/vmotion", {"target": "esx02"})
    row = "document.querySelector('#traffic-tasks tr.task[data-kind=vmotion]')"
    ui.until(row, 30)
    ui.until(f"{row}.classList.contains('success')", 180)
    text = ui.browser.find_element(By.CSS_SELECTOR, "#traffic-tasks tr.task").text
    assert f"vmotion {task['id']}" in text and "vms/web01" in text and "success" in text
    ui.until("[...document.querySelectorAll('#traffic-vms tbody tr')].some(r => "
             "r.textContent.startsWith('web01esx02'))", 10)
    ui.shot("tasks")


def _change_vlan(ui: Session, vlan: int, timeout: int) -> None:
    svg = _open_host(ui, "esx01")
    # its name: the middle of the port group's box is its adapter's box (a button of its own)
    svg.find_element(By.CSS_SELECTOR, ".portgroup[data-pg='vMotion-A'] .pg-name").click()
    field = ui.browser.find_element(By.ID, "edit-vlan")
    field.clear()
    field.send_keys(str(vlan))
    seconds = ui.browser.find_element(By.ID, "edit-timeout")
    seconds.clear()
    seconds.send_keys(str(timeout))
    ui.browser.find_element(By.ID, "edit-plan").click()
    ui.until("!document.getElementById('plan').hidden")
    plan = ui.browser.find_element(By.ID, "plan-changes").text
    assert "hosts/esx01/vswitches/vSwitch1/portgroups/vMotion-A" in plan
    ui.browser.find_element(By.ID, "plan-apply").click()
    ui.until("document.body.dataset.changeState === 'waiting'", 60)


def test_a_vlan_change_confirmed_in_the_page_stays(ui: Session) -> None:
    assert _segment_of("vmk1", "vmnic2") == naming.segment_bridge(40)
    _change_vlan(ui, 41, 60)
    assert ui.vlan("vMotion-A") == 41
    assert _segment_of("vmk1", "vmnic2") == naming.segment_bridge(41)
    ui.shot("countdown")
    ui.browser.find_element(By.ID, "keep").click()
    ui.until("document.body.dataset.changeState === 'confirmed'")
    assert "Kept" in ui.browser.find_element(By.ID, "edit-result").text
    assert ui.vlan("vMotion-A") == 41


def test_a_change_nobody_confirms_is_rolled_back_by_the_controller(ui: Session) -> None:
    _change_vlan(ui, 99, 6)  # vMotion-A onto a VLAN with no peer
    assert ui.vlan("vMotion-A") == 99
    assert _segment_of("vmk1", "vmnic2") == naming.segment_bridge(99)
    # The change "cut the browser off": it loses the controller (DevTools' offline mode), so
    # it cannot confirm; the page says so, the controller reverts by itself.
    ui.browser.set_network_conditions(
        offline=True, latency=0, download_throughput=-1, upload_throughput=-1)
    try:
        ui.until("document.getElementById('countdown-text').textContent"
                 ".includes('does not answer')", 10)
        assert wait_until(lambda: ui.vlan("vMotion-A") == 41, 60, step=0.2) is not None
    finally:
        ui.browser.set_network_conditions(
            offline=False, latency=0, download_throughput=-1, upload_throughput=-1)
    ui.until("document.body.dataset.changeState === 'reverted'", 30)
    assert "previous configuration is back" in ui.browser.find_element(By.ID, "edit-result").text
    assert ui.vlan("vMotion-A") == 41  # the document before this change, confirmed earlier
    assert _segment_of("vmk1", "vmnic2") == naming.segment_bridge(41)


def test_a_service_tag_added_in_the_page_shows_as_a_lint_finding_linked_to_its_adapter(
        ui: Session) -> None:
    svg = _open_host(ui, "esx01")
    svg.find_element(By.CSS_SELECTOR, ".vmknic[data-vmk='vmk0'] .vmk-name").click()
    ui.until("document.getElementById('edit-svc-vSphereBackupNFC')")
    ui.browser.find_element(By.ID, "edit-svc-vSphereBackupNFC").click()
    ui.browser.find_element(By.ID, "edit-plan").click()
    ui.until("!document.getElementById('plan').hidden")
    assert "hosts/esx01/vmknics/vmk0" in ui.browser.find_element(By.ID, "plan-changes").text
    ui.browser.find_element(By.ID, "plan-apply").click()
    ui.until("document.body.dataset.changeState === 'waiting'", 60)
    ui.browser.find_element(By.ID, "keep").click()
    ui.until("document.body.dataset.changeState === 'confirmed'")
    services = Inventory.open(ui.store).read().hosts["esx01"].vmknics["vmk0"].services
    assert [str(s) for s in services] == ["management", "vSphereBackupNFC"]
    # SVC-6 (one traffic type per adapter) now warns; the finding links to the adapter
    ui.browser.get(f"{ui.url}/#/datacenter")
    ui.until("document.body.dataset.view === 'datacenter'")
    link = ui.browser.find_element(By.CSS_SELECTOR, "#dc-lint ul.warning a")
    assert link.text == "SVC-6 hosts/esx01/vmknics/vmk0"
    link.click()
    ui.until("document.body.dataset.view === 'host:esx01'")
    focused = ui.browser.switch_to.active_element
    assert focused.get_attribute("data-vmk") == "vmk0"
    assert "focus" in (focused.get_attribute("class") or "")
