// Changes from the page with Cockpit's "keep connection": edit -> the plan (POST /api/v1/plan)
// -> apply (POST /api/v1/ui/changes) starts the controller's countdown -> "Keep this change"
// confirms. No confirmation in time (the change cut this browser off, or the tab closed):
// the controller puts the previous document back by itself.

import { get, post } from "./api.js";

const $ = (id) => document.getElementById(id);
let pending = null; // {edit, doc, version}
let countdown = null; // {id, deadline, timer, poll}
let refresh = () => {};

function obj(parent, key) {
  if (!parent[key] || typeof parent[key] !== "object") parent[key] = {};
  return parent[key];
}

function field(label, id, input) {
  const wrap = document.createElement("div");
  const l = document.createElement("label");
  l.htmlFor = id;
  l.textContent = label;
  input.id = id;
  wrap.append(l, input);
  return wrap;
}

function number(id, value, min, max) {
  const input = document.createElement("input");
  Object.assign(input, { type: "number", min, max, value, required: true });
  return input;
}

function open(what, fields, apply) {
  resetChange();
  $("edit-none").hidden = true;
  $("edit-form").hidden = false;
  $("edit-what").textContent = what;
  const box = $("edit-fields");
  box.textContent = "";
  for (const f of fields) box.appendChild(f);
  const readOnly = document.body.dataset.role === "read-only";
  $("edit-plan").disabled = readOnly;
  if (readOnly) $("edit-error").textContent = "Your token is read-only: changes need the operator role.";
  pending = { apply };
}

export function editPortgroup(host, sw, pg) {
  open(`Port group ${pg.name} on ${sw.name}`, [field("VLAN ID (0-4095)", "edit-vlan", number("edit-vlan", pg.vlan, 0, 4095))],
    (doc) => {
      const vlan = Number($("edit-vlan").value);
      const groups = sw.kind === "standard"
        ? obj(obj(obj(obj(obj(doc, "hosts"), host), "vswitches"), sw.name), "portgroups")
        : obj(obj(obj(doc, "distributedSwitches"), sw.name), "portgroups");
      obj(groups, pg.name).vlan = vlan;
    });
}

export function editSwitch(host, sw) {
  open(`${sw.kind === "standard" ? "Standard" : "Distributed"} switch ${sw.name}`,
    [field("MTU (1280-9000)", "edit-mtu", number("edit-mtu", sw.mtu, 1280, 9000))],
    (doc) => {
      const target = sw.kind === "standard" ? obj(obj(obj(doc, "hosts"), host), "vswitches") : obj(doc, "distributedSwitches");
      obj(target, sw.name).mtu = Number($("edit-mtu").value);
    });
}

const SERVICES = ["management", "vmotion", "vSphereProvisioning", "faultToleranceLogging", "vSphereReplication",
  "vSphereReplicationNFC", "vsan", "vsanWitness", "vSphereBackupNFC", "nvmeTcp"];

export function editAdapter(host, v) {
  const set = document.createElement("fieldset");
  const legend = document.createElement("legend");
  legend.textContent = "Services (tags)";
  set.appendChild(legend);
  for (const svc of SERVICES) {
    const box = document.createElement("input");
    Object.assign(box, { type: "checkbox", id: `edit-svc-${svc}`, value: svc, checked: v.services.includes(svc) });
    const l = document.createElement("label");
    l.htmlFor = box.id;
    l.textContent = svc;
    const span = document.createElement("span");
    span.className = "check";
    span.append(box, l);
    set.appendChild(span);
  }
  open(`VMkernel adapter ${v.name}`, [field("MTU (1280-9000)", "edit-mtu", number("edit-mtu", v.mtu, 1280, 9000)), set],
    (doc) => {
      const nic = obj(obj(obj(doc, "hosts"), host), "vmknics")[v.name];
      nic.mtu = Number($("edit-mtu").value);
      nic.services = SERVICES.filter((s) => $(`edit-svc-${s}`).checked);
    });
}

export function resetChange() {
  pending = null;
  $("edit-form").hidden = true;
  $("edit-none").hidden = false;
  $("plan").hidden = true;
  $("edit-error").textContent = "";
  if (!countdown) { $("countdown").hidden = true; }
}

function error(err) {
  $("edit-error").textContent = err.code ? `Error [${err.code}]: ${err.message}` : String(err.message || err);
}

async function showPlan(e) {
  e.preventDefault();
  $("edit-error").textContent = "";
  $("edit-result").textContent = "";
  try {
    const doc = await get("/api/v1/datacenter");
    pending.apply(doc);
    const plan = await post("/api/v1/plan", doc);
    Object.assign(pending, { doc, version: plan.version });
    const list = $("plan-changes");
    list.textContent = "";
    for (const c of plan.changes) {
      const li = document.createElement("li");
      li.textContent = `${c.action} ${c.path}: ${c.summary}`;
      list.appendChild(li);
    }
    if (!plan.changes.length) list.innerHTML = "<li>Nothing to change.</li>";
    $("plan").hidden = false;
    $("plan-apply").disabled = !plan.changes.length;
    $("plan-apply").focus();
  } catch (err) { error(err); }
}

async function apply() {
  const timeout = Number($("edit-timeout").value) || 20;
  $("plan-apply").disabled = true;
  $("edit-result").textContent = "Applying ...";
  try {
    const started = await post(`/api/v1/ui/changes?version=${pending.version}&timeout=${timeout}`, pending.doc);
    $("plan").hidden = true;
    startCountdown(started.change, started.applied);
  } catch (err) { error(err); $("edit-result").textContent = ""; }
}

function startCountdown(change, applied) {
  const deadline = Date.now() + change.remaining * 1000;
  countdown = { id: change.id, deadline, lost: false };
  $("countdown").hidden = false;
  $("keep").disabled = false;
  $("edit-result").textContent = `Applied ${applied} change(s) as change ${change.id}.`;
  document.body.dataset.change = change.id;
  document.body.dataset.changeState = "waiting";
  const tick = () => {
    const left = Math.max(0, (countdown.deadline - Date.now()) / 1000);
    $("countdown-text").textContent = `Keep this change? It is rolled back in ${left.toFixed(0)} s unless you confirm.` +
      (countdown.lost ? " The controller does not answer: the change may have cut this browser off." : "");
  };
  tick();
  countdown.timer = setInterval(tick, 250);
  countdown.poll = setInterval(poll, 1000);
  $("keep").focus();
}

async function poll() {
  if (!countdown) return;
  try {
    const now = await get(`/api/v1/ui/changes/${countdown.id}`);
    countdown.lost = false;
    if (now.state !== "waiting") finish(now);
  } catch (_) { countdown.lost = true; }
}

function finish(change) {
  clearInterval(countdown.timer);
  clearInterval(countdown.poll);
  countdown = null;
  $("countdown").hidden = true;
  document.body.dataset.changeState = change.state;
  const words = { confirmed: "Kept: the change is confirmed.", reverted: "Not confirmed in time: the previous configuration is back.",
    "revert-failed": `Not confirmed, and putting the previous configuration back failed: ${change.error}` };
  $("edit-result").textContent = words[change.state] || change.state;
  refresh();
}

async function keep() {
  if (!countdown) return;
  $("keep").disabled = true;
  try { finish(await post(`/api/v1/ui/changes/${countdown.id}/confirm`)); } catch (err) { error(err); }
}

export function initChanges(onDone) {
  refresh = onDone;
  $("edit-form").addEventListener("submit", showPlan);
  $("plan-apply").addEventListener("click", apply);
  $("plan-cancel").addEventListener("click", resetChange);
  $("keep").addEventListener("click", keep);
}
