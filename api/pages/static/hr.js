// The unit HR office: the unit's annual assessment (年度考核) for a chosen year, page by page,
// the rules version it was computed with and the rules' text, and the same rows as CSV or Excel
// files (fetched with the bearer token, saved through a blob link with a Chinese file name).
"use strict";

const TOKEN_KEY = "volunteer.hr.token";
const PAGE = 50;
const RULE_LABEL = {
  weight_participation: "参与（实际服务周数÷应服务周数）权重",
  weight_hours: "服务时长权重",
  weight_wishes: "微心愿权重",
  weight_feedback: "服务评价权重",
  weight_evaluation: "社区鉴定权重",
  hours_cap: "服务时长封顶（小时）",
  wishes_cap: "微心愿封顶（个）",
  feedback_default: "无评价时按（分）",
  evaluation_default: "无鉴定时按（比例）",
  not_assessed_grade: "应服务周数为0时",
};

const state = {unit: null, offset: 0, total: 0, rules: null};

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "—" : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
}

async function api(path) {
  const r = await fetch(path, {headers: {Authorization: "Bearer " + desk.token()}, cache: "no-store"});
  if (r.status === 401) { desk.logout("登录已失效，请重新登录"); throw new Error("unauthorized"); }
  return r;
}
async function getJson(path) {
  const r = await api(path);
  if (!r.ok) throw new Error(await responseErrorText(r));
  return r.json();
}

function year() {
  const y = Number($("year").value);
  return Number.isInteger(y) && y >= 2000 && y <= 2100 ? y : new Date().getFullYear();
}

let communities = new Map();

async function communityNames() {
  // Names for the table; HR may not list communities, so ids are shown when it cannot.
  try {
    const out = [];
    for (let offset = 0; ; offset += 500) {
      const page = await getJson(`/v1/communities?limit=500&offset=${offset}`);
      out.push(...page.items);
      if (out.length >= page.total || !page.items.length) break;
    }
    communities = new Map(out.map((c) => [c.id, c.name]));
  } catch (e) { communities = new Map(); }
}

async function loadRules(version) {
  const all = await getJson("/v1/assessment-rules");
  const rules = all.items.find((r) => r.version === version) || all.items[all.items.length - 1];
  state.rules = rules;
  say("rules-title", `第 ${rules.version} 版${rules.version === all.current_version ? "（现行）" : ""}`);
  say("rules-description", rules.description);
  const tbody = $("rules-table").querySelector("tbody");
  tbody.replaceChildren();
  const add = (label, value) => {
    const tr = document.createElement("tr");
    cell(tr, label); cell(tr, value, "num");
    tbody.appendChild(tr);
  };
  for (const [k, label] of Object.entries(RULE_LABEL)) if (k in rules) add(label, rules[k]);
  add("社区鉴定折算", Object.entries(rules.evaluation_points).map(([g, p]) => `${g} ${p}`).join("，"));
  add("等次线", rules.grades.map((g) => `${g.grade} ≥ ${g.min_score} 分`).join("，"));
}

async function load() {
  const y = year();
  const u = encodeURIComponent(state.unit.id);
  say("toolbar-msg", "正在加载……", true);
  document.body.dataset.loaded = "";
  try {
    const a = await getJson(`/v1/units/${u}/assessments?year=${y}&limit=${PAGE}&offset=${state.offset}`);
    state.total = a.total;
    say("assessment-title", `${y}年度考核 · ${state.unit.name}`);
    say("rules-version", `按第 ${a.rules_version} 版考核规则计算，共 ${a.total} 人`);
    say("rules-year", a.year_rule ? `年度口径：${a.year_rule}` : "");
    const tbody = $("assessment-table").querySelector("tbody");
    tbody.replaceChildren();
    for (const i of a.items) {
      const tr = document.createElement("tr");
      tr.dataset.memberId = i.member_id;
      cell(tr, i.name);
      cell(tr, communities.get(i.community_id) || i.community_id);
      cell(tr, i.hours, "num");
      cell(tr, i.sessions, "num");
      cell(tr, i.active_weeks, "num");
      cell(tr, i.required_weeks, "num");
      cell(tr, i.wishes_fulfilled, "num");
      cell(tr, i.feedback_avg, "num");
      cell(tr, i.evaluation);
      cell(tr, i.score, "num");
      cell(tr, i.grade);
      tbody.appendChild(tr);
    }
    $("assessment-empty").hidden = a.items.length > 0;
    const pages = Math.max(1, Math.ceil(a.total / PAGE));
    say("page-info", `第 ${Math.floor(state.offset / PAGE) + 1} / ${pages} 页`);
    $("prev").disabled = state.offset === 0;
    $("next").disabled = state.offset + PAGE >= a.total;
    if (!state.rules || state.rules.version !== a.rules_version) await loadRules(a.rules_version);
    say("toolbar-msg", "");
    document.body.dataset.loaded = String(y);
  } catch (e) {
    if (desk.token()) say("toolbar-msg", `加载失败：${e instanceof TypeError ? errorText("network") : e.message}`);
  }
}

async function download(format) {
  const y = year();
  const label = format === "xlsx" ? "Excel" : "CSV";
  say("toolbar-msg", `正在生成 ${label} 文件……`, true);
  const r = await api(`/v1/units/${encodeURIComponent(state.unit.id)}/assessments?year=${y}&format=${format}`);
  if (!r.ok) { say("toolbar-msg", `下载失败（${r.status}）`); return; }
  const blob = await r.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `${y}年度考核-${state.unit.name}.${format}`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  say("toolbar-msg", `已下载 ${a.download}`, true);
}

async function start() {
  const y = Number(new URLSearchParams(location.search).get("year"));
  $("year").value = String(y >= 2000 && y <= 2100 ? y : new Date().getFullYear());
  $("app").hidden = false;
  $("login").hidden = true;
  say("who", state.unit.name);
  document.title = `${state.unit.name} · 单位年度考核`;
  state.offset = 0;
  await communityNames();
  await load();
}

document.addEventListener("DOMContentLoaded", async () => {
  $("refresh").addEventListener("click", () => { state.offset = 0; load(); });
  $("year").addEventListener("change", () => { state.offset = 0; load(); });
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); load(); });
  $("next").addEventListener("click", () => { state.offset += PAGE; load(); });
  $("download-xlsx").addEventListener("click", () => download("xlsx"));
  $("download-csv").addEventListener("click", () => download("csv"));

  await desk.run({
    key: TOKEN_KEY,
    role: "hr",
    wrongRole: "该令牌不是单位人事部门令牌",
    entityPath: "units",
    onSignedIn: async (entity) => { state.unit = entity; await start(); },
  });
});
