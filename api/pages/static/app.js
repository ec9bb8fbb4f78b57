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
const BIND_CODE_KEY = "volunteer.bindCode"; // a /bind/{code} link's code, until it is redeemed
const RETRY_MS = 10000;
const OPEN_HINT_MS = 12 * 3600 * 1000;     // after this, a check-in is no longer "current"

const ACTION_LABEL = {in: "签到", out: "签退"};

// Credentials never stay in the address bar (history, screenshots, a shared link): a `?t=`
// token or a `/bind/{code}` link is moved to storage and the address cleaned before anything
// else runs.
(function takeTokensFromAddress() {
  const params = new URLSearchParams(location.search);
  const t = params.get("t");
  if (t) {
    localStorage.setItem(TOKEN_KEY, t);
    localStorage.removeItem(MEMBER_KEY);  // the token may be another member's: read it again
    params.delete("t");
  }
  let path = location.pathname;
  const bind = path.match(/^\/bind\/([^/]+)$/);
  if (bind) {
    sessionStorage.setItem(BIND_CODE_KEY, decodeURIComponent(bind[1]));
    path = "/bind";
  }
  if (t || bind) {
    const rest = params.toString();
    history.replaceState(null, "", path + (rest ? `?${rest}` : "") + location.hash);
  }
})();

if ("serviceWorker" in navigator) {
  // The app shell and each station's page are kept for a scan made offline from the camera.
  navigator.serviceWorker.register("/sw.js").catch(() => {});
}

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
  const recent = load(RECENT_KEY, []);
  const title = $("recent-title");
  if (title) title.hidden = !recent.length;
  for (const r of recent) {
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
  const page = document.body.dataset.page;
  if (bound && (page === "bind" || page === "me")) {
    // The header says whose page this is, as soon as the phone is bound.
    say("title", "我的志愿服务");
    say("subtitle", m && m.name ? `${m.name} · 在职党员到居住地社区报到服务` : "在职党员到居住地社区报到服务");
    document.title = "我的志愿服务 · 在职党员志愿服务";
  }
}

function duration(ms) {
  const min = Math.max(0, Math.floor(ms / 60000));
  const h = Math.floor(min / 60), m = min % 60;
  return h ? `${h}小时${m}分钟` : `${m}分钟`;
}

let openSince = null;  // when the open session began (server's word, else this phone's last check-in)

function renderSession() {
  const el = $("session");
  if (!el) return;
  el.hidden = !openSince;
  if (openSince) {
    el.textContent = `本次服务已进行 ${duration(Date.now() - openSince)}，离开时请扫码签退`;
  }
}
setInterval(renderSession, 30000);

function stationId() {
  // The poster's token is `v{n}.{station}.{sig}`, a screen's `w{n}.{station}.{window}.{sig}`.
  const t = currentStationToken();
  const parts = t.split(".");
  return parts.length >= 3 ? parts[1] : t;
}

function currentStationToken() {
  // The offline shell has no token of its own: it answers any /s/{token} address.
  const fromPage = document.body.dataset.stationToken;
  if (fromPage) return fromPage;
  const m = location.pathname.match(/^\/s\/([^/]+)$/);
  return m ? decodeURIComponent(m[1]) : "";
}

async function warnIfAway() {
  // A station of another community: the member is told before tapping, since a check-in
  // there also ends an open session at home.
  const el = $("away");
  const community = document.body.dataset.stationCommunity;
  const m = load(MEMBER_KEY, null);
  if (!el || !community || !m || !m.community_id) return;
  const away = community !== m.community_id;
  el.hidden = !away;
  if (away) {
    const name = document.body.dataset.communityName || "其他社区";
    el.textContent = `注意：此站点属于${name}，不是您报到的社区。在这里签到会结束您在本社区未签退的服务；服务记录会写明此站点。`;
  }
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

// What the week still needs, from the week endpoint's fields (the rule is the server's: a
// service counts only from `minimum_hours` of credited time, or once the organizer approved it).
function weekNeeds(week) {
  if (week.served || week.needed_hours === undefined) return "";
  const pending = week.below_minimum_sessions
    ? `；${week.below_minimum_sessions} 次服务不足 ${week.minimum_hours} 小时，待组织者确认` : "";
  if (week.open_session) {
    return `。本次服务还需 ${week.needed_hours} 小时即计入本周，或由组织者确认${pending}`;
  }
  return `。还需一次不少于 ${week.needed_hours} 小时的服务，或由组织者确认${pending}`;
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
      + `：${week.sessions} 次，${week.hours} 小时` + (week.open_session ? "（有未签退的服务）" : "")
      + weekNeeds(week);
    // The server's open session wins; a check-in this phone made moments ago may not have
    // reached it yet (worker, then sink), so the phone's own stays until then.
    const last = load(LAST_KEY, null);
    const fresh = last && last.action === "in" && Date.now() - Date.parse(last.at) < 5 * 60000;
    if (week.open_session && week.open_since) openSince = Date.parse(week.open_since);
    else if (!fresh) openSince = null;
    renderSession();
  }
  if (year) {
    if (card) card.hidden = false;
    const el = $("hours");
    el.dataset.hours = String(year.hours);
    el.textContent = `${year.year}年累计服务 ${year.hours} 小时，共 ${year.sessions} 次`;
  }
}

// The member's reminders (services.reminders) and the one kind they may turn off.
function dateOf(iso) {
  return new Date(iso).toLocaleDateString("zh-CN", {timeZone: "Asia/Shanghai", month: "numeric", day: "numeric"});
}

async function refreshInbox() {
  const m = load(MEMBER_KEY, null);
  if (!token() || !m || document.body.dataset.page !== "me") return;
  const id = encodeURIComponent(m.id);
  const box = await getJson(`/v1/members/${id}/inbox?limit=10`);
  const prefs = await getJson(`/v1/members/${id}/reminder-preferences`);
  if (!box && !prefs) return;
  $("inbox-card").hidden = false;
  const ul = $("inbox");
  ul.textContent = "";
  const items = box ? box.items : [];
  if (!items.length) {
    const li = document.createElement("li");
    li.className = "hint";
    li.textContent = "暂无提醒";
    ul.appendChild(li);
  }
  for (const it of items) {
    const li = document.createElement("li");
    const head = document.createElement("strong");
    head.textContent = `${it.title}（${dateOf(it.created_at)}）`;
    const body = document.createElement("p");
    body.textContent = it.body;
    li.append(head, body);
    ul.appendChild(li);
  }
  if (prefs) $("nudge-pref").checked = prefs.weekly_nudge;
}

async function onPref() {
  const m = load(MEMBER_KEY, null);
  const box = $("nudge-pref");
  if (!m) return;
  const wanted = box.checked;
  try {
    const r = await api(`/v1/members/${encodeURIComponent(m.id)}/reminder-preferences`, {
      method: "PUT",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({weekly_nudge: wanted}),
    });
    if (r.ok) {
      say("pref-msg", wanted ? "已开启每周服务提醒" : "已关闭每周服务提醒，之后不再发送");
      return;
    }
    const err = await r.json().catch(() => ({}));
    say("pref-msg", `设置未保存：${errorText(err.error && err.error.code, r.status)}`);
  } catch (e) {
    say("pref-msg", `设置未保存：${errorText("network")}`);
  }
  box.checked = !wanted;
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
  return {refused: await responseErrorText(r)};
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

function isRepeat(action) {
  // The server ignores the same scan at the same station within the repeat window
  // (SESSION_REPEAT_WINDOW_S); the phone says so instead of showing a second success.
  const last = load(LAST_KEY, null);
  const windowMs = Number(document.body.dataset.repeatS || "0") * 1000;
  return !!last && last.action === action && last.station === stationId()
    && Date.now() - Date.parse(last.at) < windowMs;
}

async function scan(action) {
  if (!token()) { setStatus("unbound", "请先绑定本机"); showBound(false); return; }
  if (isRepeat(action)) {
    setStatus("repeat", `已${ACTION_LABEL[action]}，无需重复`);
    return;
  }
  const stationToken = currentStationToken();
  const item = {
    station_token: stationToken,
    station_name: document.body.dataset.stationName || "站点（联网后确认）",
    action,
    client_event_id: crypto.randomUUID(),
    scanned_at: new Date().toISOString(),
  };
  document.querySelectorAll("button[data-action]").forEach((b) => { b.disabled = true; });
  setStatus("sending", `提交中……`);
  const result = await sendScan(item);
  document.querySelectorAll("button[data-action]").forEach((b) => { b.disabled = false; });
  if (result === "ok") {
    store(LAST_KEY, {action, at: item.scanned_at, station: stationId()});
    openSince = action === "in" ? Date.parse(item.scanned_at) : null;
    renderSession();
    remember({outcome: "sent", action, station: item.station_name, scanned_at: item.scanned_at,
      at: item.scanned_at});
    setStatus("ok", `${ACTION_LABEL[action]}成功 · ${clock(item.scanned_at)}`);
    suggest();
    refreshSoon();
  } else if (result === "retry") {
    const q = queue(); q.push(item); store(QUEUE_KEY, q);
    store(LAST_KEY, {action, at: item.scanned_at, station: stationId()});
    openSince = action === "in" ? Date.parse(item.scanned_at) : null;
    renderSession();
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

async function redeem(code, phone) {
  let r;
  try {
    r = await fetch("/v1/activations/redeem", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(phone ? {code, phone} : {code}),
    });
  } catch (e) {
    return errorText("network");
  }
  if (r.ok) {
    const body = await r.json();
    localStorage.setItem(TOKEN_KEY, body.token);
    store(MEMBER_KEY, {id: body.member_id, name: body.member_name});
    sessionStorage.removeItem(BIND_CODE_KEY);
    return null;
  }
  return responseErrorText(r);
}

async function onBind(ev) {
  ev.preventDefault();
  const input = $("bind-code");
  const btn = $("bind-submit");
  btn.disabled = true;
  say("bind-msg", "正在绑定……");
  const phoneEl = $("bind-phone");
  const phone = phoneEl ? phoneEl.value.replace(/\D/g, "") : "";
  if (phoneEl && phoneEl.value.trim() && phone.length !== 11) {
    btn.disabled = false;
    say("bind-msg", "手机号应为11位，请核对");
    return;
  }
  const err = await redeem(input.value, phone);
  btn.disabled = false;
  if (err) { say("bind-msg", err); return; }
  const m = load(MEMBER_KEY, {});
  say("bind-msg", "");
  setStatus("bound", `绑定成功：${m.name}，以后扫码即可签到`);
  if (document.body.dataset.page === "bind") {
    history.replaceState(null, "", "/me");  // the code is spent: keep it out of history
  }
  await fillMember();
  warnIfAway();
  flushQueue();
  refreshWeek();
}

async function fillMember() {
  // The name is shown so the member sees whose phone this is, and the community tells a
  // station of another community apart; fetched once after binding (also a `?t=` binding).
  if (!token()) return;
  let m = load(MEMBER_KEY, null);
  if (!m) {
    const who = await getJson("/v1/auth/me");
    if (who && who.role === "member") m = {id: who.subject_id, name: ""};
  }
  if (m && (!m.name || !m.community_id)) {
    const rec = await getJson(`/v1/members/${encodeURIComponent(m.id)}`);
    if (rec) m = {id: m.id, name: rec.name, community_id: rec.community_id};
  }
  if (m) store(MEMBER_KEY, m);
  showBound(true);
}

// Everything held about the member, as a file (the download carries the bearer token, so it is
// fetched here and handed to the browser as a blob rather than opened as a link).
async function downloadMyData() {
  const m = load(MEMBER_KEY, null);
  if (!m) return;
  say("my-data-msg", "正在准备……");
  try {
    const r = await api(`/v1/members/${encodeURIComponent(m.id)}/my-data?format=download`);
    if (!r.ok) { say("my-data-msg", "下载失败，请稍后再试"); return; }
    const blob = await r.blob();
    const named = /filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "");
    const name = named ? named[1] : "my-data.json";
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    say("my-data-msg", `已下载：${name}`);
  } catch (e) { say("my-data-msg", "下载失败：网络不可用"); }
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
  const code = $("bind-code");
  if (code && !code.value) {
    const kept = (sessionStorage.getItem(BIND_CODE_KEY) || "").replace(/[^0-9A-Za-z]/g, "").toUpperCase();
    code.value = kept.length === 8 ? `${kept.slice(0, 4)}-${kept.slice(4)}` : kept;
  }
  renderRecent();
  renderPending();
  suggest();
  if (!token()) {
    showBound(false);
    setStatus("unbound", page === "bind" ? "请点击“绑定本机”完成绑定" : "未绑定：请先输入激活码");
    return;
  }
  await fillMember();
  const m = load(MEMBER_KEY, null);
  if (page === "bind") setStatus("bound", "本机已绑定；如需更换绑定，请输入新的激活码");
  if (page === "bind") { const b = $("bind"); if (b) b.hidden = false; }
  if (page === "scan") setStatus("ready", "请点击“签到”或“签退”");
  const last = load(LAST_KEY, null);
  if (last && last.action === "in" && Date.now() - Date.parse(last.at) < OPEN_HINT_MS) {
    openSince = Date.parse(last.at);
    renderSession();
  }
  if (page === "me") {
    setStatus("bound", `您好，${m && m.name ? m.name : "党员同志"}：扫描站点二维码即可签到、签退`);
    const pref = $("nudge-pref");
    if (pref) pref.addEventListener("change", onPref);
    refreshInbox();
    const mine = $("my-data-card");
    if (mine) { mine.hidden = false; $("my-data").addEventListener("click", downloadMyData); }
  }
  warnIfAway();
  flushQueue();
  refreshWeek();
});
