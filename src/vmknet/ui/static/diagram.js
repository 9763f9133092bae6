// One host's virtual switch diagram in SVG, laid out as the vSphere Client draws it: per switch,
// port groups (VLAN, teaming) with their VMkernel adapters on the left, the physical adapters
// (uplinks) on the right, a line from each port group to its active (solid) and standby
// (dashed) uplinks. Every adapter, port group and switch is focusable and has an aria-label.

const NS = "http://www.w3.org/2000/svg";
const W = 900, PG_X = 16, PG_W = 420, UP_X = 640, UP_W = 240;
const HEAD = 34, PG_HEAD = 44, VMK_H = 34, UP_H = 40, GAP = 10;

function el(name, attrs, parent) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (parent) parent.appendChild(node);
  return node;
}

function text(parent, x, y, value, cls) {
  const t = el("text", { x, y, class: cls || "" }, parent);
  t.textContent = value;
  return t;
}

function titled(group, label) {
  group.setAttribute("aria-label", label);
  el("title", {}, group).textContent = label;
}

function focusable(group, label, action) {
  group.setAttribute("tabindex", "0");
  group.setAttribute("role", "button");
  titled(group, label);
  group.addEventListener("click", action);
  group.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); action(); }
  });
}

function teamingText(t) {
  const parts = [`active ${t.active.join(", ") || "none"}`];
  if (t.standby.length) parts.push(`standby ${t.standby.join(", ")}`);
  if (t.unused.length) parts.push(`unused ${t.unused.join(", ")}`);
  return `${t.loadBalancing}: ${parts.join("; ")}`;
}

export function adapterLabel(v) {
  const addr = v.addresses.join(", ") || "no address";
  const svc = v.services.length ? v.services.join(", ") : "no services";
  return `${v.name}: ${addr}, MTU ${v.mtu}, TCP/IP stack ${v.netstack}, services ${svc}` +
    (v.enabled ? "" : ", disabled");
}

function pgHeight(pg) { return PG_HEAD + pg.vmknics.length * VMK_H + GAP; }

function switchHeight(sw) {
  const left = sw.portgroups.reduce((n, pg) => n + pgHeight(pg), 0);
  return HEAD + Math.max(left, sw.uplinks.length * (UP_H + GAP), 40) + GAP;
}

// Draws `data` (GET /api/v1/ui/hosts/{host}/diagram) into `box`; `on` has adapter(v),
// portgroup(sw, pg), switchSel(sw). Returns the svg.
export function draw(box, data, on) {
  box.textContent = "";
  const total = data.switches.reduce((n, sw) => n + switchHeight(sw) + 16, 0) +
    (data.unattached.length ? HEAD + data.unattached.length * VMK_H + 16 : 0);
  const svg = el("svg", { viewBox: `0 0 ${W} ${Math.max(total, 60)}`, width: "100%", role: "group",
    "data-host": data.host, class: "vswitch-diagram" }, box);
  titled(svg, `Virtual switches of host ${data.host}: ${data.switches.length} switches`);
  let y = 8;
  for (const sw of data.switches) { y = drawSwitch(svg, data, sw, y, on) + 16; }
  if (data.unattached.length) drawUnattached(svg, data, y, on);
  return svg;
}

function drawSwitch(svg, data, sw, top, on) {
  const h = switchHeight(sw);
  const path = sw.kind === "standard" ? `hosts/${data.host}/vswitches/${sw.name}` : `distributedSwitches/${sw.name}`;
  const g = el("g", { class: `switch ${sw.kind}`, "data-switch": sw.name, "data-path": path }, svg);
  el("rect", { x: 4, y: top, width: W - 8, height: h, rx: 6, class: "switch-box" }, g);
  const head = el("g", { class: "switch-head", "data-switch": sw.name }, g);
  el("rect", { x: 4, y: top, width: W - 8, height: HEAD - 6, rx: 6, class: "switch-title" }, head);
  const kind = sw.kind === "standard" ? "Standard switch" : "Distributed switch";
  text(head, 14, top + 19, `${kind}: ${sw.name}  (MTU ${sw.mtu})`, "switch-name");
  focusable(head, `${kind} ${sw.name}, MTU ${sw.mtu}, ${sw.portgroups.length} port groups, uplinks ` +
    sw.uplinks.map((u) => `${u.name}${u.nic && u.nic !== u.name ? ` (${u.nic})` : ""} link ${u.link}`).join(", "),
  () => on.switchSel(sw));
  const upY = {};
  sw.uplinks.forEach((u, i) => {
    const uy = top + HEAD + i * (UP_H + GAP);
    upY[u.name] = uy + UP_H / 2;
    const ug = el("g", { class: `uplink link-${u.link}`, "data-nic": u.nic || "", "data-uplink": u.name }, g);
    el("rect", { x: UP_X, y: uy, width: UP_W, height: UP_H, rx: 4, class: "uplink-box" }, ug);
    el("circle", { cx: UP_X + 14, cy: uy + UP_H / 2, r: 6, class: "link-dot" }, ug);
    const name = u.nic && u.nic !== u.name ? `${u.name} (${u.nic})` : u.name;
    text(ug, UP_X + 28, uy + 17, name, "uplink-name");
    text(ug, UP_X + 28, uy + 32, u.nic ? `link ${u.link}${u.speed ? `, ${u.speed} Mbit/s` : ""}` : "no NIC mapped", "small");
    titled(ug, `Physical adapter ${name}: link ${u.link}${u.speed ? `, ${u.speed} Mbit/s` : ""}`);
  });
  let py = top + HEAD;
  for (const pg of sw.portgroups) {
    drawPortgroup(g, data, sw, pg, py, upY, on);
    py += pgHeight(pg);
  }
  return top + h;
}

function drawPortgroup(g, data, sw, pg, top, upY, on) {
  const path = sw.kind === "standard" ? `hosts/${data.host}/vswitches/${sw.name}/portgroups/${pg.name}`
    : `distributedSwitches/${sw.name}/portgroups/${pg.name}`;
  const cy = top + 20;
  for (const [role, cls] of [["active", "team-active"], ["standby", "team-standby"]]) {
    for (const u of pg.teaming[role]) {
      if (upY[u] === undefined) continue;
      el("path", { d: `M${PG_X + PG_W},${cy} C${(PG_X + PG_W + UP_X) / 2},${cy} ${(PG_X + PG_W + UP_X) / 2},${upY[u]} ${UP_X},${upY[u]}`,
        class: `team ${cls}`, "data-pg": pg.name, "data-uplink": u }, g);
    }
  }
  const pgG = el("g", { class: "portgroup", "data-pg": pg.name, "data-path": path }, g);
  el("rect", { x: PG_X, y: top, width: PG_W, height: pgHeight(pg) - GAP, rx: 4, class: "pg-box" }, pgG);
  text(pgG, PG_X + 10, top + 17, pg.name, "pg-name");
  const vlan = pg.vlan === 0 ? "VLAN ID: --" : pg.vlan === 4095 ? "VLAN ID: All (4095)" : `VLAN ID: ${pg.vlan}`;
  text(pgG, PG_X + 10, top + 34, `${vlan}   ${teamingText(pg.teaming)}`, "small");
  focusable(pgG, `Port group ${pg.name} on ${sw.name}, ${vlan}, teaming ${teamingText(pg.teaming)}, ` +
    `${pg.vmknics.length} VMkernel adapters`, () => on.portgroup(sw, pg));
  pg.vmknics.forEach((v, i) => drawAdapter(g, data, v, PG_X + 20, top + PG_HEAD + i * VMK_H, on));
}

function drawAdapter(g, data, v, x, y, on) {
  const vg = el("g", { class: `vmknic${v.enabled ? "" : " disabled"}`, "data-vmk": v.name,
    "data-path": `hosts/${data.host}/vmknics/${v.name}` }, g);
  el("rect", { x, y, width: PG_W - 40, height: VMK_H - 4, rx: 3, class: "vmk-box" }, vg);
  text(vg, x + 8, y + 13, `${v.name}  ${v.addresses[0] || "no address"}  MTU ${v.mtu}`, "vmk-name");
  text(vg, x + 8, y + 26, `${v.netstack} | ${v.services.join(", ") || "no services"}`, "small");
  text(vg, x + PG_W - 50, y + 13, "", "rate").setAttribute("text-anchor", "end");
  focusable(vg, adapterLabel(v), () => on.adapter(v));
}

function drawUnattached(svg, data, top, on) {
  const g = el("g", { class: "switch unattached" }, svg);
  el("rect", { x: 4, y: top, width: W - 8, height: HEAD + data.unattached.length * VMK_H, rx: 6, class: "switch-box" }, g);
  text(g, 14, top + 19, "Adapters on no existing port group", "switch-name");
  data.unattached.forEach((v, i) => drawAdapter(g, data, v, PG_X + 20, top + HEAD + i * VMK_H, on));
}

// Marks the adapters `vmks` (a Set) and, for a trace, the wires to the NICs carrying it.
export function highlight(svg, vmks, carrying) {
  svg.querySelectorAll(".selected, .carrying").forEach((n) => n.classList.remove("selected", "carrying"));
  for (const vmk of vmks) {
    const node = svg.querySelector(`.vmknic[data-vmk="${CSS.escape(vmk)}"]`);
    if (!node) continue;
    node.classList.add("selected");
    const pg = node.closest(".switch").querySelector(`.portgroup[data-pg="${CSS.escape(pgOf(svg, vmk))}"]`);
    if (pg) pg.classList.add("selected");
  }
  if (!carrying) return;
  const { portgroup, nics, uplinks } = carrying;
  svg.querySelectorAll(`.team[data-pg="${CSS.escape(portgroup)}"]`).forEach((p) => {
    if (uplinks.includes(p.dataset.uplink)) p.classList.add("carrying");
  });
  svg.querySelectorAll(".uplink").forEach((u) => {
    if (nics.includes(u.dataset.nic) && u.closest(".switch").querySelector(`.portgroup[data-pg="${CSS.escape(portgroup)}"]`)) u.classList.add("carrying");
  });
}

function pgOf(svg, vmk) {
  const node = svg.querySelector(`.vmknic[data-vmk="${CSS.escape(vmk)}"]`);
  if (!node) return "";
  // the port group box drawn just before the adapter's rows in the same switch
  let prev = node.previousElementSibling;
  while (prev && !prev.classList.contains("portgroup")) prev = prev.previousElementSibling;
  return prev ? prev.dataset.pg : "";
}

export function showRates(svg, rates) {
  svg.querySelectorAll(".vmknic").forEach((node) => {
    const r = rates[node.dataset.vmk];
    const t = node.querySelector(".rate");
    if (t) t.textContent = r ? `${fmt(r.rx)} in ${fmt(r.tx)} out` : "";
  });
}

export function fmt(bytes) {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB/s`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB/s`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} kB/s`;
  return `${Math.round(bytes)} B/s`;
}
