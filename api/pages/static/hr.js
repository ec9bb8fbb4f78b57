// The unit HR office: the unit's annual assessment (年度考核) for a chosen year, the whole unit
// read once (pages of 1,000) and then sorted, searched and paged here, the rules version it was
// computed with and the rules stated once from the rules themselves, each member's year one
// click from the row, and the same rows as CSV or Excel files (fetched with the bearer token,
// saved through a blob link with a Chinese file name).
"use strict";

const TOKEN_KEY = "volunteer.hr.token";
const PAGE = 50;
const FETCH_PAGE = 1000;
const STATUS_LABEL = {
  open: "进行中", closed: "已完成", auto_closed: "未签退（自动结束）", capped: "已完成（超时按上限计）",
  adjusted: "已核定", rejected: "不予认定",
};
const COMPONENT_LABEL = {
  participation: "参与", hours: "服务时长", wishes: "微心愿", feedback: "服务评价",
  evaluation: "社区鉴定",
};
const collator = new Intl.Collator("zh-CN", {numeric: true});

const state = {
  unit: null, offset: 0, total: 0, rules: null, items: [], view: [], year: null,
  sort: {key: "name", dir: 1},  // by name (natural order) until a header is clicked
};

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

function pts(weight, ratio) { return `${Math.round(weight * ratio * 100) / 100} 分`; }

// The rules in one wording, built from the version's own numbers (the points as they add up to
// 100), so the text cannot disagree with the score.
function rulesText(r) {
  const rows = [
    ["参与", `实际服务周数 ÷ 应服务周数 × ${r.weight_participation} 分`],
    ["服务时长", `服务时长 ÷ ${r.hours_cap} 小时 × ${r.weight_hours} 分（${r.hours_cap} 小时封顶）`],
    ["微心愿", `完成个数 ÷ ${r.wishes_cap} × ${r.weight_wishes} 分（${r.wishes_cap} 个封顶）`],
    ["服务评价", `（平均分 − 1）÷ 4 × ${r.weight_feedback} 分（5分制；无评价按 ${r.feedback_default} 分计）`],
    ["社区鉴定", Object.entries(r.evaluation_points).map(([g, p]) => `${g} ${pts(r.weight_evaluation, p)}`).join("，")
      + `；未鉴定 ${pts(r.weight_evaluation, r.evaluation_default)}`],
  ];
  const grades = [...r.grades].sort((a, b) => b.min_score - a.min_score);
  const bands = grades.map((g, i) => {
    const upper = i > 0 ? grades[i - 1].min_score : null;
    if (upper === null) return `${g.grade}：${g.min_score} 分及以上`;
    if (g.min_score <= 0) return `${g.grade}：低于 ${upper} 分`;
    return `${g.grade}：${g.min_score} 分及以上、低于 ${upper} 分`;
  });
  rows.push(["等次", bands.join("；")]);
  rows.push(["不参评", `当年应服务周数为 0 者记为“${r.not_assessed_grade}”`]);
  return rows;
}

async function loadRules(version) {
  const all = await getJson("/v1/assessment-rules");
  const rules = all.items.find((r) => r.version === version) || all.items[all.items.length - 1];
  state.rules = rules;
  say("rules-title", `第 ${rules.version} 版${rules.version === all.current_version ? "（现行）" : ""}`);
  const tbody = $("rules-table").querySelector("tbody");
  tbody.replaceChildren();
  for (const [label, text] of rulesText(rules)) {
    const tr = document.createElement("tr");
    cell(tr, label); cell(tr, text);
    tbody.appendChild(tr);
  }
}

function value(i, key) {
  if (key === "community") return communities.get(i.community_id) || i.community_id;
  return i[key];
}

function applyView() {
  const q = $("search").value.trim();
  let rows = state.items;
  if (q) {
    rows = rows.filter((i) => [i.name, value(i, "community"), i.grade, i.evaluation]
      .some((v) => v && String(v).includes(q)));
  }
  const {key, dir} = state.sort;
  if (key) {
    rows = [...rows].sort((a, b) => {
      const x = value(a, key), y = value(b, key);
      // Empty values last whichever way.
      if (x === null || x === undefined || x === "") return y === null || y === undefined || y === "" ? 0 : 1;
      if (y === null || y === undefined || y === "") return -1;
      const c = typeof x === "number" && typeof y === "number" ? x - y : collator.compare(String(x), String(y));
      return c * dir;
    });
  }
  state.view = rows;
  for (const th of $("assessment-table").querySelectorAll("th[data-key]")) {
    if (th.dataset.key === key) th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
  }
  say("shown", q ? `找到 ${rows.length} 人` : "");
  renderPage();
}

function renderPage() {
  const rows = state.view;
  if (state.offset >= rows.length) state.offset = Math.max(0, Math.floor((rows.length - 1) / PAGE) * PAGE);
  const tbody = $("assessment-table").querySelector("tbody");
  tbody.replaceChildren();
  for (const i of rows.slice(state.offset, state.offset + PAGE)) {
    const tr = document.createElement("tr");
    tr.dataset.memberId = i.member_id;
    const td = document.createElement("td");
    td.className = "name";
    const b = document.createElement("button");
    b.type = "button"; b.className = "link"; b.textContent = i.name;
    b.title = "查看本年度明细";
    b.addEventListener("click", () => showMember(i));
    td.appendChild(b);
    tr.appendChild(td);
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
  $("assessment-empty").hidden = state.items.length > 0;
  const pages = Math.max(1, Math.ceil(rows.length / PAGE));
  say("page-info", `第 ${Math.floor(state.offset / PAGE) + 1} / ${pages} 页`);
  $("prev").disabled = state.offset === 0;
  $("next").disabled = state.offset + PAGE >= rows.length;
}

function li(list, text) {
  const el = document.createElement("li");
  el.textContent = text;
  list.appendChild(el);
}

async function showMember(i) {
  const y = state.year;
  const dlg = $("member-detail");
  say("detail-title", `${i.name} · ${y}年度`);
  say("detail-summary", `服务 ${i.hours} 小时、${i.sessions} 次；实际服务 ${i.active_weeks} 周 / 应服务 ${i.required_weeks} 周`
    + (i.excused_weeks ? `（已扣除请假 ${i.excused_weeks} 周）；` : "；")
    + `得分 ${i.score === null ? "—" : i.score}，等次 ${i.grade}`);
  const comp = $("detail-components").querySelector("tbody");
  comp.replaceChildren();
  for (const [k, v] of Object.entries(i.components || {})) {
    const tr = document.createElement("tr");
    cell(tr, COMPONENT_LABEL[k] || k); cell(tr, `${v} 分`, "num");
    comp.appendChild(tr);
  }
  for (const id of ["detail-feedback", "detail-weeks"]) $(id).replaceChildren();
  $("detail-sessions").querySelector("tbody").replaceChildren();
  say("detail-msg", "正在加载……", true);
  if (!dlg.open) dlg.showModal();
  const m = encodeURIComponent(i.member_id);
  try {
    const [weeks, sessions, feedback] = await Promise.all([
      getJson(`/v1/members/${m}/hours/breakdown?year=${y}`),
      getJson(`/v1/members/${m}/sessions?from=${y}-01-01&to=${y}-12-31&limit=200`),
      getJson(`/v1/members/${m}/feedback?period=${y}`),
    ]);
    const fb = $("detail-feedback");
    li(fb, feedback.member_service.count
      ? `服务评价：${feedback.member_service.count} 次，平均 ${feedback.member_service.average} 分`
      : "服务评价：暂无");
    for (const s of i.summaries || []) li(fb, `社区鉴定（${s.period}）：${s.grade || "—"}${s.comment ? "，" + s.comment : ""}`);
    if (!(i.summaries || []).length) li(fb, "社区鉴定：暂无");
    const wl = $("detail-weeks");
    for (const w of weeks.by_week) li(wl, `${w.period}：${w.sessions} 次，${w.hours} 小时`);
    if (!weeks.by_week.length) li(wl, "本年度暂无服务");
    fillTable("detail-sessions", sessions.items, (tr, s) => {
      cell(tr, new Date(s.start).toLocaleString("zh-CN", {timeZone: "Asia/Shanghai", hour12: false}));
      cell(tr, `${s.hours} 小时`, "num");
      cell(tr, STATUS_LABEL[s.status] || s.status);
    });
    say("detail-msg", sessions.total > sessions.items.length ? `仅显示最近 ${sessions.items.length} 条，共 ${sessions.total} 条` : "", true);
  } catch (e) {
    if (desk.token()) say("detail-msg", `明细加载失败（${e.message}）`);
  }
}

function fillTable(id, rows, build) {
  const tbody = $(id).querySelector("tbody");
  tbody.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement("tr");
    build(tr, r);
    tbody.appendChild(tr);
  }
}

async function load() {
  const y = year();
  const u = encodeURIComponent(state.unit.id);
  say("toolbar-msg", "正在加载……", true);
  document.body.dataset.loaded = "";
  try {
    // The whole unit once (a unit has tens to a few thousand members): sorting and searching
    // then work on every row, not on one page.
    let a = null;
    const items = [];
    for (let offset = 0; ; offset += FETCH_PAGE) {
      const part = await getJson(`/v1/units/${u}/assessments?year=${y}&limit=${FETCH_PAGE}&offset=${offset}`);
      a = a || part;
      items.push(...part.items);
      if (items.length >= part.total || !part.items.length) break;
    }
    state.items = items;
    state.year = y;
    state.total = a.total;
    say("assessment-title", `${y}年度考核 · ${state.unit.name}`);
    say("rules-version", `按第 ${a.rules_version} 版考核规则计算，共 ${a.total} 人`);
    say("rules-year", a.year_rule ? `年度口径：${a.year_rule}` : "");
    applyView();
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
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); renderPage(); });
  $("next").addEventListener("click", () => { state.offset += PAGE; renderPage(); });
  $("search").addEventListener("input", () => { state.offset = 0; applyView(); });
  for (const th of $("assessment-table").querySelectorAll("th[data-key]")) {
    th.querySelector("button").addEventListener("click", () => {
      const key = th.dataset.key;
      state.sort = {key, dir: state.sort.key === key ? -state.sort.dir : 1};
      state.offset = 0;
      applyView();
    });
  }
  $("detail-close").addEventListener("click", () => $("member-detail").close());
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
