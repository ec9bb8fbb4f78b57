// The county's and a town's page: the drill-down county → town → community → grid (or by
// unit at any level) for one ISO week (Asia/Shanghai), its 8-week trend and the stations'
// check-in heatmap, with CSV/Excel downloads of every table. Everything comes from the JSON
// API (/v1/county/…, /v1/towns/{id}/…, /v1/communities/{id}/…) with the office's token.
/* global echarts */
"use strict";

const TOKEN_KEY = "volunteer.county.token";
const DAY = 864e5;
const RED = "#c8102e";
const LEVEL = {town: "镇（街道）", community: "社区", grid: "网格", unit: "单位"};
const CHILD = {county: "town", town: "community", community: "grid"};
const DAYS = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"];
const HEAT_STATIONS = 20;

// The path from the office's own scope down to what is shown: [{scope, id, name}, ...].
const state = {path: [], data: null};
const charts = {};

function pad(n) { return String(n).padStart(2, "0"); }
function esc(text) {
  // The tooltip is HTML: names come from the registry.
  return String(text).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
function pct(x) { return `${Math.round(x * 1000) / 10}%`; }
function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "—" : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

async function api(path) {
  return fetch(path, {headers: {Authorization: "Bearer " + desk.token()}, cache: "no-store"});
}
async function getJson(path) {
  const r = await api(path);
  if (r.status === 401) { desk.logout("登录已失效，请重新登录"); throw new Error("unauthorized"); }
  if (!r.ok) throw new Error(await responseErrorText(r));
  return r.json();
}

function weekOfUtcDate(d) {
  const day = (d.getUTCDay() + 6) % 7;
  const thursday = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - day + 3);
  const year = new Date(thursday).getUTCFullYear();
  const jan4 = Date.UTC(year, 0, 4);
  const monday1 = jan4 - ((new Date(jan4).getUTCDay() + 6) % 7) * DAY;
  return `${year}-W${pad(1 + Math.floor((thursday - monday1) / (7 * DAY)))}`;
}
function currentWeek() { return weekOfUtcDate(new Date(Date.now() + 8 * 3600e3)); }

function here() { return state.path[state.path.length - 1]; }
function base(level) {
  if (level.scope === "county") return "/v1/county";
  const kind = level.scope === "town" ? "towns" : "communities";
  return `/v1/${kind}/${encodeURIComponent(level.id)}`;
}
// The heatmap's window: the weeks chosen, ending with the selected week (1-52, default 8).
function heatQuery(extra) {
  const q = new URLSearchParams({week: $("week").value, weeks: $("heat-weeks").value || "8"});
  for (const [k, v] of Object.entries(extra || {})) q.set(k, v);
  return q.toString();
}
function query(extra) {
  const q = new URLSearchParams({week: $("week").value});
  if ($("by").value) q.set("by", $("by").value);
  for (const [k, v] of Object.entries(extra || {})) q.set(k, v);
  return q.toString();
}

// ---- drawing ------------------------------------------------------------------------------

function chart(id) {
  if (!charts[id]) charts[id] = echarts.init($(id), null, {renderer: "canvas"});
  return charts[id];
}

function drawRows(data) {
  const rows = data.items;
  const drillable = data.by !== "unit" && data.by !== "grid";
  chart("chart-rows").setOption({
    color: [RED, "#f4a259"],
    tooltip: {trigger: "axis", valueFormatter: (v) => `${v}%`},
    legend: {bottom: 0},
    grid: {left: 8, right: 24, top: 16, bottom: 40, containLabel: true},
    xAxis: {type: "category", data: rows.map((r) => r.name), axisLabel: {interval: 0, rotate: rows.length > 8 ? 30 : 0}},
    yAxis: {type: "value", max: 100, axisLabel: {formatter: "{value}%"}},
    series: [
      {name: "周服务率", type: "bar", data: rows.map((r) => Math.round(r.rate * 1000) / 10),
        cursor: drillable ? "pointer" : "default"},
      {name: "报到率", type: "bar", data: rows.map((r) => Math.round(r.reported_rate * 1000) / 10)},
    ],
  }, true);
  $("rows-hint").hidden = !drillable;
  const ch = chart("chart-rows");
  ch.off("click");
  if (drillable) ch.on("click", (p) => { const r = rows[p.dataIndex]; if (r && r.id) drill(r); });
}

function drawTrend(total) {
  chart("chart-trend").setOption({
    color: [RED, "#1a7f37"],
    tooltip: {trigger: "axis"},
    legend: {bottom: 0},
    grid: {left: 8, right: 24, top: 16, bottom: 40, containLabel: true},
    xAxis: {type: "category", data: total.trend.map((p) => p.week.slice(5))},
    yAxis: [
      {type: "value", max: 100, axisLabel: {formatter: "{value}%"}},
      {type: "value", name: "小时", splitLine: {show: false}},
    ],
    series: [
      {name: "服务率", type: "line", data: total.trend.map((p) => Math.round(p.rate * 1000) / 10)},
      {name: "服务时长", type: "bar", yAxisIndex: 1, data: total.trend.map((p) => p.hours)},
    ],
  }, true);
}

function drawHeatmap(heat) {
  const rows = heat.items.slice(0, HEAT_STATIONS).reverse();
  $("heatmap-weeks").textContent = heat.weeks.length ? `${heat.weeks[0]} 至 ${heat.weeks[heat.weeks.length - 1]}` : "";
  $("heatmap-empty").hidden = rows.length > 0;
  const data = [];
  let max = 1;
  rows.forEach((r, y) => r.counts.forEach((n, x) => { if (n) { data.push([x, y, n]); max = Math.max(max, n); } }));
  // A row per station: the box grows with them (at most HEAT_STATIONS).
  $("chart-heatmap").style.height = `${Math.max(220, 110 + rows.length * 26)}px`;
  chart("chart-heatmap").resize();
  const hours = [];
  for (const d of DAYS) for (let h = 0; h < 24; h++) hours.push(`${d} ${pad(h)}:00`);
  chart("chart-heatmap").setOption({
    tooltip: {formatter: (p) => `${esc(rows[p.value[1]].name)}<br>${hours[p.value[0]]}：${p.value[2]} 次`},
    grid: {left: 8, right: 16, top: 8, bottom: 64, containLabel: true},
    xAxis: {type: "category", data: hours, splitArea: {show: true},
      axisLabel: {interval: 23, formatter: (v) => v.slice(0, 2)}},
    yAxis: {type: "category", data: rows.map((r) => r.name)},
    visualMap: {min: 0, max, calculable: true, orient: "horizontal", left: "center", bottom: 0,
      inRange: {color: ["#fff5f5", RED]}},
    series: [{name: "签到次数", type: "heatmap", data}],
  }, true);
}

function renderTable(data) {
  const drillable = data.by !== "unit" && data.by !== "grid";
  $("col-name").textContent = LEVEL[data.by];
  $("col-lapsed").textContent = `连续${data.lapsed_weeks}周未服务`;
  $("kpi-lapsed-label").textContent = `连续${data.lapsed_weeks}周未服务`;
  const tbody = $("rows-table").querySelector("tbody");
  tbody.replaceChildren();
  for (const r of [...data.items, Object.assign({}, data.total, {name: "合计", total: true})]) {
    const tr = document.createElement("tr");
    if (r.total) tr.className = "total";
    cell(tr, r.name, "name");
    cell(tr, r.registered, "num");
    cell(tr, r.served, "num");
    cell(tr, r.excused, "num");
    cell(tr, pct(r.rate), "num");
    cell(tr, pct(r.reported_rate), "num");
    cell(tr, r.hours, "num");
    cell(tr, r.wishes_fulfilled, "num");
    cell(tr, r.lapsed, "num");
    cell(tr, r.no_shows, "num");
    cell(tr, r.trend.map((p) => `${Math.round(p.rate * 100)}`).join(" · "), "trend");
    const td = cell(tr, "");
    if (drillable && r.id && !r.total) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "small plain drill";
      b.textContent = "查看下级";
      b.addEventListener("click", () => drill(r));
      td.appendChild(b);
    }
    tbody.appendChild(tr);
  }
  $("rows-empty").hidden = data.items.length > 0;
}

function renderCrumbs() {
  const nav = $("crumbs");
  nav.replaceChildren();
  state.path.forEach((level, i) => {
    if (i) nav.append(" › ");
    if (i === state.path.length - 1) {
      const b = document.createElement("b");
      b.textContent = level.name;
      nav.appendChild(b);
    } else {
      const a = document.createElement("button");
      a.type = "button";
      a.className = "small plain crumb";
      a.textContent = level.name;
      a.addEventListener("click", () => { state.path = state.path.slice(0, i + 1); load(); });
      nav.appendChild(a);
    }
  });
}

// ---- loading ------------------------------------------------------------------------------

function drill(row) {
  const scope = CHILD[here().scope];
  if (!scope || scope === "grid") return;
  state.path.push({scope, id: row.id, name: row.name});
  $("by").value = "";
  load();
}

let loads = 0;  // a newer load's answer wins: an older one still in flight is dropped

async function load() {
  const seq = ++loads;
  const level = here();
  renderCrumbs();
  say("toolbar-msg", "正在加载……", true);
  delete document.body.dataset.loaded;
  try {
    const [data, heat] = await Promise.all([
      getJson(`${base(level)}/drilldown?${query()}`),
      getJson(`${base(level)}/heatmap?${heatQuery()}`),
    ]);
    if (seq !== loads) return;
    state.data = data;
    const t = data.total;
    $("kpi-registered").textContent = t.registered;
    $("kpi-served").textContent = t.served;
    $("kpi-rate").textContent = pct(t.rate);
    $("kpi-reported").textContent = pct(t.reported_rate);
    $("kpi-hours").textContent = t.hours;
    $("kpi-wishes").textContent = t.wishes_fulfilled;
    $("kpi-lapsed").textContent = t.lapsed;
    $("kpi-no-shows").textContent = t.no_shows;
    $("rows-title").textContent = `各${LEVEL[data.by]}服务率与报到率`;
    $("table-title").textContent = `${level.name} · 各${LEVEL[data.by]}明细（${data.week}）`;
    drawRows(data);
    drawTrend(t);
    renderTable(data);
    drawHeatmap(heat);
    say("toolbar-msg", "");
    // What is on screen, for whoever waits for it (the browser tests).
    document.body.dataset.loaded = `${level.scope}:${level.id || ""}:${data.by}`;
  } catch (e) {
    if (desk.token()) say("toolbar-msg", `加载失败：${e instanceof TypeError ? errorText("network") : e.message}`);
  }
}

async function download(kind, format) {
  const level = here();
  const week = $("week").value;
  const q = kind === "drilldown" ? query({format}) : heatQuery({format});
  const label = kind === "drilldown" ? `${LEVEL[(state.data && state.data.by) || CHILD[level.scope]]}明细` : "签到热力图";
  const filename = `${week}${level.name}${label}.${format}`;
  say("toolbar-msg", "正在生成文件……", true);
  const r = await api(`${base(level)}/${kind}?${q}`);
  if (!r.ok) { say("toolbar-msg", `下载失败：${await responseErrorText(r)}`); return; }
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await r.blob());
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  say("toolbar-msg", `已下载 ${filename}`, true);
}

async function start(entity, who) {
  const params = new URLSearchParams(location.search);
  $("week").value = /^\d{4}-W\d{2}$/.test(params.get("week") || "") ? params.get("week") : currentWeek();
  const top = who && who.role === "town"
    ? {scope: "town", id: who.subject_id, name: entity.name}
    : {scope: "county", id: null, name: "全县"};
  state.path = [top];
  $("app").hidden = false;
  $("login").hidden = true;
  say("who", who && who.role === "town" ? `${entity.name}（镇街）` : "县委组织部");
  document.title = `${top.name} · 区域化党建服务统计`;
  await load();
  const ro = new ResizeObserver(() => Object.values(charts).forEach((ch) => ch.resize()));
  for (const id of ["chart-rows", "chart-trend", "chart-heatmap"]) ro.observe($(id));
}

document.addEventListener("DOMContentLoaded", async () => {
  $("refresh").addEventListener("click", load);
  $("week").addEventListener("change", () => { if ($("week").value) load(); });
  $("by").addEventListener("change", load);
  $("heat-weeks").addEventListener("change", load);
  $("table-csv").addEventListener("click", () => download("drilldown", "csv"));
  $("table-xlsx").addEventListener("click", () => download("drilldown", "xlsx"));
  $("heatmap-csv").addEventListener("click", () => download("heatmap", "csv"));
  $("heatmap-xlsx").addEventListener("click", () => download("heatmap", "xlsx"));

  await desk.run({
    key: TOKEN_KEY,
    role: ["county", "town", "admin"],
    wrongRole: "该令牌不是县委组织部或镇（街道）的令牌",
    entityPath: (who) => (who.role === "town" ? "towns" : null),
    onSignedIn: start,
  });
});
