// The quarterly card (季度纪实卡) printed by the unit: `/hr/card?member=<id>&quarter=2026-Q4`,
// read with the HR office's token kept by the /hr page (this browser's localStorage).
"use strict";

function el(id) { return document.getElementById(id); }
function put(id, text) { el(id).textContent = text === null || text === undefined || text === "" ? "—" : String(text); }

function local(iso) {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  // Asia/Shanghai, whatever the browser's own zone.
  const cst = new Date(d.getTime() + (8 * 60 + d.getTimezoneOffset()) * 60000);
  return [`${cst.getFullYear()}-${pad(cst.getMonth() + 1)}-${pad(cst.getDate())}`,
    `${pad(cst.getHours())}:${pad(cst.getMinutes())}`];
}

async function showCard() {
  const params = new URLSearchParams(location.search);
  const token = localStorage.getItem("volunteer.hr.token");
  if (!token) { put("card-msg", "请先在单位考核页面（/hr）登录，再打开纪实卡"); return; }
  const member = params.get("member") || "";
  const quarter = params.get("quarter") || "";
  const r = await fetch(
    `/v1/members/${encodeURIComponent(member)}/quarterly-card?quarter=${encodeURIComponent(quarter)}`,
    {headers: {Authorization: "Bearer " + token}, cache: "no-store"});
  if (!r.ok) { put("card-msg", await responseErrorText(r)); return; }
  const c = await r.json();
  document.title = `${c.name} · ${c.quarter} 季度纪实卡`;
  const [y, q] = c.quarter.split("-Q");
  put("card-quarter", `${y}年第${q}季度（${c.period_from} 至 ${c.period_to}）`);
  put("card-name", c.name);
  put("card-unit", c.unit_name);
  put("card-branch", c.party_branch);
  put("card-community", c.community_name);
  put("card-weeks", `${c.weeks_served} 周`);
  put("card-hours", `${c.hours.toFixed(2)} 小时`);
  put("card-sessions", `${c.sessions} 次`);
  put("card-wishes", `${c.wishes_fulfilled} 个`);
  put("card-feedback", c.feedback_count ? `${c.feedback_avg} 分（${c.feedback_count} 次评价）` : "暂无评价");
  put("card-evaluation", c.evaluation || "未评议");
  put("card-comment", c.evaluation_comment);
  const tbody = el("card-activities").querySelector("tbody");
  tbody.replaceChildren();
  c.activities.forEach((a, n) => {
    const tr = document.createElement("tr");
    const [day, time] = local(a.start);
    for (const text of [n + 1, day, time, a.station_name, a.hours.toFixed(2), a.counted ? "" : "不计次"]) {
      const td = document.createElement("td");
      td.textContent = String(text);
      tr.appendChild(td);
    }
    tbody.appendChild(tr);
  });
  if (!c.activities.length) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 6;
    td.textContent = "本季度无服务记录";
    tr.appendChild(td);
    tbody.appendChild(tr);
  }
  el("card").hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  el("card-print").addEventListener("click", () => window.print());
  showCard();
});
