// The unit HR office's roster (issue 15): upload the unit's list of in-service members (a check
// first, or straight away), see who has reported to a community and who has not (未报到), who has
// lapsed, which reports the community confirmed (报到回执), download the list, and open a
// member's quarterly card (季度纪实卡) to print. Starts once desk.js has signed the HR office in.
"use strict";

// Its own scope: the page's main script declares functions of the same names.
(() => {
  const ROSTER_STATUS = {
    reported: "已报到", lapsed: "已报到，连续未服务", not_reported: "未报到",
    not_registered: "未报到（未登记）", other_unit: "登记在其他单位", inactive: "已离开或转出",
  };
  const roster = {unit: null};

  function rosterCell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined || text === "" ? "—" : String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function rosterFetch(path, init) {
    const headers = {Authorization: "Bearer " + desk.token()};
    return fetch(path, {...(init || {}), headers, cache: "no-store"});
  }

  function currentQuarter() {
    const d = new Date();
    return `${d.getFullYear()}-Q${Math.floor(d.getMonth() / 3) + 1}`;
  }

  function cardQuarter() {
    const q = $("unit-card-quarter").value.trim();
    return /^\d{4}-Q[1-4]$/.test(q) ? q : currentQuarter();
  }

  async function loadRoster() {
    const status = $("unit-roster-status").value;
    const r = await rosterFetch(`/v1/units/${encodeURIComponent(roster.unit.id)}/roster?status=${status}`);
    if (!r.ok) { say("unit-roster-msg", await responseErrorText(r)); return; }
    const body = await r.json();
    const c = body.counts;
    $("unit-lapsed-weeks").textContent = String(body.lapsed_after_weeks);
    $("unit-roster-count").textContent =
      `共 ${c.total} 人：已报到 ${c.reported + c.lapsed}（连续未服务 ${c.lapsed}），未报到 ${c.unreported}，社区已回执 ${c.confirmed}`;
    const tbody = $("unit-roster-table").querySelector("tbody");
    tbody.replaceChildren();
    for (const i of body.items) {
      const tr = document.createElement("tr");
      tr.dataset.status = i.status;
      rosterCell(tr, i.name);
      rosterCell(tr, i.phone);
      rosterCell(tr, i.party_branch);
      rosterCell(tr, i.position);
      rosterCell(tr, ROSTER_STATUS[i.status] || i.status, `status-${i.status}`);
      rosterCell(tr, i.community_name);
      rosterCell(tr, i.reported_on);
      rosterCell(tr, i.confirmed ? "已回执" : (i.reported_on ? "待社区确认" : ""));
      const td = rosterCell(tr, "");
      td.textContent = "";
      if (i.member_id) {
        const a = document.createElement("a");
        a.href = `/hr/card?member=${encodeURIComponent(i.member_id)}&quarter=${encodeURIComponent(cardQuarter())}`;
        a.target = "_blank";
        a.rel = "noopener";
        a.className = "card-link";
        a.textContent = "纪实卡";
        a.setAttribute("aria-label", `纪实卡（${i.name}）`);
        td.appendChild(a);
      }
      tbody.appendChild(tr);
    }
    $("unit-roster-empty").hidden = body.items.length > 0;
  }

  async function uploadRoster(dryRun) {
    const file = $("unit-roster-file").files[0];
    if (!file) { say("unit-roster-msg", "请先选择名单文件"); return; }
    const form = new FormData();
    form.append("file", file);
    say("unit-roster-msg", dryRun ? "正在检查……" : "正在上传……");
    const r = await rosterFetch(
      `/v1/imports/units/${encodeURIComponent(roster.unit.id)}/roster${dryRun ? "?dry_run=true" : ""}`,
      {method: "POST", body: form});
    const list = $("unit-roster-errors");
    list.replaceChildren();
    let body = null;
    try { body = await r.clone().json(); } catch (e) { body = null; }
    if (body && Array.isArray(body.errors)) {
      for (const e of body.errors) {
        const li = document.createElement("li");
        li.textContent = `第 ${e.row} 行「${e.column}」：${e.message}`;
        list.appendChild(li);
      }
    }
    if (!r.ok) {
      say("unit-roster-msg", await responseErrorText(r));
      return;
    }
    const counts = `新增 ${body.added} 人，更新 ${body.updated} 人，未变 ${body.unchanged} 人，移出 ${body.removed} 人`;
    say("unit-roster-msg", dryRun ? `检查通过（未保存）：${counts}` : `名单已上传：${counts}`, true);
    if (!dryRun) await loadRoster();
  }

  async function download(path, filename) {
    const r = await rosterFetch(path);
    if (!r.ok) { say("unit-roster-msg", await responseErrorText(r)); return; }
    const url = URL.createObjectURL(await r.blob());
    const a = document.createElement("a");
    a.href = url;
    a.download = filename;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  document.addEventListener("desk:signed-in", async (ev) => {
    roster.unit = ev.detail;
    $("unit-card-quarter").value = currentQuarter();
    if (!roster.wired) {
      roster.wired = true;
      $("unit-roster-form").addEventListener("submit", (e) => { e.preventDefault(); uploadRoster(false); });
      $("unit-roster-check").addEventListener("click", () => uploadRoster(true));
      $("unit-roster-status").addEventListener("change", loadRoster);
      $("unit-card-quarter").addEventListener("change", loadRoster);
      $("unit-roster-template").addEventListener("click", (e) => {
        e.preventDefault();
        download("/v1/imports/unit-roster/template?format=xlsx", "在职党员名单模板.xlsx");
      });
      $("unit-roster-download").addEventListener("click", () => {
        const status = $("unit-roster-status").value;
        download(`/v1/units/${encodeURIComponent(roster.unit.id)}/roster?status=${status}&format=xlsx`,
          `报到情况-${roster.unit.name}.xlsx`);
      });
    }
    await loadRoster();
  });
})();
