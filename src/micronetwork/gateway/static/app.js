// micronetwork dashboard: vanilla JS, no external assets. Polls the gateway's /network/*
// views, draws the peer graph as SVG (a small deterministic force layout), calls endpoints
// and follows broker events (server-sent events).
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const state = { services: [], local: null, events: null, positions: {} };

function $(id) { return document.getElementById(id); }

function el(tag, attrs, text) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG_NS, tag.slice(4))
                                      : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

async function getJSON(path) {
  const r = await fetch(path, { headers: { "Accept": "application/json" } });
  const body = await r.json();
  if (!r.ok) throw new Error(body.error ? `${body.error.code}: ${body.error.message}` : r.status);
  return body;
}

function short(id) { return id ? id.slice(-6) : "-"; }

// -- graph ------------------------------------------------------------------------------------

function layout(nodes, links, width, height) {
  // Circular start (stable order), then a few hundred steps of springs + repulsion.
  const n = nodes.length, pos = {};
  nodes.forEach((d, i) => {
    const old = state.positions[d.id];
    const a = 2 * Math.PI * i / Math.max(n, 1);
    pos[d.id] = old ? { x: old.x, y: old.y }
                    : { x: width / 2 + (n > 1 ? 150 * Math.cos(a) : 0),
                        y: height / 2 + (n > 1 ? 150 * Math.sin(a) : 0) };
  });
  const k = Math.sqrt((width * height) / Math.max(n, 1)) * 0.6;
  for (let step = 0; step < 300; step++) {
    const disp = {};
    nodes.forEach(d => { disp[d.id] = { x: 0, y: 0 }; });
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        const a = pos[nodes[i].id], b = pos[nodes[j].id];
        let dx = a.x - b.x, dy = a.y - b.y;
        const dist = Math.max(Math.hypot(dx, dy), 0.01), f = (k * k) / dist;
        dx /= dist; dy /= dist;
        disp[nodes[i].id].x += dx * f; disp[nodes[i].id].y += dy * f;
        disp[nodes[j].id].x -= dx * f; disp[nodes[j].id].y -= dy * f;
      }
    }
    links.forEach(l => {
      const a = pos[l.source], b = pos[l.target];
      if (!a || !b) return;
      let dx = a.x - b.x, dy = a.y - b.y;
      const dist = Math.max(Math.hypot(dx, dy), 0.01), f = (dist * dist) / k;
      dx /= dist; dy /= dist;
      disp[l.source].x -= dx * f; disp[l.source].y -= dy * f;
      disp[l.target].x += dx * f; disp[l.target].y += dy * f;
    });
    const t = 20 * (1 - step / 300) + 1;
    nodes.forEach(d => {
      const v = disp[d.id], len = Math.max(Math.hypot(v.x, v.y), 0.01);
      const p = pos[d.id];
      p.x = Math.min(width - 40, Math.max(40, p.x + v.x / len * Math.min(len, t)));
      p.y = Math.min(height - 40, Math.max(30, p.y + v.y / len * Math.min(len, t)));
    });
  }
  state.positions = pos;
  return pos;
}

function drawGraph(graph) {
  const svg = $("graph");
  const width = 800, height = 420;
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const pos = layout(graph.nodes, graph.links, width, height);
  const edges = el("svg:g", { class: "edges" });
  graph.links.forEach(l => {
    const a = pos[l.source], b = pos[l.target];
    edges.appendChild(el("svg:line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y,
                                       "data-source": l.source, "data-target": l.target }));
    if (l.latency_ms !== undefined && l.latency_ms !== null) {
      edges.appendChild(el("svg:text", { class: "edge-label", x: (a.x + b.x) / 2,
                                         y: (a.y + b.y) / 2 - 3 }, `${l.latency_ms.toFixed(1)} ms`));
    }
  });
  svg.appendChild(edges);
  const group = el("svg:g", { class: "nodes" });
  graph.nodes.forEach(d => {
    const p = pos[d.id];
    const g = el("svg:g", { class: `node ${d.role}${d.id === graph.graph.local ? " local" : ""}`,
                            "data-id": d.id, "data-role": d.role,
                            transform: `translate(${p.x},${p.y})` });
    g.appendChild(el("svg:title", {}, `${d.id}\n${d.role}\n${(d.addrs || []).join("\n")}`));
    g.appendChild(el("svg:circle", { r: d.role === "super" ? 16 : 12 }));
    g.appendChild(el("svg:text", { x: 18, y: 4 }, short(d.id) +
                     (d.services && d.services.length ? "  " + d.services.join(", ") : "")));
    group.appendChild(g);
  });
  svg.appendChild(group);
  svg.setAttribute("data-nodes", String(graph.nodes.length));
}

// -- tables -----------------------------------------------------------------------------------

function fmtAge(s) {
  if (s === null || s === undefined) return "-";
  return s < 1 ? "now" : `${Math.round(s)} s ago`;
}

function drawNodes(nodes) {
  const body = $("nodes-table").querySelector("tbody");
  while (body.firstChild) body.removeChild(body.firstChild);
  nodes.forEach(n => {
    const tr = el("tr", { "data-id": n.id });
    tr.appendChild(el("td", { title: n.id }, short(n.id) + (n.local ? " (this node)" : "")));
    tr.appendChild(el("td", {}, n.role));
    tr.appendChild(el("td", { class: "addr", title: n.addrs.join(" ") }, n.addrs[0] || "-"));
    tr.appendChild(el("td", {}, n.latency_ms === null ? "-" : `${n.latency_ms.toFixed(2)} ms`));
    tr.appendChild(el("td", {}, fmtAge(n.last_seen)));
    tr.appendChild(el("td", {}, n.services.join(", ") || "-"));
    body.appendChild(tr);
  });
}

function schemaText(s) { return JSON.stringify(s, null, 2); }

function drawServices(services) {
  const box = $("services");
  while (box.firstChild) box.removeChild(box.firstChild);
  if (!services.length) { box.appendChild(el("p", { class: "muted" }, "none known yet")); return; }
  services.forEach(s => {
    const div = el("div", { class: "service", "data-name": s.name });
    div.appendChild(el("h3", {}, `${s.name} ${s.version} — ${s.instances} instance(s)`));
    s.endpoints.forEach(e => {
      const d = el("details", { class: "endpoint" });
      d.appendChild(el("summary", {}, `${e.name} (${e.kind})${e.doc ? " — " + e.doc : ""}`));
      d.appendChild(el("p", { class: "muted" }, "request"));
      d.appendChild(el("pre", {}, schemaText(e.request)));
      d.appendChild(el("p", { class: "muted" }, "response"));
      d.appendChild(el("pre", {}, schemaText(e.response)));
      div.appendChild(d);
    });
    box.appendChild(div);
  });
  fillServiceSelect(services);
}

// -- call form --------------------------------------------------------------------------------

function example(schema, defs, depth) {
  if (!schema || depth > 6) return null;
  defs = Object.assign({}, defs || {}, schema.$defs || {});
  if (schema.$ref) return example(defs[schema.$ref.split("/").pop()], defs, depth + 1);
  if ("default" in schema) return schema.default;
  if (schema.enum) return schema.enum[0];
  if (schema.anyOf) return example(schema.anyOf[0], defs, depth + 1);
  switch (schema.type) {
    case "object": {
      const out = {};
      for (const name of schema.required || []) {
        out[name] = example((schema.properties || {})[name], defs, depth + 1);
      }
      return out;
    }
    case "array": return [];
    case "string": return "";
    case "integer": case "number": return 0;
    case "boolean": return false;
    default: return null;
  }
}

function fillServiceSelect(services) {
  const sel = $("call-service"), keep = sel.value;
  const names = services.filter(s => s.endpoints.length).map(s => s.name);
  if (names.join() === Array.from(sel.options).map(o => o.value).join()) return;
  while (sel.firstChild) sel.removeChild(sel.firstChild);
  names.forEach(n => sel.appendChild(el("option", { value: n }, n)));
  if (names.includes(keep)) sel.value = keep;
  fillEndpointSelect();
}

function currentService() { return state.services.find(s => s.name === $("call-service").value); }
function currentEndpoint() {
  const s = currentService();
  return s ? s.endpoints.find(e => e.name === $("call-endpoint").value) : undefined;
}

function fillEndpointSelect() {
  const s = currentService(), sel = $("call-endpoint");
  while (sel.firstChild) sel.removeChild(sel.firstChild);
  if (!s) return;
  s.endpoints.forEach(e => sel.appendChild(el("option", { value: e.name }, `${e.name} (${e.kind})`)));
  fillExample();
}

function fillExample() {
  const e = currentEndpoint();
  if (!e) return;
  let body = example(e.request, {}, 0);
  if (e.kind === "client_stream" || e.kind === "bidi") body = [body];
  $("call-body").value = JSON.stringify(body, null, 2);
}

async function readSSE(response, onEvent) {
  const reader = response.body.getReader(), decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
      let name = "message", data = "";
      frame.split("\n").forEach(line => {
        if (line.startsWith("event: ")) name = line.slice(7);
        if (line.startsWith("data: ")) data += line.slice(6);
      });
      onEvent(name, data ? JSON.parse(data) : null);
    }
  }
}

async function submitCall(ev) {
  ev.preventDefault();
  const s = $("call-service").value, e = currentEndpoint(), out = $("call-result");
  const status = $("call-status");
  if (!s || !e) { status.textContent = "pick a service and an endpoint"; return; }
  out.textContent = ""; out.classList.remove("error");
  status.textContent = "calling…";
  const t0 = performance.now();
  try {
    const r = await fetch(`/${encodeURIComponent(s)}/${encodeURIComponent(e.name)}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: $("call-body").value,
    });
    const ms = (performance.now() - t0).toFixed(1);
    if ((r.headers.get("content-type") || "").startsWith("text/event-stream")) {
      const lines = [];
      await readSSE(r, (name, data) => {
        lines.push(`${name}: ${JSON.stringify(data)}`);
        out.textContent = lines.join("\n");
      });
      status.textContent = `HTTP ${r.status}, stream ended after ${(performance.now() - t0).toFixed(1)} ms`;
    } else {
      const body = await r.json();
      out.textContent = JSON.stringify(body, null, 2);
      if (!r.ok) out.classList.add("error");
      status.textContent = `HTTP ${r.status} in ${ms} ms`;
    }
  } catch (err) {
    out.textContent = String(err); out.classList.add("error"); status.textContent = "failed";
  }
  out.setAttribute("data-done", "1");
}

// -- events -----------------------------------------------------------------------------------

function subscribe(ev) {
  ev.preventDefault();
  if (state.events) state.events.close();
  const topic = $("events-topic").value, since = $("events-since").value;
  const list = $("events-list");
  while (list.firstChild) list.removeChild(list.firstChild);
  const src = new EventSource(`/events/${encodeURIComponent(topic)}?since=${encodeURIComponent(since)}`);
  state.events = src;
  const add = (text) => {
    list.appendChild(el("li", {}, text));
    while (list.children.length > 200) list.removeChild(list.firstChild);
  };
  src.addEventListener("subscribed", () => { $("events-status").textContent = `subscribed to ${topic}`; });
  src.addEventListener("event", m => {
    const e = JSON.parse(m.data);
    add(`#${e.seq} from ${short(e.publisher)}: ${JSON.stringify("data" in e ? e.data : e.payload_base64)}`);
  });
  src.addEventListener("missed", m => add(`missed: ${m.data}`));
  src.addEventListener("error", m => {
    if (m.data) { add(`error: ${m.data}`); src.close(); }
    $("events-status").textContent = src.readyState === 2 ? "closed" : "reconnecting…";
  });
}

async function publish() {
  const topic = $("events-topic").value;
  let data;
  try { data = JSON.parse($("publish-data").value); } catch (err) { $("events-status").textContent = String(err); return; }
  const r = await fetch(`/events/${encodeURIComponent(topic)}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ data }),
  });
  const body = await r.json();
  $("events-status").textContent = r.ok ? `published #${body.seq}` : `${body.error.code}: ${body.error.message}`;
}

// -- refresh ----------------------------------------------------------------------------------

async function refresh() {
  const depth = $("graph-depth").value || "3";
  try {
    const [graph, nodes, services] = await Promise.all([
      getJSON(`/network/graph?depth=${encodeURIComponent(depth)}`),
      getJSON(`/network/nodes`),
      getJSON(`/network/services`),
    ]);
    state.local = graph.graph.local;
    state.services = services;
    $("local-node").textContent = `node ${state.local}`;
    drawGraph(graph);
    drawNodes(nodes);
    drawServices(services);
    $("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.setAttribute("data-ready", "1");
  } catch (err) {
    $("status").textContent = `error: ${err.message}`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("call-form").addEventListener("submit", submitCall);
  $("call-service").addEventListener("change", fillEndpointSelect);
  $("call-endpoint").addEventListener("change", fillExample);
  $("events-form").addEventListener("submit", subscribe);
  $("publish-submit").addEventListener("click", publish);
  $("graph-depth").addEventListener("change", refresh);
  refresh();
  setInterval(refresh, 5000);
});
