// The member's phone. Binds once (activation code or link), checks in or out with one tap, and
// keeps a scan that could not be sent (no network, or the service answered 503/5xx/429) in
// localStorage, to send again later with the same client_event_id and the original scanned_at:
// the server turns a re-sent scan into the same event, so it is counted once and in its week.
"use strict";

const TOKEN_KEY = "volunteer.token";
const MEMBER_KEY = "volunteer.member";     // {id, name} of the bound member
const QUEUE_KEY = "volunteer.queue";       // scans waiting to be sent
const RECENT_KEY = "volunteer.recent";     // the last outcomes, shown under the status
const LAST_KEY = "volunteer.last";         // the last action sent, to suggest the next one
const RETRY_MS = 10000;
const OPEN_HINT_MS = 12 * 3600 * 1000;     // after this, a check-in is no longer "current"

const ACTION_LABEL = {in: "签到", out: "签退"};
// Why the server refused a scan for good, in words for the member.
const REFUSALS = {
  station_code_expired: "二维码已过期，请重新扫描站点屏幕上的二维码",
  invalid_station_token: "二维码无效，请扫描站点张贴的最新二维码",
  scanned_at_out_of_range: "记录时间超出允许范围（离线记录最长保留72小时）",
  scanned_at_invalid: "记录时间无效",
  station_not_found: "站点不存在或已停用",
  member_not_found: "未找到您的党员信息，请联系社区",
  forbidden: "当前绑定的身份不能签到",
};

// ---- storage ------------------------------------------------------------------------------

function load(key, fallback) {
  try { const v = JSON.parse(localStorage.getItem(key)); return v === null ? fallback : v; }
  catch (e) { return fallback; }
}
function store(key, value) { localStorage.setItem(key, JSON.stringify(value)); }
function token() { return localStorage.getItem(TOKEN_KEY); }
function queue() { return load(QUEUE_KEY, []); }

function remember(entry) {
  const recent = load(RECENT_KEY, []);
  recent.unshift(entry);
  store(RECENT_KEY, recent.slice(0, 5));
  renderRecent();
}

// ---- view ---------------------------------------------------------------------------------

function $(id) { return document.getElementById(id); }
function say(id, text) { const el = $(id); if (el) el.textContent = text; }
function pad(n) { return String(n).padStart(2, "0"); }
function clock(iso) {
  const d = new Date(iso);
  return `${d.getMonth() + 1}月${d.getDate()}日 ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function setStatus(state, text) {
  const el = $("status");
  if (!el) return;
  el.dataset.state = state;
  el.textContent = text;
}

function renderPending() {
  const q = queue();
  const el = $("pending");
  if (!el) return;
  el.dataset.count = String(q.length);
  el.textContent = q.length
    ? `已保存待上传 ${q.length} 条：网络恢复后自动上传，请勿清除浏览器数据`
    : "";
}

function renderRecent() {
  const ul = $("recent");
  if (!ul) return;
  ul.replaceChildren();
  for (const r of load(RECENT_KEY, [])) {
    const li = document.createElement("li");
    li.className = r.outcome;
    const what = `${ACTION_LABEL[r.action] || ""} ${r.station || ""} ${clock(r.scanned_at)}`;
    li.textContent = r.outcome === "uploaded"
      ? `${what} · 上传成功（${clock(r.at)}）`
      : r.outcome === "refused" ? `${what} · 未能上传：${r.reason}` : `${what} · 已记录`;
    ul.appendChild(li);
  }
}

function showBound(bound) {
  const bind = $("bind");
  if (bind) bind.hidden = bound;
  const actions = $("actions");
  if (actions) actions.classList.toggle("disabled", !bound);
  const m = load(MEMBER_KEY, null);
  say("who", !bound ? "" : m && m.name ? `已绑定：${m.name}` : "本机已绑定");
}

function suggest() {
  // The button the member most likely wants is the big one: after a check-in, check out.
  const last = load(LAST_KEY, null);
  const open = last && last.action === "in" && Date.now() - Date.parse(last.at) < OPEN_HINT_MS;
  const bin = $("btn-in"), bout = $("btn-out");
  if (bin && bout) {
    bin.classList.toggle("primary", !open);
    bout.classList.toggle("primary", !!open);
  }
}

// ---- API ----------------------------------------------------------------------------------

async function api(path, options) {
  const opts = options || {};
  const headers = Object.assign({}, opts.headers || {});
  if (token()) headers["Authorization"] = "Bearer " + token();
  return fetch(path, Object.assign({}, opts, {headers, cache: "no-store"}));
}

async function getJson(path) {
  try {
    const r = await api(path);
    return r.ok ? await r.json() : null;
  } catch (e) { return null; }
}

async function refreshWeek() {
  const m = load(MEMBER_KEY, null);
  if (!token() || !m) return;
  const id = encodeURIComponent(m.id);
  const week = await getJson(`/v1/members/${id}/week`);
  // The weekly API (member-weeks rollup) owns the target rule; when it answers, its verdict
  // wins, so the phone and the organizer's dashboard never disagree about "served".
  const weekly = await getJson(`/v1/members/${id}/weekly`);
  if (week && weekly) {
    week.served = weekly.target_met;
    week.sessions = weekly.sessions;
    week.hours = weekly.hours;
  }
  const year = await getJson(`/v1/members/${id}/hours`);
  const card = $("week-card");
  if (week) {
    if (card) card.hidden = false;
    const el = $("week");
    el.dataset.served = String(week.served);
    el.dataset.sessions = String(week.sessions);
    el.textContent = (week.served ? "✓ 本周已完成志愿服务" : "本周尚未完成志愿服务（每周至少1次）")
      + `：${week.sessions} 次，${week.hours} 小时` + (week.open_session ? "（有未签退的服务）" : "");
  }
  if (year) {
    if (card) card.hidden = false;
    const el = $("hours");
    el.dataset.hours = String(year.hours);
    el.textContent = `${year.year}年累计服务 ${year.hours} 小时，共 ${year.sessions} 次`;
  }
}

function refreshSoon() {
  // Sessions reach the warehouse a few seconds after the scan (worker, then sink).
  for (const s of [1, 3, 6, 10, 16, 25]) setTimeout(refreshWeek, s * 1000);
}

// "ok", "retry" (keep it and send again), "unbound" (keep it; the phone must bind again),
// or {refused: reason} (the server will never accept it: tell the member and drop it).
async function sendScan(scan) {
  let r;
  try {
    r = await api("/v1/checkins", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({
        station_token: scan.station_token,
        action: scan.action,
        client_event_id: scan.client_event_id,
        scanned_at: scan.scanned_at,
      }),
    });
  } catch (e) {
    return "retry";  // no network: fetch itself failed
  }
  if (r.status === 202) return "ok";
  if (r.status === 401) return "unbound";
  if (r.status === 429 || r.status === 408 || r.status >= 500) return "retry";
  const body = await r.json().catch(() => ({}));
  const code = body.error && body.error.code;
  return {refused: REFUSALS[code] || (body.error && body.error.message) || `错误 ${r.status}`};
}

let flushing = false;

async function flushQueue() {
  // One flush at a time: the timer and the "online" event may fire together.
  if (flushing || !token()) { renderPending(); return; }
  flushing = true;
  try {
    let sent = 0;
    for (const scan of queue()) {
      const result = await sendScan(scan);
      if (result === "retry" || result === "unbound") {
        if (result === "unbound") showBound(false);
        break;  // keep the order: later scans wait behind an earlier one
      }
      // Remove just this scan; a tap during the flush may have added another.
      store(QUEUE_KEY, queue().filter((s) => s.client_event_id !== scan.client_event_id));
      const at = new Date().toISOString();
      if (result === "ok") {
        sent++;
        remember({outcome: "uploaded", action: scan.action, station: scan.station_name,
          scanned_at: scan.scanned_at, at});
        setStatus("uploaded",
          `上传成功：${clock(scan.scanned_at)}的${ACTION_LABEL[scan.action]}已于${clock(at)}上传`);
      } else {
        remember({outcome: "refused", action: scan.action, station: scan.station_name,
          scanned_at: scan.scanned_at, at, reason: result.refused});
        setStatus("error", `${ACTION_LABEL[scan.action]}未能上传：${result.refused}`);
      }
    }
    if (sent) refreshSoon();
  } finally {
    flushing = false;
    renderPending();
  }
}

async function scan(action) {
  if (!token()) { setStatus("unbound", "请先绑定本机"); showBound(false); return; }
  const stationToken = document.body.dataset.stationToken;
  const item = {
    station_token: stationToken,
    station_name: document.body.dataset.stationName || "",
    action,
    client_event_id: crypto.randomUUID(),
    scanned_at: new Date().toISOString(),
  };
  document.querySelectorAll("button[data-action]").forEach((b) => { b.disabled = true; });
  setStatus("sending", `提交中……`);
  const result = await sendScan(item);
  document.querySelectorAll("button[data-action]").forEach((b) => { b.disabled = false; });
  if (result === "ok") {
    store(LAST_KEY, {action, at: item.scanned_at});
    remember({outcome: "sent", action, station: item.station_name, scanned_at: item.scanned_at,
      at: item.scanned_at});
    setStatus("ok", `${ACTION_LABEL[action]}成功 · ${clock(item.scanned_at)}`);
    suggest();
    refreshSoon();
  } else if (result === "retry") {
    const q = queue(); q.push(item); store(QUEUE_KEY, q);
    store(LAST_KEY, {action, at: item.scanned_at});
    setStatus("queued", `${ACTION_LABEL[action]}已保存待上传：网络恢复后自动上传，时间按 ${clock(item.scanned_at)} 记录`);
    suggest();
    renderPending();
  } else if (result === "unbound") {
    setStatus("unbound", "绑定已失效，请重新输入激活码");
    showBound(false);
  } else {
    setStatus("error", `${ACTION_LABEL[action]}失败：${result.refused}`);
  }
}

// ---- binding ------------------------------------------------------------------------------

async function redeem(code) {
  let r;
  try {
    r = await fetch("/v1/activations/redeem", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({code}),
    });
  } catch (e) {
    return "网络不可用，请稍后再试";
  }
  const body = await r.json().catch(() => ({}));
  if (r.ok) {
    localStorage.setItem(TOKEN_KEY, body.token);
    store(MEMBER_KEY, {id: body.member_id, name: body.member_name});
    return null;
  }
  const code_ = body.error && body.error.code;
  return {
    activation_not_found: "激活码不正确，请核对后重新输入",
    activation_used: "此激活码已使用过，请向社区索取新的激活码",
    activation_expired: "此激活码已过期，请向社区索取新的激活码",
    too_many_attempts: "尝试次数过多，请15分钟后再试",
    member_inactive: "您的报到关系已变更，请联系社区",
    invalid_request: "请输入8位激活码",
  }[code_] || `绑定失败（${r.status}）`;
}

async function onBind(ev) {
  ev.preventDefault();
  const input = $("bind-code");
  const btn = $("bind-submit");
  btn.disabled = true;
  say("bind-msg", "正在绑定……");
  const err = await redeem(input.value);
  btn.disabled = false;
  if (err) { say("bind-msg", err); return; }
  const m = load(MEMBER_KEY, {});
  say("bind-msg", "");
  setStatus("bound", `绑定成功：${m.name}，以后扫码即可签到`);
  if (document.body.dataset.page === "bind") {
    history.replaceState(null, "", "/me");  // the code is spent: keep it out of history
  }
  showBound(true);
  flushQueue();
  refreshWeek();
}

async function bindFromUrl() {
  // `/me?t=<token>`: an admin-issued token handed over as a link (the older way to bind).
  const t = new URLSearchParams(location.search).get("t");
  if (!t) return;
  history.replaceState(null, "", location.pathname);
  localStorage.setItem(TOKEN_KEY, t);
  const who = await getJson("/v1/auth/me");
  if (who && who.role === "member") store(MEMBER_KEY, {id: who.subject_id, name: ""});
}

async function fillMember() {
  // The name is shown so the member sees whose phone this is; fetched once after binding.
  const m = load(MEMBER_KEY, null);
  if (!token()) return;
  if (!m) {
    const who = await getJson("/v1/auth/me");
    if (who && who.role === "member") store(MEMBER_KEY, {id: who.subject_id, name: ""});
  }
  showBound(true);
}

window.addEventListener("online", flushQueue);
document.addEventListener("visibilitychange", () => { if (!document.hidden) flushQueue(); });
setInterval(flushQueue, RETRY_MS);

document.addEventListener("DOMContentLoaded", async () => {
  const page = document.body.dataset.page;
  const form = $("bind-form");
  if (form) form.addEventListener("submit", onBind);
  if (page === "invalid") { renderPending(); return; }
  document.querySelectorAll("button[data-action]").forEach((b) =>
    b.addEventListener("click", () => scan(b.dataset.action)));
  await bindFromUrl();
  renderRecent();
  renderPending();
  suggest();
  if (!token()) {
    showBound(false);
    setStatus("unbound", page === "bind" ? "请点击“绑定本机”完成绑定" : "未绑定：请先输入激活码");
    return;
  }
  await fillMember();
  if (page === "bind") setStatus("bound", "本机已绑定；如需更换绑定，请输入新的激活码");
  if (page === "bind") { const b = $("bind"); if (b) b.hidden = false; }
  if (page === "scan") setStatus("ready", "请点击“签到”或“签退”");
  flushQueue();
  refreshWeek();
});
