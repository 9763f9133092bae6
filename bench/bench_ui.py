"""Web UI benchmark: page load, host view and datacenter view render, SSE update latency.

    python bench/bench_ui.py              # 20 host renders, 20 traffic events
    python bench/bench_ui.py --smoke      # 3 and 3, a few seconds, what CI runs
    python bench/bench_ui.py --screenshot docs/img/ui-host-32pg.png

The issue's sizes: a host with 32 port groups and 16 VMkernel adapters (the
vSphere diagram's maximum is 32 port groups by 32 hosts) in a datacenter of
32 hosts. The REST API (the controller's FastAPI app, uvicorn on 127.0.0.1,
the real routes and auth) serves a temporary store holding that datacenter;
Debian's headless chromium, driven by selenium, loads the page, logs in with
a token and reports its own timings (performance.now()):

1. page load: navigation start until the first view (the datacenter) is drawn;
2. host view: route change until the diagram is drawn (JSON fetched, SVG built),
   median and max over --renders, against the bare fetch of the same JSON
   from the page (the floor: the network and the server, no drawing); aim < 1 s;
3. datacenter view with 32 hosts: fetch of datacenter, lint, host status + tables;
4. SSE: for each of --events traffic events, the time from the server's stamp
   to the page's handler (one machine, one clock), and the spacing of events
   against the 1 s interval. There is no lab here, so the events carry no
   counters: what is measured is the stream itself (the kernel read per event is
   a few ms per host: see `vmknet traffic stats`).
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from vmknet.api.app import create_app
from vmknet.api.serve import RestServer
from vmknet.api.tokens import TokenBook
from vmknet.inventory import Inventory
from vmknet.model import Datacenter

HOSTS, PORTGROUPS, ADAPTERS = 32, 32, 16


def datacenter(hosts: int = HOSTS, portgroups: int = PORTGROUPS,
               adapters: int = ADAPTERS) -> Datacenter:
    """Every host alike: vSwitch0 with `portgroups` port groups (VLAN 100+), `adapters`
    adapters on the first ones, each adapter in its own 198.18.<i>.0/24 subnet."""
    doc: dict[str, Any] = {"clusters": {"cl01": {"ha": True, "hosts": []}}, "hosts": {}}
    for h in range(hosts):
        name = f"esx{h + 1:02d}"
        doc["clusters"]["cl01"]["hosts"].append(name)
        pgs = {f"PG-{p:02d}": {"vlan": 100 + p} for p in range(portgroups)}
        vmks = {f"vmk{i}": {"portgroup": f"PG-{i:02d}",
                            "ipv4": {"type": "static", "address": f"198.18.{i}.{h + 10}/24"},
                            "services": ["management"] if i == 0 else []}
                for i in range(adapters)}
        doc["hosts"][name] = {
            "nics": {f"vmnic{n}": {} for n in range(4)},
            "vswitches": {"vSwitch0": {"uplinks": ["vmnic0", "vmnic1", "vmnic2", "vmnic3"],
                                       "portgroups": pgs}},
            "vmknics": vmks}
    return Datacenter.model_validate(doc)


def browser() -> WebDriver:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        sys.exit("bench_ui: needs chromium and chromium-driver (scripts/setup.sh installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--no-proxy-server"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def wait(drv: WebDriver, script: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not drv.execute_script(f"return {script}"):
        if time.monotonic() > deadline:
            raise SystemExit(f"bench_ui: not within {limit} s: {script}")
        time.sleep(0.02)


def serve(folder: Path) -> tuple[RestServer, str, str]:
    store = folder / "inventory.db"
    Inventory.open(store).apply(datacenter())
    book = TokenBook(folder / "controller" / "api-tokens.json")
    token = book.create("read-only", "bench")[0]
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = RestServer(create_app(None, lambda: Inventory.open(store), book), [sock])
    server.start()
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}", token


def host_renders(drv: WebDriver, url: str, count: int) -> tuple[list[float], list[float]]:
    renders, fetches = [], []
    for i in range(count):
        host = f"esx{i % HOSTS + 1:02d}"
        drv.get(f"{url}/#/host/{host}") if i == 0 else drv.execute_script(
            f"location.hash = '#/host/{host}'")
        wait(drv, f"document.body.dataset.view === 'host:{host}'")
        renders.append(float(drv.execute_script("return window.vmknet.timings.host")))
        fetches.append(float(drv.execute_async_script("""
            const done = arguments[arguments.length - 1], t = performance.now();
            fetch(arguments[0], {headers: {Authorization: 'Bearer ' +
                sessionStorage.getItem('vmknet.token')}}).then(r => r.json())
              .then(() => done(performance.now() - t));""",
            f"/api/v1/ui/hosts/{host}/diagram")))
    return renders, fetches


def sse(drv: WebDriver, events: int) -> tuple[list[float], list[float]]:
    drv.execute_script("location.hash = '#/traffic'")
    seen: dict[int, tuple[float, float]] = {}
    deadline = time.monotonic() + events * 1.0 + 15
    while len(seen) < events + 1 and time.monotonic() < deadline:
        last = drv.execute_script("return window.vmknet.lastEvent")
        if last is not None:
            seen[int(last["seq"])] = (float(last["sent"]), float(last["received"]))
        time.sleep(0.05)
    stamps = [seen[k] for k in sorted(seen)][1:]  # the first event may wait for the page
    latency = [(received - sent) * 1000 for sent, received in stamps]
    spacing = [(b[1] - a[1]) * 1000 for a, b in itertools.pairwise(stamps)]
    return latency, spacing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="3 renders and 3 events (CI)")
    parser.add_argument("--renders", type=int, default=20)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--screenshot", type=Path, help="save the 32-port-group host view here")
    args = parser.parse_args()
    renders, events = (3, 3) if args.smoke else (args.renders, args.events)
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        server, url, token = serve(Path(tmp))
        drv = browser()
        try:
            started = time.monotonic()
            drv.get(f"{url}/")
            wait(drv, "window.vmknet && window.vmknet.ready")
            drv.find_element(By.ID, "token").send_keys(token, Keys.ENTER)
            wait(drv, "document.body.dataset.view === 'datacenter'")
            wall = (time.monotonic() - started) * 1000
            dc_ms = float(drv.execute_script("return window.vmknet.timings.datacenter"))
            # a reload with the token in sessionStorage: navigation to the first view drawn
            drv.refresh()
            wait(drv, "window.vmknet.ready && document.body.dataset.view === 'datacenter'")
            load = float(drv.execute_script("return window.vmknet.timings.firstView"))
            host_ms, fetch_ms = host_renders(drv, url, renders)
            if args.screenshot:
                drv.execute_script("location.hash = '#/host/esx01'")
                wait(drv, "document.body.dataset.view === 'host:esx01'")
                drv.set_window_size(1280, 2400)
                drv.save_screenshot(str(args.screenshot))
            latency, spacing = sse(drv, events)
        finally:
            drv.quit()
            server.stop()
    med = statistics.median
    print(f"== web UI: {HOSTS} hosts, host view of {PORTGROUPS} port groups and {ADAPTERS} "
          f"adapters, headless chromium")
    print(f"page load (navigation to the datacenter view drawn): {load:.0f} ms "
          f"(first visit with log-in, wall: {wall:.0f} ms)")
    print(f"datacenter view ({HOSTS} hosts, lint, status): {dc_ms:.0f} ms")
    print(f"host view render: median {med(host_ms):.0f} ms, max {max(host_ms):.0f} ms over "
          f"{len(host_ms)} (aim < 1000 ms); its JSON alone: median {med(fetch_ms):.0f} ms "
          f"-> the view costs {med(host_ms) / max(med(fetch_ms), 0.1):.1f}x its fetch")
    if latency:
        print(f"SSE update latency (server stamp -> page handler): median {med(latency):.1f} ms, "
              f"max {max(latency):.1f} ms over {len(latency)} events")
    if spacing:
        print(f"SSE spacing: median {med(spacing):.0f} ms for a 1000 ms interval "
              f"(ratio {med(spacing) / 1000:.3f})")
    ok = max(host_ms) < 1000 and bool(latency)
    print("ok" if ok else "FAILED: the host view took 1 s or more, or no SSE event arrived")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
