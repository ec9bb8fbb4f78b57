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
  below_minimum: "不足每周最低时长",
  backdated_poster: "纸质码延后提交",
  auto_closed: "自动结束",
  assisted: "代签到",
  team: "团队签到",
};
// Anomaly flags computed when the queue is read (services/anomalies.py): for checking only.
const ANOMALY_LABEL = {
  overlap: "异常：时间重叠",
  too_fast: "异常：站点间移动过快",
  shared_device: "异常：同一手机为多人签到",
};
// What the server accepts for an adjustment (POST /v1/sessions/{id}/review: 0-24 hours).
const MAX_CREDITED_HOURS = 24;
const REVIEW_ERRORS = {
  session_open: "该服务尚未结束，结束后再审核",
  review_window_closed: "已超过可审核期限",
  session_not_found: "记录不存在或不属于本社区",
  invalid_request: `核定时长须在 0～${MAX_CREDITED_HOURS} 小时之间，核定和不予认定须填写理由`,
};
const BINDING_LABEL = {bound: "已绑定", code_issued: "已发激活码", unbound: "未绑定"};

const state = {community: null, members: new Map(), grids: new Map(), stations: new Map(), roster: []};
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
  if (!r.ok) throw new Error(await responseErrorText(r));
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

// ---- charts -------------------------------------------------------------------------------

function chart(id) {
  if (!charts[id]) charts[id] = echarts.init($(id), null, {renderer: "canvas"});
  return charts[id];
}

function drawServed(weekly) {
  chart("chart-served").setOption({
    color: ["#1a7f37", "#d9d9d9"],
    tooltip: {trigger: "item", formatter: "{b}：{c} 人（{d}%）"},
    // The counts ride on the legend: labels beside the ring were cut to "…" on a phone.
    legend: {bottom: 0, formatter: (name) => `${name} ${name === "已服务" ? weekly.members_served
      : weekly.members_registered - weekly.members_served} 人`},
    title: {text: `${Math.round(weekly.rate * 100)}%`, subtext: "参与率", left: "center", top: "38%",
      textStyle: {fontSize: 26, color: RED}},
    series: [{
      name: "本周服务", type: "pie", radius: ["45%", "70%"], avoidLabelOverlap: true,
      label: {show: false},
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
    yAxis: {type: "category", data: rows.map((s) => s.name), inverse: true,
      axisLabel: {width: 96, overflow: "truncate"}},
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
    // Every grid named, in the API's (natural) order; long names cut short, not overlapping.
    xAxis: {type: "category", data: rows.map((g) => g.name),
      axisLabel: {interval: 0, rotate: rows.length > 4 ? 45 : 0, width: 84, overflow: "truncate",
        hideOverlap: true}},
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

// A phone masked (138****0004) with 显示号码: a tap asks for the number in full (the server logs
// who read it, 个人信息保护法) and turns it into a link that calls.
function phoneCell(td, memberId, masked, revealable) {
  td.textContent = "";
  const span = document.createElement("span");
  span.className = "phone-masked";
  span.textContent = masked || "—";
  td.appendChild(span);
  if (!masked || !revealable) return;
  const b = document.createElement("button");
  b.type = "button"; b.className = "small plain reveal"; b.textContent = "显示号码";
  b.title = "查看完整手机号码（会记录查看人和时间）";
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      const r = await getJson(`/v1/members/${encodeURIComponent(memberId)}/phone`);
      const a = document.createElement("a");
      a.href = `tel:${r.phone}`;
      a.textContent = r.phone;
      a.className = "phone-full";
      td.replaceChildren(a);
    } catch (e) {
      b.disabled = false;
      b.textContent = "重试";
      b.title = e instanceof TypeError ? errorText("network") : e.message;
    }
  });
  td.appendChild(b);
}

function renderNotServed(ids) {
  // In the roster's order (by name, natural order: services/natural.py); phones masked, a tap
  // reveals one to call (logged).
  const wanted = new Set(ids);
  const order = state.roster.map((r) => r.member_id).filter((id) => wanted.has(id));
  for (const id of ids) if (!order.includes(id)) order.push(id);
  const rows = order.map((id) => state.members.get(id) || {id, name: id, phone: null, grid_id: null});
  say("not-served-count", `${rows.length} 人`);
  fillTable("not-served-table", "not-served-empty", rows, (tr, m) => {
    tr.dataset.memberId = m.id;
    cell(tr, m.name);
    // The list holds this community's own members: its organizer may call each of them.
    phoneCell(cell(tr, ""), m.id, m.phone, true);
    cell(tr, gridName(m.grid_id));
    activationButton(cell(tr, ""), m);
  });
}

function renderOnSite(onsite) {
  say("kpi-onsite", String(onsite.total));
  fillTable("onsite-table", "onsite-empty", onsite.items, (tr, s) => {
    tr.dataset.memberId = s.member_id;
    cell(tr, s.member_name);
    phoneCell(cell(tr, ""), s.member_id, s.phone, s.phone_revealable);
    cell(tr, s.station_name); cell(tr, local(s.since));
  });
}

function renderReview(queue) {
  say("kpi-review", String(queue.total));
  say("review-count", queue.total ? `${queue.total} 条` : "");
  fillTable("review-table", "review-empty", queue.items, (tr, s) => {
    tr.dataset.sessionId = s.id;
    cell(tr, s.member_name || s.member_id);
    cell(tr, (state.stations.get(s.station_id) || {}).name || s.station_id);
    // A check-out without a check-in has no start: its session begins and ends at the check-out.
    const noCheckin = s.flags.includes("checkout_without_checkin");
    cell(tr, noCheckin ? "无签到" : local(s.start), noCheckin ? "muted" : "");
    cell(tr, local(s.end));
    cell(tr, s.hours.toFixed(2), "num");
    const reasons = [
      ...s.flags.filter((f) => FLAG_LABEL[f]).map((f) => FLAG_LABEL[f]),
      ...(s.anomalies || []).map((a) => ANOMALY_LABEL[a] || a),
    ];
    cell(tr, reasons.join("、"), "flag");
    const hours = document.createElement("input");
    hours.type = "number"; hours.min = "0"; hours.max = String(MAX_CREDITED_HOURS); hours.step = "0.25";
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
    // The outcome is said here, beside the row being worked on, not in the toolbar far above.
    const msg = document.createElement("span");
    msg.className = "msg row-msg"; msg.setAttribute("role", "status");
    td.appendChild(msg);
  });
}

function rowSay(tr, text, ok) {
  const el = tr.querySelector(".row-msg");
  el.textContent = text;
  el.classList.toggle("ok", !!ok);
}

async function review(tr, s, action, hoursInput, reasonInput) {
  const body = {action};
  if (action === "adjust") {
    const h = Number(hoursInput.value);
    if (hoursInput.value === "") { rowSay(tr, "核定须填写核定时长"); hoursInput.focus(); return; }
    if (!Number.isFinite(h) || h < 0 || h > MAX_CREDITED_HOURS) {
      rowSay(tr, `核定时长须在 0～${MAX_CREDITED_HOURS} 小时之间`); hoursInput.focus(); return;
    }
    body.credited_hours = h;
  }
  if (action !== "approve") {
    if (!reasonInput.value.trim()) { rowSay(tr, "核定或不予认定须填写理由"); reasonInput.focus(); return; }
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
    rowSay(tr, `${label}，数据将在几秒内更新`, true);
    // The decision reaches the totals through the log within seconds.
    setTimeout(load, 3000);
  } else {
    const err = await r.json().catch(() => ({}));
    const code = err.error && err.error.code;
    rowSay(tr, `审核未成功：${REVIEW_ERRORS[code] || errorText(code, r.status)}`);
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
    say("toolbar-msg", `生成激活码失败：${errorText(body.error && body.error.code, r.status)}`);
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
  // In the roster's (natural) order, the one order every list of members here follows.
  const place = new Map(state.roster.map((r, i) => [r.member_id, i]));
  const items = [...page.items].sort((a, b) => (place.get(a.id) ?? 1e9) - (place.get(b.id) ?? 1e9));
  fillTable("members-table", null, items, (tr, m) => {
    cell(tr, m.name); cell(tr, m.phone); activationButton(cell(tr, ""), m);
  });
}

// ---- 代签到 and team check-in ------------------------------------------------------------

function renderAssistedStations() {
  const select = $("assisted-station");
  if (select.options.length) return;
  for (const st of state.stations.values()) {
    const o = document.createElement("option");
    o.value = st.id; o.textContent = st.name;
    select.appendChild(o);
  }
}

function leaderSelect(m) {
  const select = document.createElement("select");
  select.className = "leader";
  select.setAttribute("aria-label", `${m.name}的队长`);
  const none = document.createElement("option");
  none.value = ""; none.textContent = "无";
  select.appendChild(none);
  for (const other of state.members.values()) {
    if (other.id === m.member_id || other.status !== "active") continue;
    const o = document.createElement("option");
    o.value = other.id; o.textContent = other.name;
    select.appendChild(o);
  }
  const current = state.members.get(m.member_id);
  select.value = (current && current.team_leader_id) || "";
  select.addEventListener("change", async () => {
    const r = await api(`/v1/members/${encodeURIComponent(m.member_id)}`, {
      method: "PATCH", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({team_leader_id: select.value || null}),
    });
    if (r.ok) {
      state.members.set(m.member_id, await r.json());
      say("assisted-msg", select.value ? `已指定 ${m.name} 的队长` : `已取消 ${m.name} 的队长`, true);
    } else {
      say("assisted-msg", `指定队长未成功：${await responseErrorText(r)}`);
    }
  });
  return select;
}

async function searchAssisted(ev) {
  if (ev) ev.preventDefault();
  const q = $("assisted-q").value.trim();
  if (!q) return;
  say("assisted-msg", "");
  const c = encodeURIComponent(state.community.id);
  const found = await getJson(`/v1/communities/${c}/assisted/members?q=${encodeURIComponent(q)}`);
  say("assisted-msg", found.items.length ? "" : "没有找到该党员，请核对姓名或手机号码");
  fillTable("assisted-table", null, found.items, (tr, m) => {
    tr.dataset.memberId = m.member_id;
    const pick = document.createElement("input");
    pick.type = "checkbox"; pick.className = "pick"; pick.setAttribute("aria-label", `选择${m.name}`);
    cell(tr, "").appendChild(pick);
    cell(tr, m.name);
    cell(tr, m.phone || "—");
    const where = m.open_station_id && state.stations.get(m.open_station_id);
    cell(tr, m.open_station_id ? `服务中（${where ? where.name : "其他站点"}）` : "");
    cell(tr, "").appendChild(leaderSelect(m));
    const td = cell(tr, "");
    for (const [action, label] of [["in", "签到"], ["out", "签退"]]) {
      const b = document.createElement("button");
      b.type = "button"; b.className = "small"; b.dataset.action = action; b.textContent = label;
      b.addEventListener("click", () => assist([m], action));
      td.appendChild(b);
    }
  });
}

async function assist(members, action) {
  const station = $("assisted-station").value;
  if (!station) { say("assisted-msg", "请先选择站点"); return; }
  const c = encodeURIComponent(state.community.id);
  say("assisted-msg", "正在提交……");
  const done = [];
  for (const m of members) {
    const r = await postJson(`/v1/communities/${c}/assisted/checkins`, {
      member_id: m.member_id, station_id: station, action, client_event_id: crypto.randomUUID(),
    });
    if (!r.ok) {
      say("assisted-msg", `${m.name}：${errorText(r.body.error && r.body.error.code, r.status)}`);
      return;
    }
    done.push(m.name);
  }
  say("assisted-msg", `已为 ${done.join("、")} ${action === "in" ? "签到" : "签退"}`, true);
  setTimeout(load, 3000);
}

function assistSelected(action) {
  const rows = [...$("assisted-table").querySelectorAll("tbody tr")]
    .filter((tr) => tr.querySelector(".pick").checked);
  if (!rows.length) { say("assisted-msg", "请先勾选党员"); return; }
  const members = rows.map((tr) => ({
    member_id: tr.dataset.memberId, name: tr.children[1].textContent,
  }));
  assist(members, action);
}

async function loadRanking() {
  // No month chosen yet: the API's default, the latest month whose weeks have all ended.
  const period = $("ranking-month").value;
  const q = period ? `&period=${encodeURIComponent(period)}` : "";
  const r = await getJson(`/v1/rankings?kind=communities${q}`);
  if (!period) $("ranking-month").value = r.period;
  say("ranking-period", `${r.period}（${r.weeks} 周）`);
  say("ranking-rule", `评比规则：${r.rule.text || ""}`);
  fillTable("ranking-table", null, r.items, (tr, i) => {
    if (i.id === state.community.id) tr.className = "mine";
    tr.dataset.rank = String(i.rank);
    cell(tr, i.red_flag ? `${i.rank}（流动红旗）` : i.rank);
    cell(tr, i.name);
    cell(tr, `${Math.round(i.participation_rate * 1000) / 10}%`, "num");
    cell(tr, `${i.hours_per_member} 小时`, "num");
    cell(tr, i.feedback_avg === null ? "—" : `${i.feedback_avg} 分`, "num");
    cell(tr, `${i.score} 分`, "num");
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

function renderPrevious(prev, week) {
  const label = `上周（${weekLabel(week)}起）`;
  if (!prev) {
    for (const k of ["registered", "served", "rate", "hours"]) say(`prev-${k}`, `${label}：—`);
    return;
  }
  say("prev-registered", `${label}：${prev.members_registered}`);
  say("prev-served", `${label}：${prev.members_served}`);
  say("prev-rate", `${label}：${Math.round(prev.rate * 1000) / 10}%`);
  say("prev-hours", `${label}：${prev.hours}`);
}

function renderRoster() {
  const q = $("roster-q").value.trim();
  const rows = q
    ? state.roster.filter((r) => r.name.includes(q) || (r.grid_name || "").includes(q))
    : state.roster;
  say("roster-count", `${state.roster.length} 人`);
  fillTable("roster-table", null, rows, (tr, r) => {
    tr.dataset.memberId = r.member_id;
    cell(tr, r.name, "name");
    cell(tr, r.phone);
    cell(tr, r.grid_name);
    cell(tr, BINDING_LABEL[r.binding] || r.binding);
    cell(tr, r.served_this_week === null ? "不在册"
      : r.served_this_week ? `已服务 ${r.week_hours} 小时`
      : r.excused_this_week ? "请假" : "未服务");
    cell(tr, `${r.year_hours} 小时`, "num");
    cell(tr, r.last_service ? local(r.last_service) : "从未服务");
    const b = document.createElement("button");
    b.type = "button"; b.className = "small plain"; b.textContent = "评议";
    b.setAttribute("aria-label", `评议 ${r.name}`);
    b.addEventListener("click", () => {
      $("eval-member").value = r.member_id;
      $("evaluation-card").scrollIntoView({block: "nearest"});
      $("eval-rating").focus();
    });
    cell(tr, "").appendChild(b);
  });
  const select = $("eval-member");
  const chosen = select.value;
  select.replaceChildren(...state.roster.map((r) => new Option(r.name, r.member_id)));
  if (chosen) select.value = chosen;
}

async function download(path, filename, msgId) {
  say(msgId, "正在生成文件……", true);
  const r = await api(path);
  if (!r.ok) { say(msgId, `下载失败（${r.status}）`); return; }
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await r.blob());
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  say(msgId, `已下载 ${filename}`, true);
}

function downloadNotServed() {
  const week = $("not-served-xlsx").dataset.week || $("week").value;
  const c = encodeURIComponent(state.community.id);
  return download(`/v1/communities/${c}/roster?week=${week}&format=xlsx`,
    `${week}未服务党员-${state.community.name}.xlsx`, "toolbar-msg");
}

async function postJson(path, body) {
  const r = await api(path, {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  });
  const out = await r.json().catch(() => ({}));
  return {ok: r.ok, status: r.status, body: out};
}

async function sendEvaluation(ev) {
  ev.preventDefault();
  const member = $("eval-member").value;
  const period = $("eval-period").value.trim();
  const rating = $("eval-rating").value;
  const grade = $("eval-grade").value;
  const comment = $("eval-comment").value.trim();
  if (!member) { say("eval-msg", "请选择党员"); return; }
  if (!/^\d{4}(-Q[1-4]|-\d{2})?$/.test(period)) { say("eval-msg", "期间格式为 2026、2026-Q4 或 2026-11"); return; }
  if (!rating && !grade) { say("eval-msg", "请至少选择服务评价或鉴定之一"); return; }
  $("eval-submit").disabled = true;
  const done = [];
  try {
    if (rating) {
      const r = await postJson("/v1/feedback/member-service",
        {member_id: member, period, rating: Number(rating), comment});
      if (!r.ok) { say("eval-msg", `提交未成功：${errorText(r.body.error && r.body.error.code, r.status)}`); return; }
      done.push(`服务评价 ${rating} 分`);
    }
    if (grade) {
      const r = await postJson("/v1/feedback/unit-summaries",
        {period, items: [{member_id: member, grade, comment}]});
      if (!r.ok) { say("eval-msg", `提交未成功：${errorText(r.body.error && r.body.error.code, r.status)}`); return; }
      done.push(`鉴定 ${grade}`);
    }
    say("eval-msg", `已提交 ${memberName(member)} ${period}：${done.join("，")}`, true);
  } finally { $("eval-submit").disabled = false; }
}

function renderStations(order) {
  // In the week's breakdown's (natural) order; stations it does not list (none, normally) last.
  const rank = new Map(order.map((id, i) => [id, i]));
  const rows = [...state.stations.values()]
    .sort((a, b) => (rank.get(a.id) ?? 1e9) - (rank.get(b.id) ?? 1e9));
  fillTable("stations-table", null, rows, (tr, st) => {
    tr.dataset.stationId = st.id;
    cell(tr, st.name);
    cell(tr, st.kind === "member_post" ? "党员驿站" : st.kind === "service_station" ? "党群服务站" : st.kind);
    cell(tr, st.accepts_poster === false ? "仅屏幕码" : "接受").dataset.acceptsPoster = String(st.accepts_poster !== false);
    const b = document.createElement("button");
    b.type = "button"; b.className = "small plain"; b.textContent = "生成平板链接";
    b.dataset.action = "screen-link";
    b.setAttribute("aria-label", `为 ${st.name} 生成平板链接`);
    b.addEventListener("click", () => screenLink(st));
    const revoke = document.createElement("button");
    revoke.type = "button"; revoke.className = "small plain"; revoke.textContent = "作废平板链接";
    revoke.dataset.action = "revoke";
    revoke.setAttribute("aria-label", `作废平板链接（${st.name} 的全部链接）`);
    revoke.addEventListener("click", () => revokeScreens(st));
    const actions = cell(tr, "");
    actions.append(b, " ", revoke);
  });
}

async function revokeScreens(st) {
  const r = await postJson(`/v1/stations/${encodeURIComponent(st.id)}/screen-keys/revoke`, {});
  const box = $("screen-link");
  box.hidden = false;
  box.textContent = r.ok
    ? `${st.name} 此前生成的平板链接已全部作废，请重新生成并在平板上打开。`
    : `作废平板链接失败（${r.status}）`;
}

async function screenLink(st) {
  const r = await postJson(`/v1/stations/${encodeURIComponent(st.id)}/screen-keys`, {});
  const box = $("screen-link");
  box.hidden = false;
  box.replaceChildren();
  if (!r.ok) { box.textContent = `生成平板链接失败（${r.status}）`; return; }
  const a = document.createElement("a");
  a.href = r.body.url; a.target = "_blank"; a.rel = "noopener"; a.textContent = r.body.url;
  a.className = "break";
  box.append(`${st.name} 的平板链接（有效期至 ${local(r.body.expires_at)}）：`, a);
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
  renderAssistedStations();
}

// A trend point needs only the week's figures, not who has not served: the county's weekly
// figures (confined to this organizer's community by the API) carry exactly those.
async function trendWeek(week) {
  const county = await getJson(`/v1/weekly/communities?week=${week}`);
  return county.items.find((i) => i.community_id === state.community.id) || null;
}

let loading = null;
// Asked again while a load was in flight: that load may have read the figures before the change
// the caller waits for (a review just decided), so one more follows it.
let reloadAfter = false;

async function load() {
  if (loading) { reloadAfter = true; return loading; }
  loading = (async () => {
    const week = $("week").value || currentWeek();
    const c = encodeURIComponent(state.community.id);
    const weeks = [];
    for (let i = TREND_WEEKS - 1; i >= 0; i--) weeks.push(shiftWeek(week, -i));
    document.body.dataset.loaded = "";
    say("toolbar-msg", "正在加载……", true);
    try {
      const [weekly, breakdown, trend, queue, onsite, roster] = await Promise.all([
        getJson(`/v1/communities/${c}/weekly?week=${week}`),
        getJson(`/v1/communities/${c}/weekly/breakdown?week=${week}`),
        Promise.all(weeks.map((w) => trendWeek(w).catch(() => null))),
        getJson(`/v1/communities/${c}/review-queue`),
        getJson(`/v1/communities/${c}/on-site`),
        getJson(`/v1/communities/${c}/roster?week=${week}`),
      ]);
      state.roster = roster.items;
      say("kpi-registered", String(weekly.members_registered));
      say("kpi-served", String(weekly.members_served));
      say("kpi-rate", `${Math.round(weekly.rate * 1000) / 10}%`);
      say("kpi-hours", String(weekly.hours));
      // The week before beside this one: on a Monday this week has hardly begun.
      renderPrevious(trend[trend.length - 2], weeks[weeks.length - 2]);
      renderRoster();
      renderStations(breakdown.stations.map((st) => st.station_id));
      drawServed(weekly);
      drawStations(breakdown);
      drawGrids(breakdown);
      drawTrend(weeks, trend);
      renderNotServed(weekly.not_served);
      $("not-served-xlsx").dataset.week = week;
      renderReview(queue);
      renderOnSite(onsite);
      say("toolbar-msg", "");
      document.body.dataset.loaded = week;
    } catch (e) {
      if (desk.token()) say("toolbar-msg", `加载失败：${e instanceof TypeError ? errorText("network") : e.message}`);
    }
  })();
  try { await loading; } finally { loading = null; }
  if (reloadAfter) { reloadAfter = false; await load(); }
}

// ---- start (after desk.run has signed in) --------------------------------------------------

async function start() {
  const params = new URLSearchParams(location.search);
  $("week").value = /^\d{4}-W\d{2}$/.test(params.get("week") || "") ? params.get("week") : currentWeek();
  $("ranking-month").value = "";
  $("app").hidden = false;
  $("login").hidden = true;
  say("who", state.community.name);
  document.title = `${state.community.name} · 社区工作台`;
  await loadOnce();
  $("eval-period").value = String(new Date(Date.now() + 8 * 3600e3).getUTCFullYear());
  await Promise.all([load(), loadRanking()]);
  await searchMembers();  // after the roster, whose order it follows
  // Charts follow their box (a phone turned, a window resized, a card reflowed).
  const ro = new ResizeObserver(() => Object.values(charts).forEach((ch) => ch.resize()));
  for (const id of ["chart-served", "chart-trend", "chart-stations", "chart-grids"]) ro.observe($(id));
}

document.addEventListener("DOMContentLoaded", async () => {
  $("refresh").addEventListener("click", load);
  $("week").addEventListener("change", () => { if ($("week").value) load(); });
  $("ranking-month").addEventListener("change", loadRanking);
  $("posters").addEventListener("click", openPosters);
  $("member-search").addEventListener("submit", searchMembers);
  $("not-served-xlsx").addEventListener("click", downloadNotServed);
  $("roster-q").addEventListener("input", renderRoster);
  $("evaluation-form").addEventListener("submit", sendEvaluation);
  $("assisted-search").addEventListener("submit", searchAssisted);
  $("assisted-group-in").addEventListener("click", () => assistSelected("in"));
  $("assisted-group-out").addEventListener("click", () => assistSelected("out"));

  await desk.run({
    key: TOKEN_KEY,
    role: "organizer",
    wrongRole: "该令牌不是社区组织者令牌",
    entityPath: "communities",
    onSignedIn: async (entity) => { state.community = entity; await start(); },
  });
});
