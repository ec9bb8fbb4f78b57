// The organizer's reports to confirm (报到回执, issue 15): the community's members who reported,
// each confirmed with one tap (an audited event the member's unit sees). Starts once desk.js
// has signed the organizer in.
"use strict";

// Its own scope: the page's main script declares functions of the same names.
(() => {
  const reports = {community: null};

  async function loadReports() {
    const r = await fetch(`/v1/communities/${encodeURIComponent(reports.community.id)}/reports`,
      {headers: {Authorization: "Bearer " + desk.token()}, cache: "no-store"});
    if (!r.ok) { say("reports-msg", await responseErrorText(r)); return; }
    const body = await r.json();
    const open = body.items.filter((i) => !i.confirmed).length;
    $("reports-count").textContent = `共 ${body.total} 人，待确认 ${open} 人`;
    const tbody = $("reports-table").querySelector("tbody");
    tbody.replaceChildren();
    for (const i of body.items) {
      const tr = document.createElement("tr");
      for (const text of [i.name, i.unit_name || i.unit_id, i.reported_on || "—",
        i.confirmed ? `已确认 ${new Date(i.confirmed_at).toLocaleDateString("zh-CN")}` : "待确认"]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      }
      const td = document.createElement("td");
      if (!i.confirmed) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "small confirm-report";
        b.textContent = "确认报到";
        b.setAttribute("aria-label", `确认报到（${i.name}）`);
        b.addEventListener("click", () => confirmReport(i, b));
        td.appendChild(b);
      }
      tr.appendChild(td);
      tbody.appendChild(tr);
    }
  }

  async function confirmReport(item, button) {
    button.disabled = true;
    const r = await fetch(`/v1/members/${encodeURIComponent(item.member_id)}/report-receipt`,
      {method: "POST", headers: {Authorization: "Bearer " + desk.token()}});
    if (!r.ok) {
      button.disabled = false;
      say("reports-msg", await responseErrorText(r));
      return;
    }
    say("reports-msg", `已确认 ${item.name} 报到，回执已送达其单位`, true);
    await loadReports();
  }

  document.addEventListener("desk:signed-in", async (ev) => {
    reports.community = ev.detail;
    await loadReports();
  });
})();
