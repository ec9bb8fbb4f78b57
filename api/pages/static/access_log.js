// The admin's log of who read whose personal data (GET /v1/access-log), filtered and paged.
"use strict";

const TOKEN_KEY = "admin-token";
const PAGE = 50;
const KIND = {phone_reveal: "查看完整号码", phones_export: "下载含号码的名单", member_record: "查看登记信息",
  member_list: "查看党员名单", wish_contact: "查看居民联系方式"};
const ROLE = {admin: "管理员", organizer: "社区", hr: "单位", member: "党员", county: "县委组织部",
  town: "镇（街道）", station: "站点平板"};
let offset = 0;

function local(iso) {
  // Asia/Shanghai, as every time on these pages.
  const d = new Date(Date.parse(iso) + 8 * 3600e3);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}`;
}

function query() {
  const q = new URLSearchParams({limit: String(PAGE), offset: String(offset)});
  const v = (id) => $(id).value.trim();
  if (v("f-member")) q.set("member_id", v("f-member"));
  if (v("f-actor")) q.set("actor_id", v("f-actor"));
  if (v("f-kind")) q.set("kind", v("f-kind"));
  // A day is a local (Asia/Shanghai) day: from its start, to the next day's start.
  if (v("f-since")) q.set("since", `${v("f-since")}T00:00:00+08:00`);
  if (v("f-until")) {
    const end = new Date(Date.parse(`${v("f-until")}T00:00:00+08:00`) + 86400e3);
    q.set("until", end.toISOString());
  }
  return q;
}

function whom(e) {
  // A name with its id (names repeat); a long file's list cut to its first three.
  const named = e.member_ids.map((id, i) => (e.member_names[i] ? `${e.member_names[i]}（${id}）` : id));
  return named.length > 3 ? `${named.slice(0, 3).join("、")} 等 ${named.length} 人` : named.join("、");
}

async function load() {
  say("toolbar-msg", "正在加载……");
  let r;
  try {
    r = await fetch(`/v1/access-log?${query()}`,
      {headers: {Authorization: "Bearer " + desk.token()}, cache: "no-store"});
  } catch (e) { say("toolbar-msg", `加载失败：${errorText("network")}`); return; }
  if (r.status === 401) { desk.logout("登录已失效，请重新登录"); return; }
  if (!r.ok) { say("toolbar-msg", `加载失败：${await responseErrorText(r)}`); return; }
  const page = await r.json();
  const tbody = $("log-table").querySelector("tbody");
  tbody.replaceChildren();
  for (const e of page.items) {
    const tr = document.createElement("tr");
    tr.dataset.id = e.id;
    const cells = [
      local(e.at),
      KIND[e.kind] || e.kind,
      `${ROLE[e.actor_role] || e.actor_role} ${e.actor_name || e.actor_id}`,
      whom(e),
      [e.route, e.detail].filter(Boolean).join(" · "),
    ];
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.appendChild(td);
    }
    tbody.appendChild(tr);
  }
  $("log-empty").hidden = page.items.length > 0;
  const last = Math.min(offset + page.items.length, page.total);
  say("page-info", page.total ? `第 ${offset + 1}–${last} 条，共 ${page.total} 条` : "");
  $("prev").disabled = offset === 0;
  $("next").disabled = offset + PAGE >= page.total;
  say("toolbar-msg", "");
  document.body.dataset.loaded = String(Date.now());
}

document.addEventListener("DOMContentLoaded", async () => {
  $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); offset = 0; load(); });
  $("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
  $("next").addEventListener("click", () => { offset += PAGE; load(); });
  await desk.run({
    key: TOKEN_KEY,
    role: "admin",
    wrongRole: "该令牌不是管理员令牌",
    entityPath: null,
    onSignedIn: async () => {
      $("app").hidden = false;
      $("login").hidden = true;
      say("who", "县级管理员");
      await load();
    },
  });
});
