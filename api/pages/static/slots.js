// The member's service slots (活动报名) on the phone page: the open slots of their community for
// the coming four weeks, 报名 / 取消报名 in one tap, the waiting-list position. The activities
// agent decides; a sign-up answers its verdict, or `pending` (then this polls the slot).
// Offline (the page comes from the service worker's shell) the last list seen online is shown,
// read-only: the API is never cached, so the list is kept here, for this member only.
"use strict";

(function () {
  const TOKEN = "volunteer.token";
  const MEMBER = "volunteer.member";
  const KEPT = "volunteer.slots";
  const STATUS_LABEL = {placed: "已报名", cancelled: "活动已取消", withdrawn: "已取消报名"};
  const stations = new Map();

  function el(id) { return document.getElementById(id); }
  function tok() { return localStorage.getItem(TOKEN); }
  function member() { try { return JSON.parse(localStorage.getItem(MEMBER)); } catch (e) { return null; } }
  function pad(n) { return String(n).padStart(2, "0"); }
  function when(a) {
    const s = new Date(new Date(a.starts_at).getTime() + 8 * 3600e3);  // Asia/Shanghai
    const e = new Date(new Date(a.ends_at).getTime() + 8 * 3600e3);
    const wd = "日一二三四五六"[s.getUTCDay()];
    return `${s.getUTCMonth() + 1}月${s.getUTCDate()}日（周${wd}）${pad(s.getUTCHours())}:${pad(s.getUTCMinutes())}-`
      + `${pad(e.getUTCHours())}:${pad(e.getUTCMinutes())}`;
  }
  async function call(path, options) {
    const opts = options || {};
    const headers = Object.assign({Authorization: "Bearer " + tok()}, opts.headers || {});
    return fetch(path, Object.assign({}, opts, {headers, cache: "no-store"}));
  }
  async function json(path) {
    try { const r = await call(path); return r.ok ? await r.json() : null; } catch (e) { return null; }
  }
  async function place(a) {
    if (a.station_id) {
      if (!stations.has(a.station_id)) {
        const s = await json(`/v1/stations/${encodeURIComponent(a.station_id)}`);
        stations.set(a.station_id, s ? s.name : "");
      }
      return stations.get(a.station_id) || "";
    }
    return "网格（楼栋、院落）";
  }
  function mineText(mine) {
    if (!mine) return "";
    if (mine.status === "waiting") return `候补第 ${mine.position} 位`;
    return STATUS_LABEL[mine.status] || "";
  }
  function seats(a) {
    const left = a.capacity - a.placed;
    return left > 0 ? `剩余名额 ${left}/${a.capacity}` : `名额已满（${a.waiting} 人候补）`;
  }

  // The list as the API gives it, or (no network) the one kept when last online.
  async function slotList(m) {
    let r;
    try {
      r = await call("/v1/activities");
    } catch (e) {
      let kept = null;
      try { kept = JSON.parse(localStorage.getItem(KEPT)); } catch (err) { kept = null; }
      if (!kept || kept.member !== m.id) return null;
      for (const [id, name] of Object.entries(kept.places || {})) stations.set(id, name);
      return {list: kept.list, offline: true};
    }
    if (!r.ok) return null;
    return {list: await r.json(), offline: false};
  }
  function keep(m, list) {
    try {
      localStorage.setItem(KEPT, JSON.stringify({member: m.id, list, places: Object.fromEntries(stations)}));
    } catch (e) { /* storage full: the list is not kept offline */ }
  }

  async function render() {
    const m = member();
    if (!tok() || !m || document.body.dataset.page !== "me") return;
    const got = await slotList(m);
    if (!got) return;
    const list = got.list;
    el("slots-card").hidden = false;
    el("slots-card").dataset.offline = got.offline ? "1" : "0";
    if (got.offline) el("slots-msg").textContent = "当前无网络：以下是上次联网时的活动，报名和取消报名请联网后操作";
    else if (el("slots-msg").dataset.offline === "1") el("slots-msg").textContent = "";
    el("slots-msg").dataset.offline = got.offline ? "1" : "0";
    if (!got.offline) loadPref();
    const ul = el("slots");
    // Built aside and swapped in at once: two renders in flight never interleave their rows.
    const rows = [];
    const now = Date.now();
    const items = list.items.filter((a) => a.status === "open" && Date.parse(a.ends_at) > now);
    if (!items.length) {
      const li = document.createElement("li");
      li.className = "hint";
      li.textContent = "近期暂无可报名的活动";
      rows.push(li);
    }
    for (const a of items) {
      const li = document.createElement("li");
      li.className = "slot";
      li.dataset.activity = a.activity_id;
      const head = document.createElement("strong");
      head.textContent = a.title;
      const info = document.createElement("p");
      info.textContent = `${when(a)} · ${await place(a)} · ${seats(a)}`;
      li.append(head, info);
      if (a.description) {
        const d = document.createElement("p");
        d.className = "hint";
        d.textContent = a.description;
        li.appendChild(d);
      }
      const mine = a.mine && ["placed", "waiting"].includes(a.mine.status) ? a.mine : null;
      const status = document.createElement("p");
      status.className = "slot-status";
      status.textContent = mineText(mine);
      const b = document.createElement("button");
      b.type = "button";
      b.className = mine ? "plain slot-cancel" : "slot-signup";
      b.textContent = mine ? "取消报名" : (a.placed >= a.capacity ? "报名候补" : "报名");
      const closed = mine ? (mine.status === "placed" && Date.parse(a.cancel_deadline) < now)
        : Date.parse(a.signup_deadline) < now;
      if (closed) {
        b.disabled = true;
        b.textContent = mine ? "已过取消截止时间" : "报名已截止";
      } else if (got.offline) {
        b.disabled = true;
      }
      b.addEventListener("click", () => act(a, mine ? "DELETE" : "POST", b));
      li.append(status, b);
      rows.push(li);
    }
    ul.replaceChildren(...rows);
    if (!got.offline) keep(m, list);
  }

  async function act(a, method, button) {
    button.disabled = true;
    el("slots-msg").textContent = method === "POST" ? "正在报名…" : "正在取消…";
    let r;
    try {
      r = await call(`/v1/activities/${encodeURIComponent(a.activity_id)}/signup`, {
        method,
        headers: {"Content-Type": "application/json"},
        body: method === "POST" ? "{}" : undefined,
      });
    } catch (e) {
      el("slots-msg").textContent = `操作未成功：${errorText("network")}`;
      button.disabled = false;
      return;
    }
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      el("slots-msg").textContent = `操作未成功：${errorText(body.error && body.error.code, r.status)}`;
      button.disabled = false;
      return;
    }
    const said = {
      placed: `报名成功：${a.title}`,
      waiting: `名额已满，已加入候补，第 ${body.position} 位`,
      withdrawn: "已取消报名",
      pending: "已提交，正在确认…",
    };
    el("slots-msg").textContent = said[body.status] || "";
    if (body.status === "pending") {
      for (const s of [1, 2, 4, 8]) setTimeout(render, s * 1000);
    }
    await render();
  }

  // The slot reminders' switch; the weekly nudge's is app.js's (a PUT sends the current value of
  // the other kind, read just before, so neither switch undoes the other).
  // Read once: a choice just made reaches the server's reads a moment later (sink), and a
  // second read in between would flip the switch back.
  let prefLoaded = false;
  async function loadPref() {
    const m = member();
    if (prefLoaded || !tok() || !m || document.body.dataset.page !== "me") return;
    prefLoaded = true;
    const prefs = await json(`/v1/members/${encodeURIComponent(m.id)}/reminder-preferences`);
    if (prefs && prefs.slot_reminder !== undefined) el("slot-pref").checked = prefs.slot_reminder;
    else prefLoaded = false;
  }

  async function onPref() {
    const m = member();
    const box = el("slot-pref");
    if (!m) return;
    const wanted = box.checked;
    const path = `/v1/members/${encodeURIComponent(m.id)}/reminder-preferences`;
    try {
      const now = await json(path);
      const r = await call(path, {
        method: "PUT",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify({weekly_nudge: now ? now.weekly_nudge : true, slot_reminder: wanted}),
      });
      if (r.ok) {
        el("slot-pref-msg").textContent = wanted ? "已开启活动提醒" : "已关闭活动提醒，之后不再发送";
        return;
      }
      const err = await r.json().catch(() => ({}));
      el("slot-pref-msg").textContent = `设置未保存：${errorText(err.error && err.error.code, r.status)}`;
    } catch (e) {
      el("slot-pref-msg").textContent = `设置未保存：${errorText("network")}`;
    }
    box.checked = !wanted;
  }

  document.addEventListener("DOMContentLoaded", () => {
    el("slot-pref").addEventListener("change", onPref);
    // After app.js has filled in the member (a first visit fetches it).
    setTimeout(render, 300);
    setTimeout(render, 2000);
    // Back online: the live list again, with its buttons.
    window.addEventListener("online", render);
  });
})();
