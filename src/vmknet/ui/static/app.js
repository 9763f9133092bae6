// The single page: log in with a REST token, then the datacenter, host, resolve and traffic views
// (hash routes #/datacenter, #/host/NAME, #/resolve, #/traffic). Changes live in change.js.

import { ApiError, get, stream, token, whenUnauthenticated } from "./api.js";
import { adapterLabel, draw, fmt, highlight, showRates } from "./diagram.js";
import { editAdapter, editPortgroup, editSwitch, initChanges, resetChange } from "./change.js";

const $ = (id) => document.getElementById(id);
const state = { session: null, hosts: [], diagram: null, svg: null, traffic: null, rates: {} };
window.vmknet = { ready: false, timings: {}, lastEvent: null };

function cell(row, value) {
  const td = document.createElement("td");
  if (value instanceof Node) td.appendChild(value); else td.textContent = value;
  row.appendChild(td);
  return td;
}

function link(href, label) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = label;
  return a;
}

function rows(tableId, items, fill) {
  const body = $(tableId).querySelector("tbody");
  body.textContent = "";
  for (const item of items) fill(body.insertRow(), item);
}

function show(view) {
  document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== `view-${view}`; });
  document.querySelectorAll("#nav a").forEach((a) => {
    if (a.id === `nav-${view}`) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  });
}

function objectHref(path) {
  const parts = path.split("/");
  if (parts[0] === "hosts" && parts[1]) return `#/host/${encodeURIComponent(parts[1])}?focus=${encodeURIComponent(path)}`;
  if (parts[0] === "distributedSwitches" && parts[1]) return `#/datacenter?focus=dvs-${encodeURIComponent(parts[1])}`;
  if (parts[0] === "clusters" && parts[1]) return `#/datacenter?focus=cluster-${encodeURIComponent(parts[1])}`;
  return "#/datacenter";
}

// ------------------------------------------------------------------ log in

async function login(secret) {
  token.set(secret);
  try {
    state.session = await get("/api/v1/session");
  } catch (err) {
    token.clear();
    $("login-error").textContent = err instanceof ApiError ? `Error [${err.code}]: ${err.message}` : String(err);
    return false;
  }
  $("who").textContent = `${state.session.name || state.session.id} (${state.session.role})`;
  document.body.dataset.role = state.session.role;
  $("nav").hidden = false;
  $("logout").hidden = false;
  const hosts = await get("/api/v1/hosts");
  state.hosts = Object.keys(hosts).sort();
  for (const id of ["host-pick", "resolve-source", "resolve-target"]) {
    const select = $(id);
    select.querySelectorAll("option[value]:not([value=''])").forEach((o) => o.remove());
    for (const h of state.hosts) select.add(new Option(h, h));
  }
  if (state.hosts.length > 1) $("resolve-target").value = state.hosts[1];
  return true;
}

function logout(message) {
  token.clear();
  stopTraffic();
  state.session = null;
  $("nav").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login-error").textContent = message || "";
  show("login");
  $("token").focus();
}

// ------------------------------------------------------------------ datacenter

async function datacenterView(focus) {
  const started = performance.now();
  const [dc, lint, status] = await Promise.all([
    get("/api/v1/datacenter"), get("/api/v1/lint?severity=info"),
    get("/api/v1/hosts/status").catch(() => [])]);
  const condition = Object.fromEntries(status.map((r) => [r.host, r.condition]));
  const clusters = dc.clusters || {}, hosts = dc.hosts || {}, dvs = dc.distributedSwitches || {};
  rows("dc-clusters", Object.keys(clusters).sort(), (row, name) => {
    const c = clusters[name];
    row.id = `cluster-${name}`;
    cell(row, name); cell(row, c.ha ? "yes" : "no"); cell(row, c.vsan ? "yes" : "no"); cell(row, c.ft ? "yes" : "no");
    const td = cell(row, "");
    (c.hosts || []).forEach((h, i) => { if (i) td.append(", "); td.appendChild(link(`#/host/${encodeURIComponent(h)}`, h)); });
  });
  rows("dc-hosts", Object.keys(hosts).sort(), (row, name) => {
    const h = hosts[name];
    row.id = `host-${name}`;
    cell(row, link(`#/host/${encodeURIComponent(name)}`, name));
    cell(row, condition[name] || "unknown");
    const member = Object.keys(dvs).filter((d) => (dvs[d].hosts || {})[name]);
    cell(row, [...Object.keys(h.vswitches || {}), ...member].join(", "));
    cell(row, String(Object.keys(h.vmknics || {}).length));
    cell(row, String(Object.keys(h.nics || {}).length));
  });
  rows("dc-dvs", Object.keys(dvs).sort(), (row, name) => {
    const d = dvs[name];
    row.id = `dvs-${name}`;
    cell(row, name); cell(row, String(d.mtu || 1500));
    cell(row, Object.keys(d.portgroups || {}).join(", "));
    cell(row, Object.keys(d.hosts || {}).join(", "));
  });
  const box = $("dc-lint");
  box.textContent = "";
  for (const severity of ["error", "warning", "info"]) {
    const found = lint.filter((f) => f.severity === severity);
    const h = document.createElement("h4");
    h.textContent = `${severity} (${found.length})`;
    box.appendChild(h);
    const list = document.createElement("ul");
    list.className = `lint ${severity}`;
    for (const f of found) {
      const li = document.createElement("li");
      li.appendChild(link(objectHref(f.path), `${f.rule} ${f.path}`));
      li.append(`: ${f.message}`);
      list.appendChild(li);
    }
    box.appendChild(list);
  }
  if (focus) { const row = document.getElementById(focus); if (row) { row.classList.add("focus"); row.scrollIntoView(); } }
  window.vmknet.timings.datacenter = performance.now() - started;
  document.body.dataset.view = "datacenter";
}

// ------------------------------------------------------------------ host

async function hostView(host, focus) {
  const started = performance.now();
  resetChange();
  $("host-title").textContent = `Host ${host}`;
  $("host-pick").value = host;
  $("trace-text").textContent = "No adapter selected.";
  const data = await get(`/api/v1/ui/hosts/${encodeURIComponent(host)}/diagram`);
  state.diagram = data;
  state.svg = draw($("host-diagram"), data, {
    adapter: (v) => { traceAdapter(host, v); editAdapter(host, v); },
    portgroup: (sw, pg) => editPortgroup(host, sw, pg),
    switchSel: (sw) => editSwitch(host, sw),
  });
  if (state.rates[host]) showRates(state.svg, state.rates[host]);
  if (focus) {
    const node = [...state.svg.querySelectorAll("[data-path]")]
      .filter((n) => focus.startsWith(n.dataset.path)).sort((a, b) => b.dataset.path.length - a.dataset.path.length)[0];
    if (node) { node.classList.add("focus"); if (node.getAttribute("tabindex")) node.focus(); }
  }
  const ms = performance.now() - started;
  state.svg.dataset.renderedMs = ms.toFixed(1);
  window.vmknet.timings.host = ms;
  document.body.dataset.view = `host:${host}`;
}

async function traceAdapter(host, v) {
  $("trace-text").textContent = `Tracing ${v.name} ...`;
  const t = await get(`/api/v1/ui/hosts/${encodeURIComponent(host)}/vmknics/${encodeURIComponent(v.name)}/trace`);
  const uplinks = t.hops.filter((h) => t.carrying.includes(h.nic)).map((h) => h.uplink);
  highlight(state.svg, new Set([v.name]), { portgroup: t.portgroup || "", nics: t.carrying, uplinks });
  const out = $("trace-text");
  out.textContent = "";
  const head = document.createElement("p");
  head.textContent = `${adapterLabel(t.vmknic)} -> port group ${t.portgroup || "(none)"} (VLAN ${t.vlan ?? "-"}) on ${t.switch || "(no switch)"}`;
  out.appendChild(head);
  const list = document.createElement("ol");
  list.id = "trace-hops";
  for (const hop of t.hops) {
    const li = document.createElement("li");
    const now = t.carrying.includes(hop.nic);
    li.className = now ? "carrying" : "";
    li.dataset.nic = hop.nic;
    const stp = hop.stp ? `, STP ${hop.stp}` : "";
    li.textContent = `${hop.uplink !== hop.nic ? `${hop.uplink} = ` : ""}${hop.nic}: ${hop.role}, link ${hop.link}${stp}${now ? " - carrying it now" : ""}`;
    list.appendChild(li);
  }
  out.appendChild(list);
  const basis = document.createElement("p");
  basis.id = "trace-basis";
  basis.textContent = t.carrying.length
    ? `Carried now by ${t.carrying.join(", ")} (${t.measured ? "read from the kernel's STP port states" : "predicted from teaming and link state: no lab"}).`
    : "No physical NIC carries it now.";
  out.appendChild(basis);
}

// ------------------------------------------------------------------ resolve

async function resolve(e) {
  e.preventDefault();
  const service = $("resolve-service").value, source = $("resolve-source").value, target = $("resolve-target").value;
  $("resolve-error").textContent = "";
  $("resolve-flows").hidden = true;
  const [left, right] = await Promise.all([
    get(`/api/v1/ui/hosts/${encodeURIComponent(source)}/diagram`),
    get(`/api/v1/ui/hosts/${encodeURIComponent(target)}/diagram`)]);
  const noop = { adapter: () => {}, portgroup: () => {}, switchSel: () => {} };
  const lsvg = draw($("resolve-left"), left, noop), rsvg = draw($("resolve-right"), right, noop);
  let flows;
  try {
    const q = new URLSearchParams({ service, source, target });
    flows = await get(`/api/v1/resolve?${q}`);
  } catch (err) {
    $("resolve-error").textContent = `Error [${err.code}]: ${err.message}`;
    return;
  }
  rows("resolve-flows", flows, (row, f) => {
    row.className = "flow";
    cell(row, `${f.source.host} ${f.source.vmknic} ${f.source.address || ""}`);
    cell(row, `${f.target.host} ${f.target.vmknic} ${f.target.address || ""}`);
    cell(row, f.nextHop || "on-link");
    cell(row, f.reason);
  });
  $("resolve-flows").hidden = false;
  highlight(lsvg, new Set(flows.map((f) => f.source.vmknic)));
  highlight(rsvg, new Set(flows.map((f) => f.target.vmknic)));
}

// ------------------------------------------------------------------ traffic

function startTraffic() {
  if (state.traffic) return;
  state.traffic = stream("/api/v1/ui/traffic?interval=1", (sample) => {
    const received = (performance.timeOrigin + performance.now()) / 1000;  // sub-ms, one clock
    window.vmknet.lastEvent = { seq: sample.seq, sent: sample.time, received };
    state.rates = sample.adapters;
    $("traffic-status").textContent = `Sample ${sample.seq} at ${new Date(sample.time * 1000).toLocaleTimeString()}` +
      (sample.measured ? " (the lab's kernel counters)" : " (no lab: no counters)");
    const list = [];
    for (const host of Object.keys(sample.adapters).sort()) {
      for (const vmk of Object.keys(sample.adapters[host])) list.push([host, vmk, sample.adapters[host][vmk]]);
    }
    rows("traffic-adapters", list, (row, [host, vmk, r]) => {
      cell(row, host); cell(row, vmk); cell(row, fmt(r.rx)); cell(row, fmt(r.tx));
    });
    rows("traffic-services", Object.keys(sample.services).sort(), (row, svc) => {
      cell(row, svc); cell(row, fmt(sample.services[svc].rx)); cell(row, fmt(sample.services[svc].tx));
    });
    if (state.svg && state.diagram && state.rates[state.diagram.host]) showRates(state.svg, state.rates[state.diagram.host]);
    document.body.dataset.trafficSeq = String(sample.seq);
    if (!$("view-traffic").hidden) refreshTasks();
  }, (err) => { $("traffic-status").textContent = `Stream stopped: ${err.message}`; state.traffic = null; });
}

function stopTraffic() {
  if (state.traffic) state.traffic.stop();
  state.traffic = null;
}

// The controller's tasks (GET /api/v1/tasks): vMotion, cold migration, clone, with the last
// progress event of each running one; refreshed with every traffic event while shown.
function progressText(task) {
  const last = task.progress.length ? task.progress[task.progress.length - 1] : null;
  if (task.state === "error" && task.error) return `Error [${task.error.code}]: ${task.error.message}`;
  if (!last) return task.state === "success" ? "done" : "";
  if (last.total) return `${last.event} ${Math.floor((100 * last.done) / last.total)}% (${fmtBytes(last.done)} of ${fmtBytes(last.total)})`;
  const fields = Object.entries(last).filter(([k, v]) => k !== "event" && k !== "seq" && typeof v !== "object").slice(0, 4);
  return `${last.event}${fields.length ? ": " : ""}${fields.map(([k, v]) => `${k} ${v}`).join(", ")}`;
}

function fmtBytes(n) { return fmt(n).replace("/s", ""); }

let tasksBusy = false;
async function refreshTasks() {
  if (tasksBusy) return;
  tasksBusy = true;
  try {
    const list = await get("/api/v1/tasks");
    const shown = await Promise.all(list.slice(-20).reverse().map((t) =>
      t.state === "running" ? get(`/api/v1/tasks/${encodeURIComponent(t.id)}`).catch(() => t) : t));
    $("tasks-status").textContent = shown.length ? "" : "No task has run since the controller started.";
    rows("traffic-tasks", shown, (row, t) => {
      row.className = `task ${t.state}`;
      row.dataset.kind = t.kind;
      cell(row, `${t.kind} ${t.id}`); cell(row, t.entity); cell(row, t.state); cell(row, progressText(t));
    });
  } catch (err) {
    $("tasks-status").textContent = err.code === "ControllerNotRunning" ? "No controller: no tasks." : `Error [${err.code}]: ${err.message}`;
  } finally { tasksBusy = false; }
  const vms = await get("/api/v1/vms").catch(() => ({}));  // 404 when no lab is bound
  rows("traffic-vms", Object.values(vms), (row, vm) => {
    cell(row, vm.name); cell(row, vm.host); cell(row, fmtBytes(vm.memory)); cell(row, fmt(vm.dirty_rate));
  });
}

async function trafficView() {
  startTraffic();
  await refreshTasks();
  document.body.dataset.view = "traffic";
}

// ------------------------------------------------------------------ routing

async function route() {
  if (!state.session) { show("login"); return; }
  const [path, query] = (location.hash.slice(1) || "/datacenter").split("?");
  const focus = new URLSearchParams(query || "").get("focus");
  const parts = path.split("/").filter(Boolean);
  try {
    if (parts[0] === "host" && parts[1]) { show("host"); await hostView(decodeURIComponent(parts[1]), focus); }
    else if (parts[0] === "resolve") { show("resolve"); document.body.dataset.view = "resolve"; }
    else if (parts[0] === "traffic") { show("traffic"); await trafficView(); }
    else { show("datacenter"); await datacenterView(focus); }
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    const box = document.createElement("p");
    box.className = "error";
    box.setAttribute("role", "alert");
    box.textContent = err instanceof ApiError ? `Error [${err.code}]: ${err.message}` : String(err);
    document.querySelector(".view:not([hidden])").appendChild(box);
  }
}

async function start() {
  whenUnauthenticated((err) => logout(`Error [${err.code}]: ${err.message}`));
  initChanges(() => route());
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (await login($("token").value.trim())) { $("token").value = ""; await route(); $("main").focus(); }
  });
  $("logout").addEventListener("click", () => logout(""));
  $("host-pick").addEventListener("change", () => { if ($("host-pick").value) location.hash = `#/host/${encodeURIComponent($("host-pick").value)}`; });
  $("resolve-form").addEventListener("submit", (e) => { resolve(e).catch((err) => { $("resolve-error").textContent = String(err.message || err); }); });
  window.addEventListener("hashchange", route);
  if (token.get() && await login(token.get())) await route(); else show("login");
  // since navigation start: what bench/bench_ui.py reports as the page load time
  window.vmknet.timings.firstView = performance.now();
  window.vmknet.ready = true;
  document.body.dataset.ready = "1";
}

start();
