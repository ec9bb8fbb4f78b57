// The member's own history (opened from /me): this week, hours over recent weeks, sessions with
// their status, feedback about the member, and the record of service (服务证明) to print.
// Uses the phone's binding made by the member page (same localStorage keys as app.js).
"use strict";

if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => {});

const TOKEN_KEY = "volunteer.token";
const MEMBER_KEY = "volunteer.member";
const DAY = 864e5;
const WEEKS = 8;
const STATUS_LABEL = {
  open: "进行中",
  closed: "已完成",
  auto_closed: "未签退（自动结束）",
  capped: "已完成（超时按上限计）",
  adjusted: "已核定",
  rejected: "不予认定",
};

function $(id) { return document.getElementById(id); }
function say(id, text, ok) {
  const el = $(id);
  if (!el) return;
  el.textContent = text;
  el.classList.toggle("ok", !!ok);
}
function pad(n) { return String(n).padStart(2, "0"); }
function token() { return localStorage.getItem(TOKEN_KEY); }
function shanghai(ms) { return new Date(ms + 8 * 3600e3); }  // read with getUTC*
function day(d) { return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`; }
function local(iso) {
  if (!iso) return "—";
  const d = shanghai(new Date(iso).getTime());
  return `${d.getUTCMonth() + 1}月${d.getUTCDate()}日 ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
}

async function getJson(path) {
  let r;
  try {
    r = await fetch(path, {headers: {Authorization: "Bearer " + token()}, cache: "no-store"});
  } catch (e) { throw new Error(errorText("network")); }
  if (!r.ok) throw new Error(await responseErrorText(r));
  return r.json();
}

function weekMonday(week) {
  const [y, w] = week.split("-W").map(Number);
  const jan4 = Date.UTC(y, 0, 4);
  return jan4 - ((new Date(jan4).getUTCDay() + 6) % 7) * DAY + (w - 1) * 7 * DAY;
}
function weekOf(d) {
  const thursday = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - ((d.getUTCDay() + 6) % 7) + 3);
  const year = new Date(thursday).getUTCFullYear();
  return `${year}-W${pad(1 + Math.floor((thursday - weekMonday(`${year}-W01`)) / (7 * DAY)))}`;
}

async function thisWeekAndRecent(id) {
  const now = shanghai(Date.now());
  const weeks = [];
  for (let i = 0; i < WEEKS; i++) weeks.push(weekOf(new Date(now.getTime() - i * 7 * DAY)));
  const results = await Promise.all(weeks.map((w) => getJson(`/v1/members/${id}/weekly?week=${w}`).catch(() => null)));
  const cur = results[0];
  if (cur) {
    const el = $("this-week");
    el.dataset.served = String(cur.target_met);
    el.textContent = (cur.target_met ? "✓ 本周已完成志愿服务" : "本周尚未完成志愿服务（每周至少1次）")
      + `：${cur.sessions} 次，${cur.hours} 小时`;
  }
  const max = Math.max(1, ...results.map((r) => (r ? r.hours : 0)));
  const ul = $("weeks");
  ul.replaceChildren();
  weeks.forEach((w, i) => {
    const r = results[i];
    const m = new Date(weekMonday(w));
    const li = document.createElement("li");
    li.dataset.week = w;
    li.dataset.hours = String(r ? r.hours : 0);
    const label = document.createElement("span");
    label.textContent = i === 0 ? "本周" : `${m.getUTCMonth() + 1}月${m.getUTCDate()}日起`;
    const track = document.createElement("span");
    const bar = document.createElement("span");
    bar.className = r && r.hours > 0 ? "bar" : "bar zero";
    bar.style.width = `${Math.round(((r ? r.hours : 0) / max) * 100)}%`;  // CSSOM, allowed by the CSP
    bar.style.display = "block";
    track.appendChild(bar);
    const v = document.createElement("span");
    v.className = "v";
    v.textContent = r ? `${r.hours} 小时` : "—";
    li.append(label, track, v);
    ul.appendChild(li);
  });
}

async function sessions(id) {
  const year = shanghai(Date.now()).getUTCFullYear();
  // Each session names its station (also another community's), so no station list is read.
  const page = await getJson(`/v1/members/${id}/sessions?from=${year - 1}-01-01&limit=200`);
  say("sessions-count", `共 ${page.total} 条${page.total > page.items.length ? `，显示最近 ${page.items.length} 条` : ""}`);
  const ul = $("sessions");
  ul.replaceChildren();
  for (const s of page.items) {
    const li = document.createElement("li");
    li.dataset.sessionId = s.id;
    const status = document.createElement("span");
    status.className = `status ${s.status}`;
    status.textContent = STATUS_LABEL[s.status] || s.status;
    const where = s.station_name || "未知站点";
    li.append(status, `${local(s.start)} · ${where} · ${s.hours} 小时`);
    ul.appendChild(li);
  }
  if (!page.items.length) { const li = document.createElement("li"); li.textContent = "暂无服务记录"; ul.appendChild(li); }
}

async function feedback(id) {
  const year = shanghai(Date.now()).getUTCFullYear();
  const el = $("feedback");
  el.replaceChildren();
  let f;
  try { f = await getJson(`/v1/members/${id}/feedback?period=${year}`); }
  catch (e) { el.textContent = "暂时无法读取评价"; return; }
  say("feedback-period", `${f.period}年`);
  const lines = [];
  const mine = f.members.find((m) => m.member_id === f.member_id) || null;
  const svc = mine ? mine.service : f.member_service;
  lines.push(svc.count ? `服务评价：${svc.count} 次，平均 ${svc.average} 分（满分5分）` : "服务评价：暂无");
  const wishes = mine ? mine.wish_ratings : f.wish_ratings;
  if (wishes.count) lines.push(`微心愿群众评价：${wishes.count} 次，平均 ${wishes.average} 分`);
  for (const e of mine ? mine.evaluations : []) {
    lines.push(`社区鉴定（${e.period}）：${e.grade}${e.comment ? `，${e.comment}` : ""}`);
  }
  if (mine && !mine.evaluations.length) lines.push("社区鉴定：暂无");
  for (const text of lines) {
    const p = document.createElement("p");
    p.textContent = text;
    el.appendChild(p);
  }
}

async function issueRecord(ev) {
  ev.preventDefault();
  const m = JSON.parse(localStorage.getItem(MEMBER_KEY) || "null");
  const from = $("record-from").value, to = $("record-to").value;
  if (!from || !to || from > to) { say("record-msg", "请选择正确的起止日期"); return; }
  $("record-submit").disabled = true;
  say("record-msg", "正在开具……", true);
  let r;
  try {
    r = await fetch(`/v1/members/${encodeURIComponent(m.id)}/service-records`, {
      method: "POST",
      headers: {Authorization: "Bearer " + token(), "Content-Type": "application/json"},
      body: JSON.stringify({from, to}),
    });
  } catch (e) {
    $("record-submit").disabled = false;
    say("record-msg", errorText("network"));
    return;
  }
  $("record-submit").disabled = false;
  if (r.status !== 201) {
    say("record-msg", `开具失败：${await responseErrorText(r)}`);
    return;
  }
  const body = await r.json();
  say("record-msg", "服务证明已开具", true);
  say("record-code", body.code_display);
  say("record-sessions", String(body.sessions));
  say("record-hours", String(body.hours));
  $("record-link").href = `/records/${encodeURIComponent(body.code)}`;
  $("record").hidden = false;
}

document.addEventListener("DOMContentLoaded", async () => {
  const m = JSON.parse(localStorage.getItem(MEMBER_KEY) || "null");
  if (!token() || !m) { $("unbound").hidden = false; return; }
  $("app").hidden = false;
  const now = shanghai(Date.now());
  $("record-from").value = `${now.getUTCFullYear()}-01-01`;
  $("record-to").value = day(now);
  $("record-form").addEventListener("submit", issueRecord);
  const id = encodeURIComponent(m.id);
  await Promise.all([thisWeekAndRecent(id), sessions(id).catch((e) => {
    say("sessions-count", e.message || errorText("network"));
  }), feedback(id)]);
  document.body.dataset.loaded = "1";
});
