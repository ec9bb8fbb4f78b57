// The organizer's slots section (服务活动与报名) on /org: publish a slot or a weekly fixed
// service day, at a station or a level-5 grid (院落), see the coming and recent slots, cancel
// one, and open its roster with 已签到 / 缺席 / 候补 and the station each attendee scanned in at
// (attendance comes from scans, decided by the API).
"use strict";

(function () {
  const TOKEN = "volunteer.org.token";
  const SIGNUP = {placed: "已报名", waiting: "候补", withdrawn: "已取消报名", cancelled: "活动取消"};
  const ATTEND = {attended: "已签到", no_show: "缺席", pending: "未开始"};
  const WEEKDAY = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
  const stations = new Map();
  const grids = new Map();
  let community = null;

  function el(id) { return document.getElementById(id); }
  function msg(text, ok) {
    el("slot-msg").textContent = text;
    el("slot-msg").classList.toggle("ok", !!ok);
  }
  function pad(n) { return String(n).padStart(2, "0"); }
  function local(iso) {
    const d = new Date(new Date(iso).getTime() + 8 * 3600e3);
    return `${d.getUTCMonth() + 1}月${d.getUTCDate()}日 ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  }
  function today(offsetDays) {
    const d = new Date(Date.now() + 8 * 3600e3 + (offsetDays || 0) * 864e5);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  }
  async function call(path, options) {
    const opts = options || {};
    const headers = Object.assign({Authorization: "Bearer " + localStorage.getItem(TOKEN)},
      opts.headers || {});
    return fetch(path, Object.assign({}, opts, {headers, cache: "no-store"}));
  }
  async function json(path) {
    const r = await call(path);
    return r.ok ? r.json() : null;
  }
  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "—" : String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  // The places a slot can be at: the community's stations, then its level-5 grids (courtyard
  // work), each option saying which it is.
  async function loadStations() {
    const c = encodeURIComponent(community);
    const list = await json(`/v1/stations?community_id=${c}&limit=500`);
    const gridList = await json(`/v1/grids?community_id=${c}&limit=500`);
    const sel = el("slot-station");
    sel.replaceChildren();
    const group = (label) => {
      const g = document.createElement("optgroup");
      g.label = label;
      sel.appendChild(g);
      return g;
    };
    const add = (parent, id, name, kind) => {
      const o = document.createElement("option");
      o.value = id;
      o.dataset.kind = kind;
      o.textContent = name;
      parent.appendChild(o);
    };
    const st = group("站点");
    for (const s of (list && list.items) || []) {
      stations.set(s.id, s.name);
      add(st, s.id, s.name, "station");
    }
    const courtyards = ((gridList && gridList.items) || []).filter((g) => g.level === 5);
    if (courtyards.length) {
      const gr = group("网格（院落，本社区任一站点签到）");
      for (const g of courtyards) {
        grids.set(g.id, g.name);
        add(gr, g.id, `${g.name}（网格）`, "grid");
      }
    }
  }
  function placeOf(a) {
    return a.station_id ? stations.get(a.station_id) || "站点" : `${grids.get(a.grid_id) || "网格"}（网格）`;
  }

  async function loadSlots() {
    const q = `community_id=${encodeURIComponent(community)}&from=${today(-14)}&to=${today(42)}`
      + "&include_cancelled=true";
    const list = await json(`/v1/activities?${q}`);
    const tbody = el("slots-table").querySelector("tbody");
    const rows = [];
    for (const a of (list && list.items) || []) {
      const tr = document.createElement("tr");
      tr.dataset.activity = a.activity_id;
      cell(tr, local(a.starts_at));
      cell(tr, `${a.title}（${placeOf(a)}）`);
      cell(tr, `${a.placed}/${a.capacity}`, "num");
      cell(tr, a.waiting, "num");
      const over = Date.parse(a.ends_at) < Date.now();
      cell(tr, a.status === "cancelled" ? "已取消" : over ? "已结束" : "报名中");
      const td = document.createElement("td");
      const view = document.createElement("button");
      view.type = "button";
      view.className = "plain slot-roster";
      view.textContent = "名单";
      view.addEventListener("click", () => showRoster(a));
      td.appendChild(view);
      if (a.status === "open" && !over) {
        const cancel = document.createElement("button");
        cancel.type = "button";
        cancel.className = "plain slot-cancel";
        cancel.textContent = "取消活动";
        cancel.addEventListener("click", () => cancelSlot(a));
        td.appendChild(cancel);
      }
      tr.appendChild(td);
      rows.push(tr);
    }
    tbody.replaceChildren(...rows);
    el("slots-empty").hidden = rows.length > 0;
  }

  async function showRoster(a) {
    const r = await json(`/v1/activities/${encodeURIComponent(a.activity_id)}/roster`);
    if (!r) { msg("名单加载失败，请稍后重试"); return; }
    el("slot-roster").hidden = false;
    el("slot-roster-title").textContent =
      `${a.title} · ${local(a.starts_at)} · ${r.place || placeOf(a)}${r.grid_id ? "（网格）" : ""}`;
    el("slot-roster-summary").textContent =
      `名额 ${r.capacity}，已报名 ${r.placed}，候补 ${r.waiting}，已签到 ${r.attended}，缺席 ${r.no_shows}`;
    const rows = r.items.map((x) => {
      const tr = document.createElement("tr");
      cell(tr, x.name || x.member_id);
      cell(tr, x.status === "waiting" ? `候补第 ${x.position} 位` : SIGNUP[x.status] || x.status);
      cell(tr, x.attendance ? ATTEND[x.attendance] : "—",
        x.attendance === "no_show" ? "warn" : "");
      cell(tr, x.attended_station || null);
      cell(tr, local(x.signed_up_at));
      return tr;
    });
    el("slot-roster-table").querySelector("tbody").replaceChildren(...rows);
  }

  async function cancelSlot(a) {
    // One dialog: confirming is giving the reason (or none), which the members' notice quotes.
    const reason = prompt(`确定取消“${a.title}”（${local(a.starts_at)}）？已报名和候补的党员将收到取消通知。`
      + "\n取消原因（可不填，将写入通知）：", "");
    if (reason === null) return;
    const r = await call(`/v1/activities/${encodeURIComponent(a.activity_id)}/cancel`, {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({reason: reason.trim().slice(0, 500)}),
    });
    const body = await r.json().catch(() => ({}));
    msg(r.ok ? "活动已取消" : `取消未成功：${errorText(body.error && body.error.code, r.status)}`);
    setTimeout(loadSlots, 1500);
  }

  async function publish(ev) {
    ev.preventDefault();
    const day = el("slot-date").value;
    const start = el("slot-start").value;
    const end = el("slot-end").value;
    const body = {
      community_id: community,
      title: el("slot-title").value.trim(),
      description: el("slot-description").value.trim(),
      capacity: Number(el("slot-capacity").value),
      // A re-sent publish (a double click) is the same slots; randomUUID needs a secure origin.
      client_event_id: window.crypto && crypto.randomUUID ? crypto.randomUUID() : undefined,
    };
    const where = el("slot-station").selectedOptions[0];
    if (where && where.dataset.kind === "grid") body.grid_id = where.value;
    else body.station_id = el("slot-station").value;
    if (el("slot-weekly").checked) {
      const wd = WEEKDAY[new Date(`${day}T00:00:00Z`).getUTCDay()];
      body.recurrence = `every ${wd} ${start}-${end}`;
      body.weeks = Number(el("slot-weeks").value);
    } else {
      body.starts_at = `${day}T${start}:00+08:00`;
      body.ends_at = `${day}T${end}:00+08:00`;
    }
    el("slot-submit").disabled = true;
    let r;
    try {
      r = await call("/v1/activities", {
        method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
      });
    } catch (e) {
      msg(`发布未成功：${errorText("network")}`);
      el("slot-submit").disabled = false;
      return;
    }
    el("slot-submit").disabled = false;
    const out = await r.json().catch(() => ({}));
    if (!r.ok) { msg(`发布未成功：${errorText(out.error && out.error.code, r.status)}`); return; }
    msg(`已发布 ${out.ids.length} 场活动`, true);
    for (const s of [1, 3, 6]) setTimeout(loadSlots, s * 1000);
  }

  async function start() {
    const who = await json("/v1/auth/me");
    if (!who || who.role !== "organizer") return;
    community = who.subject_id;
    el("slots-desk").hidden = false;
    el("slot-date").value = today(1);
    await loadStations();
    await loadSlots();
  }

  document.addEventListener("DOMContentLoaded", () => {
    el("slot-form").addEventListener("submit", publish);
    // The desk signs in first (desk.js); the section starts once the app is shown.
    const app = el("app");
    const begin = () => { if (app && !app.hidden && community === null) start(); };
    new MutationObserver(begin).observe(app, {attributes: true, attributeFilter: ["hidden"]});
    begin();
  });
})();
