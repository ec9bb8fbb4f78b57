// Excused weeks (请假) and standing posts (岗位认领) on the desk pages: the organizer's pending
// requests and posts (/org), the unit's members' requests (/hr). Starts once the page's own
// script has signed in (the #app section shows), with the token that script stored.
"use strict";

(function () {
  const STATUS = {pending: "待审批", approved: "已批准", declined: "未批准"};
  const page = () => document.body.dataset.page;
  const tokenKey = () => (page() === "hr" ? "volunteer.hr.token" : "volunteer.org.token");
  const names = new Map();
  const gridNames = new Map();
  let subject = null;

  function el(id) { return document.getElementById(id); }
  function msg(id, t, ok) { const e = el(id); if (!e) return; e.textContent = t; e.classList.toggle("ok", !!ok); }
  function when(iso) {
    if (!iso) return "—";
    const d = new Date(new Date(iso).getTime() + 8 * 3600e3);
    return `${d.getUTCMonth() + 1}月${d.getUTCDate()}日 ${String(d.getUTCHours()).padStart(2, "0")}:${String(d.getUTCMinutes()).padStart(2, "0")}`;
  }
  async function call(path, options) {
    const opts = options || {};
    const headers = Object.assign({Authorization: "Bearer " + localStorage.getItem(tokenKey())},
      opts.headers || {});
    return fetch(path, Object.assign({}, opts, {headers, cache: "no-store"}));
  }
  async function json(path) {
    try { const r = await call(path); return r.ok ? await r.json() : null; } catch (e) { return null; }
  }
  async function send(path, body) {
    try {
      const r = await call(path, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
      return r.ok ? {ok: true} : {ok: false, text: await responseErrorText(r)};
    } catch (e) { return {ok: false, text: errorText("network")}; }
  }
  function td(tr, text) {
    const c = document.createElement("td");
    c.textContent = text === null || text === undefined || text === "" ? "—" : String(text);
    tr.appendChild(c);
    return c;
  }
  function fill(id, emptyId, rows, build) {
    const tbody = el(id).querySelector("tbody");
    tbody.replaceChildren();
    for (const r of rows) { const tr = document.createElement("tr"); build(tr, r); tbody.appendChild(tr); }
    el(emptyId).hidden = rows.length > 0;
  }
  const who = (id) => names.get(id) || id;
  const later = (fn) => { for (const s of [1, 3, 6]) setTimeout(fn, s * 1000); };

  async function loadNames(filter) {
    const page = await json(`/v1/members?${filter}&limit=500`);
    if (page) for (const m of page.items) names.set(m.id, m.name);
  }

  // ---- the organizer ----------------------------------------------------------------------

  async function refreshExcusals() {
    const list = await json(`/v1/communities/${encodeURIComponent(subject)}/excusals?status=pending`);
    if (!list) return;
    fill("excusals-table", "excusals-empty", list.items, (tr, r) => {
      tr.dataset.requestId = r.request_id;
      td(tr, who(r.member_id));
      td(tr, r.weeks.join("、"));
      td(tr, r.reason_label);
      td(tr, r.note);
      td(tr, when(r.requested_at));
      const c = td(tr, "");
      c.textContent = "";
      const ok = document.createElement("button");
      ok.type = "button"; ok.className = "small approve"; ok.textContent = "批准";
      const no = document.createElement("button");
      no.type = "button"; no.className = "small reject"; no.textContent = "不批准";
      const why = document.createElement("input");
      why.placeholder = "不批准原因"; why.maxLength = 500; why.className = "reason";
      why.setAttribute("aria-label", "不批准原因");
      const decide = async (decision) => {
        if (decision === "decline" && !why.value.trim()) { msg("excusals-msg", "不批准时请填写原因"); why.focus(); return; }
        ok.disabled = no.disabled = true;
        const res = await send(`/v1/excusals/${encodeURIComponent(r.request_id)}/decision`,
          {decision, reason: why.value.trim()});
        if (!res.ok) { msg("excusals-msg", `未成功：${res.text}`); ok.disabled = no.disabled = false; return; }
        msg("excusals-msg", `已${decision === "approve" ? "批准" : "不批准"}：${who(r.member_id)} ${r.weeks.join("、")}`, true);
        tr.remove();
        later(refreshExcusals);
      };
      ok.addEventListener("click", () => decide("approve"));
      no.addEventListener("click", () => decide("decline"));
      c.append(ok, " ", why, " ", no);
    });
  }

  async function refreshPosts() {
    const list = await json(`/v1/posts?community_id=${encodeURIComponent(subject)}`);
    if (!list) return;
    // Posts with a claim waiting first: that is what the organizer has to do.
    const rows = [...list.items].sort((a, b) => (b.pending_claims.length > 0) - (a.pending_claims.length > 0));
    fill("posts-table", "posts-empty", rows, (tr, p) => {
      tr.dataset.postId = p.post_id;
      td(tr, `${p.title}（${p.kind_label}）`);
      td(tr, gridNames.get(p.grid_id) || p.grid_id);
      td(tr, p.status_label);
      const holder = td(tr, p.holder_id ? who(p.holder_id) : "");
      if (p.holder_id) {
        const end = document.createElement("button");
        end.type = "button"; end.className = "small plain"; end.textContent = "结束认领";
        end.addEventListener("click", async () => {
          end.disabled = true;
          const res = await send(`/v1/posts/${encodeURIComponent(p.post_id)}/leave`, {reason: ""});
          msg("posts-desk-msg", res.ok ? `已结束：${p.title}` : `未成功：${res.text}`, res.ok);
          if (res.ok) later(refreshPosts); else end.disabled = false;
        });
        holder.append(" ", end);
      }
      const pending = td(tr, "");
      pending.textContent = p.pending_claims.length ? "" : "—";
      for (const m of p.pending_claims) {
        const line = document.createElement("span");
        line.className = "claim";
        line.append(who(m), " ");
        for (const [decision, label, cls] of [["approve", "批准", "approve"], ["decline", "不批准", "reject"]]) {
          const b = document.createElement("button");
          b.type = "button"; b.className = `small ${cls}`; b.textContent = label;
          b.addEventListener("click", async () => {
            b.disabled = true;
            const res = await send(`/v1/posts/${encodeURIComponent(p.post_id)}/decision`, {member_id: m, decision});
            msg("posts-desk-msg", res.ok ? `已${label}：${who(m)} 认领 ${p.title}` : `未成功：${res.text}`, res.ok);
            if (res.ok) later(refreshPosts); else b.disabled = false;
          });
          line.append(b, " ");
        }
        pending.appendChild(line);
      }
    });
  }

  async function loadGrids() {
    const grids = await json(`/v1/grids?community_id=${encodeURIComponent(subject)}&limit=500`);
    const sel = el("post-grid");
    sel.replaceChildren();
    for (const g of grids ? grids.items : []) {
      gridNames.set(g.id, g.name);
      if (g.level !== 5) continue;
      const o = document.createElement("option");
      o.value = g.id; o.textContent = g.name;
      sel.appendChild(o);
    }
  }

  async function onCreate(ev) {
    ev.preventDefault();
    const res = await send("/v1/posts", {
      community_id: subject, grid_id: el("post-grid").value, kind: el("post-kind").value,
      title: el("post-title").value.trim(),
    });
    msg("posts-desk-msg", res.ok ? "岗位已新建" : `未成功：${res.text}`, res.ok);
    if (res.ok) { el("post-title").value = ""; later(refreshPosts); }
  }

  // ---- HR -------------------------------------------------------------------------------

  async function refreshHr() {
    await loadNames(`unit_id=${encodeURIComponent(subject)}`);
    await refreshHrSlots();
    const list = await json(`/v1/units/${encodeURIComponent(subject)}/excusals`);
    if (!list) return;
    fill("hr-excusals-table", "hr-excusals-empty", list.items, (tr, r) => {
      td(tr, who(r.member_id));
      td(tr, r.weeks.join("、"));
      td(tr, r.reason_label);
      td(tr, STATUS[r.status] || r.status);
      td(tr, when(r.decided_at));
    });
  }

  // The unit's members' places in slots that are over: held, attended, no-shows (缺席).
  async function refreshHrSlots() {
    if (!el("hr-slots-table")) return;
    const list = await json(`/v1/activities/no-shows?unit_id=${encodeURIComponent(subject)}`);
    if (!list) return;
    const rows = list.items.slice().sort((a, b) => b.no_shows - a.no_shows
      || (a.name || "").localeCompare(b.name || "", "zh-CN", {numeric: true}));
    fill("hr-slots-table", "hr-slots-empty", rows, (tr, r) => {
      td(tr, r.name || who(r.member_id));
      for (const n of [r.placed, r.attended, r.no_shows]) td(tr, String(n)).className = "num";
    });
  }

  async function start() {
    const me = await json("/v1/auth/me");
    if (!me) return;
    subject = me.subject_id;
    if (page() === "hr") { await refreshHr(); return; }
    await loadNames(`community_id=${encodeURIComponent(subject)}`);
    await loadGrids();
    await Promise.all([refreshExcusals(), refreshPosts()]);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const app = el("app");
    if (!app || !(el("leave-desk") || el("hr-excusals-card"))) return;
    const form = el("post-form");
    if (form) form.addEventListener("submit", onCreate);
    const refresh = el("refresh");
    let started = false;
    const go = () => { if (!app.hidden && !started) { started = true; start(); } };
    new MutationObserver(() => { if (app.hidden) started = false; go(); })
      .observe(app, {attributes: true, attributeFilter: ["hidden"]});
    if (refresh) refresh.addEventListener("click", () => { if (!app.hidden) start(); });
    go();
  });
})();
