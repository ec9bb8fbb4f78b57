// The member's excused weeks (请假) and standing posts (岗位认领) on the phone page (/me). Uses
// the phone's binding (token and member) that app.js keeps in localStorage.
"use strict";

(function () {
  const TOKEN = "volunteer.token";
  const MEMBER = "volunteer.member";
  const STATUS = {pending: "待审批", approved: "已批准", declined: "未批准"};
  const DAY = 864e5;

  function el(id) { return document.getElementById(id); }
  function text(id, t) { const e = el(id); if (e) e.textContent = t; }
  function member() {
    try { return JSON.parse(localStorage.getItem(MEMBER)); } catch (e) { return null; }
  }
  async function call(path, options) {
    const opts = options || {};
    const headers = Object.assign({Authorization: "Bearer " + localStorage.getItem(TOKEN)},
      opts.headers || {});
    return fetch(path, Object.assign({}, opts, {headers, cache: "no-store"}));
  }
  async function json(path) {
    try { const r = await call(path); return r.ok ? await r.json() : null; }
    catch (e) { return null; }
  }
  async function post(path, body) {
    try {
      const r = await call(path, {
        method: "POST",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify(body || {}),
      });
      if (r.ok) return {ok: true, body: await r.json()};
      return {ok: false, text: await responseErrorText(r)};
    } catch (e) { return {ok: false, text: errorText("network")}; }
  }

  // ISO weeks in Asia/Shanghai, whatever the phone's own time zone.
  function shanghaiToday() {
    const d = new Date(Date.now() + 8 * 3600e3);
    return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  }
  function isoWeek(d) {
    const t = new Date(d.getTime());
    const day = (t.getUTCDay() + 6) % 7;
    t.setUTCDate(t.getUTCDate() - day + 3);  // the week's Thursday names its year
    const year = t.getUTCFullYear();
    const first = new Date(Date.UTC(year, 0, 4));
    const n = 1 + Math.round(((t - first) / DAY - 3 + ((first.getUTCDay() + 6) % 7)) / 7);
    return `${year}-W${String(n).padStart(2, "0")}`;
  }
  function md(d) { return `${d.getUTCMonth() + 1}月${d.getUTCDate()}日`; }

  // Last week (while it may still be asked for), this week and the next 8.
  function weekChoices() {
    const today = shanghaiToday();
    const monday = new Date(today.getTime() - ((today.getUTCDay() + 6) % 7) * DAY);
    const out = [];
    for (let k = -1; k <= 8; k++) {
      const start = new Date(monday.getTime() + k * 7 * DAY);
      const end = new Date(start.getTime() + 6 * DAY);
      if (k === -1 && today - end > 7 * DAY) continue;
      const label = k === 0 ? "本周" : k === -1 ? "上周" : k === 1 ? "下周" : "";
      out.push({week: isoWeek(start), text: `${label ? label + " " : ""}${md(start)}–${md(end)}`});
    }
    return out;
  }

  function renderWeeks() {
    const box = el("leave-weeks");
    for (const c of weekChoices()) {
      const label = document.createElement("label");
      label.className = "pref";
      const input = document.createElement("input");
      input.type = "checkbox";
      input.value = c.week;
      input.name = "week";
      label.append(input, document.createTextNode(c.text));
      box.appendChild(label);
    }
  }

  async function refreshLeave() {
    const m = member();
    if (!m) return;
    const list = await json(`/v1/members/${encodeURIComponent(m.id)}/excusals`);
    if (!list) return;
    el("leave-card").hidden = false;
    const ul = el("leave-list");
    ul.replaceChildren();
    if (!list.items.length) {
      const li = document.createElement("li");
      li.className = "hint";
      li.textContent = "暂无请假";
      ul.appendChild(li);
    }
    for (const r of list.items) {
      const li = document.createElement("li");
      li.dataset.status = r.status;
      const head = document.createElement("strong");
      head.textContent = `${r.weeks.join("、")} · ${r.reason_label} · ${STATUS[r.status] || r.status}`;
      li.appendChild(head);
      const why = r.status === "declined" && r.decision_reason ? `未批准原因：${r.decision_reason}` : r.note;
      if (why) { const p = document.createElement("p"); p.textContent = why; li.appendChild(p); }
      ul.appendChild(li);
    }
  }

  // This week excused (approved, not served): said on the week card, which app.js fills.
  async function refreshExcusedWeek() {
    const m = member();
    const card = el("week-card");
    if (!m || !card) return;
    const week = await json(`/v1/members/${encodeURIComponent(m.id)}/week`);
    let note = el("week-excused");
    if (!note) {
      note = document.createElement("p");
      note.id = "week-excused";
      note.className = "hint";
      card.appendChild(note);
    }
    note.hidden = !(week && week.excused);
    note.textContent = week && week.excused ? "本周已请假（社区已批准），不计未服务" : "";
  }

  async function onLeave(ev) {
    ev.preventDefault();
    const m = member();
    const weeks = [...document.querySelectorAll("#leave-weeks input:checked")].map((i) => i.value);
    if (!weeks.length) { text("leave-msg", "请选择请假周次"); return; }
    el("leave-submit").disabled = true;
    const res = await post(`/v1/members/${encodeURIComponent(m.id)}/excusals`, {
      weeks, reason: el("leave-reason").value, note: el("leave-note").value,
    });
    el("leave-submit").disabled = false;
    if (!res.ok) { text("leave-msg", `请假未提交：${res.text}`); return; }
    text("leave-msg", "已提交，等待社区审批");
    document.querySelectorAll("#leave-weeks input").forEach((i) => { i.checked = false; });
    el("leave-note").value = "";
    for (const s of [1, 3, 6]) setTimeout(refreshLeave, s * 1000);
  }

  function postLine(p, button) {
    const li = document.createElement("li");
    li.dataset.postId = p.post_id;
    const head = document.createElement("strong");
    head.textContent = `${p.title}（${p.kind_label}）`;
    li.appendChild(head);
    if (p.description) { const d = document.createElement("p"); d.textContent = p.description; li.appendChild(d); }
    if (button) li.appendChild(button);
    return li;
  }

  function action(label, path, done) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "small-button";
    b.textContent = label;
    b.addEventListener("click", async () => {
      b.disabled = true;
      const res = await post(path, {});
      if (!res.ok) { text("posts-msg", `未成功：${res.text}`); b.disabled = false; return; }
      text("posts-msg", done);
      for (const s of [1, 3, 6]) setTimeout(refreshPosts, s * 1000);
    });
    return b;
  }

  async function refreshPosts() {
    const m = member();
    if (!m) return;
    const open = await json("/v1/posts?status=open");
    const mine = await json("/v1/posts?mine=true");
    if (!open || !mine) return;
    el("posts-card").hidden = false;
    const my = el("my-posts");
    my.replaceChildren();
    for (const p of mine.items) {
      const held = p.holder_id === m.id;
      const li = postLine(p, held
        ? action("退出岗位", `/v1/posts/${encodeURIComponent(p.post_id)}/leave`, "已退出岗位")
        : null);
      const s = document.createElement("p");
      s.className = "hint";
      s.textContent = held ? "我已认领" : "认领申请待社区审批";
      li.insertBefore(s, li.children[1] || null);
      my.appendChild(li);
    }
    if (!mine.items.length) {
      const li = document.createElement("li"); li.className = "hint"; li.textContent = "暂无"; my.appendChild(li);
    }
    const ul = el("open-posts");
    ul.replaceChildren();
    const minePending = new Set(mine.items.map((p) => p.post_id));
    const claimable = open.items.filter((p) => !minePending.has(p.post_id));
    for (const p of claimable) {
      ul.appendChild(postLine(p, action("认领", `/v1/posts/${encodeURIComponent(p.post_id)}/claim`,
        "已申请认领，等待社区审批")));
    }
    if (!claimable.length) {
      const li = document.createElement("li"); li.className = "hint"; li.textContent = "暂无可认领的岗位"; ul.appendChild(li);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (document.body.dataset.page !== "me" || !el("leave-card")) return;
    renderWeeks();
    el("leave-form").addEventListener("submit", onLeave);
    // app.js reads the bound member first (a fresh binding fetches it): wait for it briefly.
    let tries = 0;
    const start = () => {
      if (localStorage.getItem(TOKEN) && member() && member().id) {
        refreshLeave(); refreshPosts(); refreshExcusedWeek(); return;
      }
      if (++tries < 20) setTimeout(start, 300);
    };
    start();
  });
})();
