// The member's phone: binds a token once, checks in or out with one tap, and keeps a scan that
// could not be sent (no network, or 503) to send again later with the same client_event_id and
// the original scanned_at, so it is counted once and in the right week.
"use strict";
const TOKEN_KEY = "volunteer.token";
const QUEUE_KEY = "volunteer.queue";

function token() { return localStorage.getItem(TOKEN_KEY); }
function queue() { return JSON.parse(localStorage.getItem(QUEUE_KEY) || "[]"); }
function saveQueue(q) { localStorage.setItem(QUEUE_KEY, JSON.stringify(q)); }
function $(id) { return document.getElementById(id); }
function say(id, text) { const el = $(id); if (el) el.textContent = text; }

async function api(path, options) {
  const headers = Object.assign({"Authorization": "Bearer " + token()}, (options || {}).headers || {});
  return fetch(path, Object.assign({}, options || {}, {headers}));
}

async function me() {
  const r = await api("/v1/auth/me");
  if (!r.ok) return null;
  return r.json();
}

async function showHours() {
  const who = await me();
  if (!who || who.role !== "member") return;
  const r = await api("/v1/members/" + encodeURIComponent(who.subject_id) + "/hours");
  if (!r.ok) return;
  const h = await r.json();
  say("hours", `今年累计服务 ${h.hours} 小时，共 ${h.sessions} 次`);
}

async function sendScan(scan) {
  let r;
  try {
    r = await api("/v1/checkins", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(scan),
    });
  } catch (e) {
    return "retry";  // no network
  }
  if (r.status === 202) return "ok";
  if (r.status === 503 || r.status === 429 || r.status >= 500) return "retry";
  const body = await r.json().catch(() => ({}));
  return (body.error && body.error.message) || ("错误 " + r.status);
}

async function flushQueue() {
  const q = queue();
  if (!q.length) { say("pending", ""); return; }
  const left = [];
  for (const scan of q) {
    const result = await sendScan(scan);
    if (result === "retry") left.push(scan);
  }
  saveQueue(left);
  say("pending", left.length ? `有 ${left.length} 条记录等待网络恢复后上传` : "离线记录已全部上传");
  if (left.length < q.length) showHours();
}

async function scan(stationToken, action) {
  if (!token()) { say("status", "请先用社区发给您的激活链接绑定本机"); return; }
  const item = {
    station_token: stationToken,
    action: action,
    client_event_id: crypto.randomUUID(),
    scanned_at: new Date().toISOString(),
  };
  say("status", "正在提交……");
  const result = await sendScan(item);
  if (result === "ok") {
    say("status", action === "in" ? "签到成功" : "签退成功");
    setTimeout(showHours, 1500);
  } else if (result === "retry") {
    const q = queue(); q.push(item); saveQueue(q);
    say("status", action === "in" ? "签到已保存，网络恢复后自动上传" : "签退已保存，网络恢复后自动上传");
    say("pending", `有 ${q.length} 条记录等待上传`);
  } else {
    say("status", "提交失败：" + result);
  }
}

function bindFromUrl() {
  const params = new URLSearchParams(location.search);
  const t = params.get("t");
  if (t) {
    localStorage.setItem(TOKEN_KEY, t);
    history.replaceState(null, "", location.pathname);
  }
}

window.addEventListener("online", flushQueue);
setInterval(flushQueue, 15000);
document.addEventListener("DOMContentLoaded", () => {
  bindFromUrl();
  const station = document.body.dataset.stationToken;
  document.querySelectorAll("button[data-action]").forEach((b) =>
    b.addEventListener("click", () => scan(station, b.dataset.action)));
  if (!token()) say("status", "本机尚未绑定：请使用社区发给您的激活链接");
  flushQueue();
  showHours();
});
