// tollgate dashboard: reads /admin/usage (same origin) and draws plain SVG charts.
// No library, nothing fetched from elsewhere. Every chart element carries its
// number in a data-value attribute (the exact decimal string for money), so a test
// or an operator's devtools can check the picture against the ledger.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#3b6fd8", "#e07b39", "#2f9e74", "#c2417a", "#7a5cc7", "#b8962e", "#4aa3b8", "#8a8f99"];
const RANGES = { "24h": { hours: 24, bucket: "hour" }, "7d": { hours: 168, bucket: "day" }, "30d": { hours: 720, bucket: "day" } };
let range = "7d";

function el(tag, attrs, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function money(v) {
  const n = Number(v);
  if (n === 0) return "$0";
  if (Math.abs(n) >= 100) return "$" + n.toFixed(0);
  if (Math.abs(n) >= 0.01) return "$" + n.toFixed(2);
  return "$" + n.toPrecision(2);
}
const count = (n) => (n >= 1e6 ? (n / 1e6).toFixed(1) + "M" : n >= 1e4 ? (n / 1e3).toFixed(1) + "k" : String(n));
const pct = (x) => (x * 100).toFixed(x > 0 && x < 0.1 ? 1 : 0) + "%";
const label = (v) => (v === null || v === undefined ? "(none)" : String(v));

async function usage(groupBy, from, to) {
  const q = new URLSearchParams({ from, to, group_by: groupBy });
  const key = sessionStorage.getItem("tollgate-admin-key");
  const resp = await fetch("/admin/usage?" + q, { headers: key ? { authorization: "Bearer " + key } : {} });
  if (resp.status === 401) throw Object.assign(new Error("unauthorized"), { unauthorized: true });
  if (!resp.ok) throw new Error("the usage API answered " + resp.status);
  return resp.json();
}

// Every bucket of the window, so quiet hours and days show as gaps, not as nothing.
function buckets(from, to, bucket) {
  const out = [];
  const step = bucket === "hour" ? 3600e3 : 86400e3;
  const t = new Date(from);
  if (bucket === "hour") t.setUTCMinutes(0, 0, 0); else t.setUTCHours(0, 0, 0, 0);
  for (let ms = t.getTime(); ms < new Date(to).getTime(); ms += step) {
    const iso = new Date(ms).toISOString();
    out.push(bucket === "hour" ? iso.slice(0, 13) + ":00:00Z" : iso.slice(0, 10));
  }
  return out;
}

function colors(names) {
  const m = new Map();
  [...names].sort().forEach((n, i) => m.set(n, PALETTE[i % PALETTE.length]));
  return m;
}

function legend(color) {
  const box = el("div", { class: "legend" });
  for (const [name, c] of color) {
    const item = el("span", {}, name);
    const sw = el("i");
    sw.style.background = c;
    item.prepend(sw);
    box.append(item);
  }
  return box;
}

function stacked(target, data, dim, bucket) {
  const box = document.getElementById(target);
  box.replaceChildren();
  const xs = buckets(data.from, data.to, bucket);
  const series = new Set(data.groups.map((g) => label(g.group[dim])));
  const color = colors(series);
  const byX = new Map(xs.map((x) => [x, []]));
  for (const g of data.groups) {
    const col = byX.get(g.group[bucket]);
    if (col && Number(g.cost_usd) > 0) col.push(g);
  }
  const max = Math.max(0, ...[...byX.values()].map((c) => c.reduce((s, g) => s + Number(g.cost_usd), 0)));
  const W = 420, H = 170, L = 44, B = 20, T = 6;
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "data-chart": target, "aria-label": box.parentElement.querySelector("figcaption").textContent });
  for (const f of [0, 0.5, 1]) {
    const y = T + (H - B - T) * (1 - f);
    svg.append(el("svg:line", { x1: L, x2: W, y1: y, y2: y, stroke: "#e3e6ec" }));
    svg.append(el("svg:text", { x: L - 4, y: y + 4, "text-anchor": "end" }, money(max * f)));
  }
  const bw = (W - L) / Math.max(xs.length, 1);
  xs.forEach((x, i) => {
    let y = H - B;
    for (const g of byX.get(x).sort((a, b) => label(a.group[dim]).localeCompare(label(b.group[dim])))) {
      const h = max > 0 ? (Number(g.cost_usd) / max) * (H - B - T) : 0;
      y -= h;
      const name = label(g.group[dim]);
      const r = el("svg:rect", { x: L + i * bw + bw * 0.12, y, width: bw * 0.76, height: Math.max(h, 0.5), fill: color.get(name), "data-series": name, "data-bucket": x, "data-value": g.cost_usd, "data-requests": g.requests });
      r.append(el("svg:title", {}, `${name} · ${x}: ${money(g.cost_usd)} (${g.requests} requests)`));
      svg.append(r);
    }
    const every = Math.ceil(xs.length / 8);
    if (i % every === 0) svg.append(el("svg:text", { x: L + i * bw + bw / 2, y: H - 6, "text-anchor": "middle" }, bucket === "hour" ? x.slice(11, 16) : x.slice(5)));
  });
  box.append(svg);
  if (series.size === 0) box.append(el("div", { class: "empty" }, "no requests in this window"));
  else box.append(legend(color));
}

function shares(data) {
  const box = document.getElementById("share-jurisdiction");
  box.replaceChildren();
  const names = data.groups.map((g) => label(g.group.jurisdiction));
  const color = colors(names);
  const tokens = (g) => g.input_tokens + g.output_tokens;
  const rows = [["requests", (g) => g.requests], ["tokens", tokens]];
  const W = 420, H = 110, L = 64;
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "data-chart": "share-jurisdiction" });
  rows.forEach(([what, f], row) => {
    const total = data.groups.reduce((s, g) => s + f(g), 0);
    const y = 10 + row * 48;
    svg.append(el("svg:text", { x: 0, y: y + 20 }, what));
    let x = L;
    for (const g of data.groups) {
      const v = f(g), w = total > 0 ? (v / total) * (W - L) : 0, name = label(g.group.jurisdiction);
      const r = el("svg:rect", { x, y, width: w, height: 30, fill: color.get(name), "data-series": name, "data-measure": what, "data-value": v });
      r.append(el("svg:title", {}, `${name}: ${count(v)} ${what} (${pct(total ? v / total : 0)})`));
      svg.append(r);
      if (w > 44) svg.append(el("svg:text", { x: x + 6, y: y + 20, fill: "#fff", class: "v" }, `${name} ${pct(v / total)}`));
      x += w;
    }
  });
  box.append(svg, legend(color));
}

function hbars(target, items, fmt) {
  const box = document.getElementById(target);
  box.replaceChildren();
  if (items.length === 0) { box.append(el("div", { class: "empty" }, "no requests in this window")); return; }
  const W = 420, row = 22, L = 110, H = items.length * row + 4;
  const max = Math.max(...items.map((i) => Number(i.value)), 0);
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "data-chart": target });
  items.forEach((it, i) => {
    const y = 2 + i * row, w = max > 0 ? (Number(it.value) / max) * (W - L - 70) : 0;
    svg.append(el("svg:text", { x: L - 6, y: y + 14, "text-anchor": "end" }, it.name.length > 16 ? it.name.slice(0, 15) + "…" : it.name));
    const r = el("svg:rect", { x: L, y: y + 2, width: Math.max(w, 1), height: row - 6, fill: it.color || PALETTE[0], "data-series": it.name, "data-value": it.value });
    r.append(el("svg:title", {}, `${it.name}: ${fmt(it.value)}`));
    svg.append(r, el("svg:text", { x: L + w + 6, y: y + 14, class: "v" }, fmt(it.value)));
  });
  box.append(svg);
}

function latency(t) {
  const items = [];
  for (const [what, p] of [["latency", t.latency_ms], ["ttfb", t.ttfb_ms]]) {
    for (const q of ["p50", "p95", "p99"]) {
      if (p[q] !== null) items.push({ name: `${what} ${q}`, value: p[q], color: what === "ttfb" ? PALETTE[2] : PALETTE[0] });
    }
  }
  hbars("latency", items, (v) => count(Number(v)) + " ms");
}

function tiles(t) {
  const box = document.getElementById("tiles");
  const per1k = t.requests > 0 ? Number(t.cost_usd) / t.requests * 1000 : 0;
  const list = [
    ["spend", money(t.cost_usd), "spend", t.cost_usd],
    ["requests", count(t.requests), "requests", t.requests],
    ["per1k", money(per1k), "cost per 1,000 requests", per1k],
    ["tokens", count(t.input_tokens + t.output_tokens), "tokens in + out", t.input_tokens + t.output_tokens],
    ["errors", pct(t.requests ? t.errors / t.requests : 0), `errors (${t.errors})`, t.errors],
    ["estimated", pct(t.estimated_share), `estimated usage (${t.estimated_requests})`, t.estimated_share],
    ["unpriced", pct(t.requests ? t.unpriced_requests / t.requests : 0), `unpriced (${t.unpriced_requests})`, t.unpriced_requests],
  ];
  box.replaceChildren(...list.map(([id, big, small, value]) => {
    const d = el("div", { class: "tile", "data-tile": id, "data-value": value, title: String(value) });
    d.append(el("b", {}, big), el("span", {}, small));
    return d;
  }));
}

async function load() {
  const status = document.getElementById("status");
  const { hours, bucket } = RANGES[range];
  const to = new Date(), from = new Date(to.getTime() - hours * 3600e3);
  const [f, t] = [from.toISOString(), to.toISOString()];
  status.className = "";
  status.textContent = "loading…";
  try {
    const [prov, model, jur, share, keys] = await Promise.all([
      usage("provider," + bucket, f, t), usage("model," + bucket, f, t), usage("jurisdiction," + bucket, f, t),
      usage("jurisdiction", f, t), usage("key", f, t),
    ]);
    document.getElementById("window").textContent = `${share.from} → ${share.to} (UTC)`;
    tiles(share.totals);
    stacked("spend-provider", prov, "provider", bucket);
    stacked("spend-model", model, "model", bucket);
    stacked("spend-jurisdiction", jur, "jurisdiction", bucket);
    shares(share);
    const top = keys.groups.map((g) => ({ name: label(g.group.key), value: g.cost_usd }))
      .sort((a, b) => Number(b.value) - Number(a.value)).slice(0, 8);
    hbars("top-keys", top, money);
    latency(share.totals);
    status.textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.loaded = "true";
  } catch (e) {
    if (e.unauthorized) {
      sessionStorage.removeItem("tollgate-admin-key");
      document.getElementById("login").showModal();
      status.textContent = "waiting for the admin key";
      return;
    }
    status.className = "error";
    status.textContent = "could not load usage: " + e.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login-form").addEventListener("submit", () => {
    sessionStorage.setItem("tollgate-admin-key", document.getElementById("login-key").value);
    load();
  });
  for (const b of document.querySelectorAll("#ranges button")) {
    b.addEventListener("click", () => {
      range = b.dataset.range;
      document.querySelectorAll("#ranges button").forEach((x) => x.classList.toggle("on", x === b));
      load();
    });
  }
  load();
  setInterval(load, 60000);
});
