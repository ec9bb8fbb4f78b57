// The community organizer's desk: one ISO week (Asia/Shanghai) of the community in charts and
// lists, the review queue with its actions, posters, rankings and activation codes. Everything
// comes from the JSON API with the organizer's bearer token, kept in this browser only.
/* global echarts */
"use strict";

const TOKEN_KEY = "volunteer.org.token";
const DAY = 864e5;
const TREND_WEEKS = 8;
const RED = "#c8102e";
const FLAG_LABEL = {
  forgotten_checkout: "忘记签退",
  over_cap: "超过时长上限",
  checkout_without_checkin: "只有签退",
  auto_closed: "自动结束",
};
const REVIEW_ERRORS = {
  session_open: "该服务尚未结束，结束后再审核",
  review_window_closed: "已超过可审核期限",
  session_not_found: "记录不存在或不属于本社区",
  invalid_request: "请填写核定时长和理由",
};

const state = {community: null, members: new Map(), grids: new Map(), stations: new Map()};
const charts = {};

// ---- small helpers ------------------------------------------------------------------------

function pad(n) { return String(n).padStart(2, "0"); }
function local(iso) {
  if (!iso) return "—";
  const d = new Date(new Date(iso).getTime() + 8 * 3600e3);  // Asia/Shanghai, whatever the PC says
  return `${d.getUTCMonth() + 1}月${d.getUTCDate()}日 ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
}
function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "—" : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}
function fillTable(tableId, emptyId, rows, build) {
  const tbody = $(tableId).querySelector("tbody");
  tbody.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement("tr");
    build(tr, r);
    tbody.appendChild(tr);
  }
  if (emptyId) $(emptyId).hidden = rows.length > 0;
}

async function api(path, options) {
  const opts = options || {};
  const headers = Object.assign({Authorization: "Bearer " + desk.token()}, opts.headers || {});
  return fetch(path, Object.assign({}, opts, {headers, cache: "no-store"}));
}
async function getJson(path) {
  const r = await api(path);
  if (r.status === 401) { desk.logout("登录已失效，请重新登录"); throw new Error("unauthorized"); }
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return r.json();
}
async function allPages(path) {
  // Registry lists are paged (at most 500 a page); a community has at most a few thousand.
  const out = [];
  for (let offset = 0; ; offset += 500) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await getJson(`${path}${sep}limit=500&offset=${offset}`);
    out.push(...page.items);
    if (out.length >= page.total || page.items.length === 0) return out;
  }
}

// ---- ISO weeks in Asia/Shanghai -----------------------------------------------------------

function weekOfUtcDate(d) {
  // `d`'s UTC fields are read as a calendar day.
  const day = (d.getUTCDay() + 6) % 7;
  const thursday = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - day + 3);
  const year = new Date(thursday).getUTCFullYear();
  return `${year}-W${pad(1 + Math.floor((thursday - weekMonday(`${year}-W01`)) / (7 * DAY)))}`;
}
function weekMonday(week) {
  const [y, w] = week.split("-W").map(Number);
  const jan4 = Date.UTC(y, 0, 4);
  const jan4day = (new Date(jan4).getUTCDay() + 6) % 7;
  return jan4 - jan4day * DAY + (w - 1) * 7 * DAY;
}
function currentWeek() { return weekOfUtcDate(new Date(Date.now() + 8 * 3600e3)); }
function shiftWeek(week, n) { return weekOfUtcDate(new Date(weekMonday(week) + n * 7 * DAY)); }
function weekLabel(week) {
  const m = new Date(weekMonday(week));
  return `${m.getUTCMonth() + 1}/${m.getUTCDate()}`;
}
function monthOfWeek(week) {
  const thu = new Date(weekMonday(week) + 3 * DAY);
  return `${thu.getUTCFullYear()}-${pad(thu.getUTCMonth() + 1)}`;
}

// ---- charts -------------------------------------------------------------------------------

function chart(id) {
  if (!charts[id]) charts[id] = echarts.init($(id), null, {renderer: "canvas"});
  return charts[id];
}

function drawServed(weekly) {
  chart("chart-served").setOption({
    color: ["#1a7f37", "#d9d9d9"],
    tooltip: {trigger: "item", formatter: "{b}：{c} 人（{d}%）"},
    legend: {bottom: 0},
    title: {text: `${Math.round(weekly.rate * 100)}%`, subtext: "参与率", left: "center", top: "38%",
      textStyle: {fontSize: 26, color: RED}},
    series: [{
      name: "本周服务", type: "pie", radius: ["45%", "70%"], avoidLabelOverlap: true,
      label: {formatter: "{b}\n{c} 人"},
      data: [
        {name: "已服务", value: weekly.members_served},
        {name: "未服务", value: weekly.members_registered - weekly.members_served},
      ],
    }],
  }, true);
}

function drawStations(breakdown) {
  // The community's members' service elsewhere is part of the week's hours: one more bar, so
  // the bars add up to the KPI.
  const away = breakdown.elsewhere;
  const rows = away && away.hours > 0
    ? [...breakdown.stations, {name: "其他社区站点", hours: away.hours, members_served: away.members_served}]
    : breakdown.stations;
  chart("chart-stations").setOption({
    color: [RED, "#f4a259"],
    tooltip: {trigger: "axis"},
    legend: {bottom: 0},
    grid: {left: 8, right: 24, top: 16, bottom: 40, containLabel: true},
    xAxis: {type: "value"},
    yAxis: {type: "category", data: rows.map((s) => s.name), inverse: true},
    series: [
      {name: "服务时长（小时）", type: "bar", data: rows.map((s) => s.hours)},
      {name: "服务人数", type: "bar", data: rows.map((s) => s.members_served)},
    ],
  }, true);
}

function drawGrids(breakdown) {
  const rows = breakdown.grids;
  chart("chart-grids").setOption({
    color: ["#d9d9d9", "#1a7f37", RED],
    tooltip: {trigger: "axis"},
    legend: {bottom: 0},
    grid: {left: 8, right: 8, top: 24, bottom: 40, containLabel: true},
    xAxis: {type: "category", data: rows.map((g) => g.name), axisLabel: {interval: 0, rotate: rows.length > 6 ? 30 : 0}},
    yAxis: [{type: "value", name: "人"}, {type: "value", name: "小时"}],
    series: [
      {name: "报到人数", type: "bar", data: rows.map((g) => g.members_registered)},
      {name: "已服务人数", type: "bar", data: rows.map((g) => g.members_served)},
      {name: "服务时长（小时）", type: "line", yAxisIndex: 1, data: rows.map((g) => g.hours)},
    ],
  }, true);
}

function drawTrend(weeks, results) {
  chart("chart-trend").setOption({
    color: [RED, "#3a6ea5"],
    tooltip: {trigger: "axis"},
    legend: {bottom: 0},
    grid: {left: 8, right: 8, top: 32, bottom: 40, containLabel: true},
    xAxis: {type: "category", data: weeks.map(weekLabel)},
    yAxis: [{type: "value", name: "参与率 %", max: 100}, {type: "value", name: "小时"}],
    series: [
      {name: "参与率（%）", type: "line",
        data: results.map((r) => (r ? Math.round(r.rate * 1000) / 10 : null))},
      {name: "服务时长（小时）", type: "line", yAxisIndex: 1,
        data: results.map((r) => (r ? r.hours : null))},
    ],
  }, true);
}

// ---- lists --------------------------------------------------------------------------------

function memberName(id) { const m = state.members.get(id); return m ? m.name : id; }
function gridName(id) { const g = id && state.grids.get(id); return g ? g.name : id ? id : "—"; }

function renderNotServed(ids) {
  const rows = ids.map((id) => state.members.get(id) || {id, name: id, phone: null, grid_id: null});
  rows.sort((a, b) => (a.grid_id || "").localeCompare(b.grid_id || "") || a.name.localeCompare(b.name, "zh-CN"));
  say("not-served-count", `${rows.length} 人`);
  fillTable("not-served-table", "not-served-empty", rows, (tr, m) => {
    tr.dataset.memberId = m.id;
    cell(tr, m.name);
    const td = cell(tr, "");
    if (m.phone) {
      const a = document.createElement("a");
      a.href = `tel:${m.phone}`;
      a.textContent = m.phone;
      td.appendChild(a);
    } else td.textContent = "—";
    cell(tr, gridName(m.grid_id));
    activationButton(cell(tr, ""), m);
  });
}

function renderOnSite(onsite) {
  say("kpi-onsite", String(onsite.total));
  fillTable("onsite-table", "onsite-empty", onsite.items, (tr, s) => {
    cell(tr, s.member_name); cell(tr, s.phone); cell(tr, s.station_name); cell(tr, local(s.since));
  });
}

function renderReview(queue) {
  say("kpi-review", String(queue.total));
  say("review-count", queue.total ? `${queue.total} 条` : "");
  fillTable("review-table", "review-empty", queue.items, (tr, s) => {
    tr.dataset.sessionId = s.id;
    cell(tr, s.member_name || s.member_id);
    cell(tr, (state.stations.get(s.station_id) || {}).name || s.station_id);
    cell(tr, local(s.start));
    cell(tr, local(s.end));
    cell(tr, s.hours.toFixed(2), "num");
    cell(tr, s.flags.filter((f) => FLAG_LABEL[f]).map((f) => FLAG_LABEL[f]).join("、"), "flag");
    const hours = document.createElement("input");
    hours.type = "number"; hours.min = "0"; hours.max = "24"; hours.step = "0.25";
    hours.className = "hours"; hours.placeholder = "小时"; hours.setAttribute("aria-label", "核定时长");
    cell(tr, "").appendChild(hours);
    const reason = document.createElement("input");
    reason.className = "reason"; reason.placeholder = "核定或不予认定的理由"; reason.setAttribute("aria-label", "理由");
    cell(tr, "").appendChild(reason);
    const td = cell(tr, "");
    for (const [action, label] of [["approve", "通过"], ["adjust", "核定"], ["reject", "不予认定"]]) {
      const b = document.createElement("button");
      b.type = "button"; b.className = `small ${action}`; b.dataset.action = action; b.textContent = label;
      b.addEventListener("click", () => review(tr, s, action, hours, reason));
      td.appendChild(b);
    }
  });
}

async function review(tr, s, action, hoursInput, reasonInput) {
  const body = {action};
  if (action === "adjust") {
    if (hoursInput.value === "") { say("toolbar-msg", "核定须填写核定时长"); hoursInput.focus(); return; }
    body.credited_hours = Number(hoursInput.value);
  }
  if (action !== "approve") {
    if (!reasonInput.value.trim()) { say("toolbar-msg", "核定或不予认定须填写理由"); reasonInput.focus(); return; }
    body.reason = reasonInput.value.trim();
  }
  tr.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  const r = await api(`/v1/sessions/${encodeURIComponent(s.id)}/review`, {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  });
  if (r.status === 202) {
    tr.classList.add("done");
    tr.dataset.reviewed = action;
    const label = {approve: "已通过", adjust: `已核定为 ${body.credited_hours} 小时`, reject: "已不予认定"}[action];
    say("toolbar-msg", `${memberName(s.member_id) || s.member_name}：${label}，数据将在几秒内更新`, true);
    // The decision reaches the totals through the log within seconds.
    setTimeout(load, 3000);
  } else {
    const err = await r.json().catch(() => ({}));
    const code = err.error && err.error.code;
    say("toolbar-msg", `审核未成功：${REVIEW_ERRORS[code] || (err.error && err.error.message) || r.status}`);
    tr.querySelectorAll("button").forEach((b) => { b.disabled = false; });
  }
}

function activationButton(td, m) {
  const b = document.createElement("button");
  b.type = "button"; b.className = "small plain"; b.textContent = "激活码";
  b.title = "为该党员生成手机绑定激活码";
  b.addEventListener("click", () => activate(m));
  td.appendChild(b);
}

async function activate(m) {
  const r = await api("/v1/activations", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({member_id: m.id}),
  });
  const body = await r.json().catch(() => ({}));
  if (r.status !== 201) {
    say("toolbar-msg", `生成激活码失败：${(body.error && body.error.message) || r.status}`);
    return;
  }
  say("activation-name", m.name);
  say("activation-code", body.code);
  say("activation-url", body.url);
  say("activation-expires", local(body.expires_at));
  $("activation").hidden = false;
  $("activation").scrollIntoView({block: "nearest"});
}

async function searchMembers(ev) {
  if (ev) ev.preventDefault();
  const q = $("member-q").value.trim();
  const c = encodeURIComponent(state.community.id);
  const page = await getJson(`/v1/members?community_id=${c}&limit=20${q ? `&q=${encodeURIComponent(q)}` : ""}`);
  fillTable("members-table", null, page.items, (tr, m) => {
    cell(tr, m.name); cell(tr, m.phone); activationButton(cell(tr, ""), m);
  });
}

async function loadRanking() {
  const period = $("ranking-month").value;
  if (!period) return;
  const r = await getJson(`/v1/rankings?kind=communities&period=${encodeURIComponent(period)}`);
  say("ranking-period", `${r.period}（${r.weeks} 周）`);
  say("ranking-rule", `评比规则：${r.rule.text || ""}`);
  fillTable("ranking-table", null, r.items, (tr, i) => {
    if (i.id === state.community.id) tr.className = "mine";
    cell(tr, i.red_flag ? `${i.rank}（流动红旗）` : i.rank);
    cell(tr, i.name);
    cell(tr, `${Math.round(i.participation_rate * 1000) / 10}%`, "num");
    cell(tr, i.hours_per_member, "num");
    cell(tr, i.feedback_avg === null ? "—" : i.feedback_avg, "num");
    cell(tr, i.score, "num");
  });
}

async function openPosters() {
  // The sheet needs the bearer token, so it is fetched here and shown from a blob; the window
  // is opened first, inside the click, so a popup blocker lets it through.
  const w = window.open("about:blank", "_blank");
  say("toolbar-msg", "正在生成站点二维码……", true);
  const r = await api(`/v1/communities/${encodeURIComponent(state.community.id)}/posters`);
  if (!r.ok) {
    if (w) w.close();
    say("toolbar-msg", `生成站点二维码失败（${r.status}）`);
    return;
  }
  const url = URL.createObjectURL(new Blob([await r.text()], {type: "text/html;charset=utf-8"}));
  if (w) w.location.href = url; else window.open(url, "_blank");
  say("toolbar-msg", "已在新窗口打开站点二维码，请在该窗口中打印（A4，每页一张）", true);
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

// ---- loading ------------------------------------------------------------------------------

async function loadOnce() {
  const c = encodeURIComponent(state.community.id);
  const [members, grids, stations] = await Promise.all([
    allPages(`/v1/members?community_id=${c}`),
    allPages(`/v1/grids?community_id=${c}`),
    allPages(`/v1/stations?community_id=${c}`),
  ]);
  state.members = new Map(members.map((m) => [m.id, m]));
  state.grids = new Map(grids.map((g) => [g.id, g]));
  state.stations = new Map(stations.map((s) => [s.id, s]));
}

// A trend point needs only the week's figures, not who has not served: the county's weekly
// figures (confined to this organizer's community by the API) carry exactly those.
async function trendWeek(week) {
  const county = await getJson(`/v1/weekly/communities?week=${week}`);
  return county.items.find((i) => i.community_id === state.community.id) || null;
}

let loading = null;

async function load() {
  if (loading) return loading;
  loading = (async () => {
    const week = $("week").value || currentWeek();
    const c = encodeURIComponent(state.community.id);
    const weeks = [];
    for (let i = TREND_WEEKS - 1; i >= 0; i--) weeks.push(shiftWeek(week, -i));
    document.body.dataset.loaded = "";
    say("toolbar-msg", "正在加载……", true);
    try {
      const [weekly, breakdown, trend, queue, onsite] = await Promise.all([
        getJson(`/v1/communities/${c}/weekly?week=${week}`),
        getJson(`/v1/communities/${c}/weekly/breakdown?week=${week}`),
        Promise.all(weeks.map((w) => trendWeek(w).catch(() => null))),
        getJson(`/v1/communities/${c}/review-queue`),
        getJson(`/v1/communities/${c}/on-site`),
      ]);
      say("kpi-registered", String(weekly.members_registered));
      say("kpi-served", String(weekly.members_served));
      say("kpi-rate", `${Math.round(weekly.rate * 1000) / 10}%`);
      say("kpi-hours", String(weekly.hours));
      drawServed(weekly);
      drawStations(breakdown);
      drawGrids(breakdown);
      drawTrend(weeks, trend);
      renderNotServed(weekly.not_served);
      renderReview(queue);
      renderOnSite(onsite);
      say("toolbar-msg", "");
      document.body.dataset.loaded = week;
    } catch (e) {
      if (desk.token()) say("toolbar-msg", `加载失败，请稍后刷新（${e.message}）`);
    }
  })();
  try { await loading; } finally { loading = null; }
}

// ---- start (after desk.run has signed in) --------------------------------------------------

async function start() {
  const params = new URLSearchParams(location.search);
  $("week").value = /^\d{4}-W\d{2}$/.test(params.get("week") || "") ? params.get("week") : currentWeek();
  $("ranking-month").value = monthOfWeek($("week").value);
  $("app").hidden = false;
  $("login").hidden = true;
  say("who", state.community.name);
  document.title = `${state.community.name} · 社区工作台`;
  await loadOnce();
  await Promise.all([load(), loadRanking(), searchMembers()]);
  window.addEventListener("resize", () => Object.values(charts).forEach((ch) => ch.resize()));
}

document.addEventListener("DOMContentLoaded", async () => {
  $("refresh").addEventListener("click", load);
  $("week").addEventListener("change", () => { if ($("week").value) load(); });
  $("ranking-month").addEventListener("change", loadRanking);
  $("posters").addEventListener("click", openPosters);
  $("member-search").addEventListener("submit", searchMembers);

  await desk.run({
    key: TOKEN_KEY,
    role: "organizer",
    wrongRole: "该令牌不是社区组织者令牌",
    entityPath: "communities",
    onSignedIn: async (entity) => { state.community = entity; await start(); },
  });
});
