// The station's tablet: shows the station's current rotating QR code, rendered by the server,
// and fetches the next one when the window changes. The screen key comes from the link the
// organizer gave the tablet; it is sent as a header, never put into the code itself.
"use strict";

function $(id) { return document.getElementById(id); }

// The screen key arrives as `?key=` in the organizer's link; it is moved to this tablet's
// storage at once and the address cleaned, so it is not left in history or on the screen.
const KEY_STORE = `volunteer.screenKey.${location.pathname}`;
(function takeKeyFromAddress() {
  const params = new URLSearchParams(location.search);
  const k = params.get("key");
  if (!k) return;
  localStorage.setItem(KEY_STORE, k);
  params.delete("key");
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : ""));
})();

let nextChangeAt = 0;   // epoch seconds (server clock) of the next code
let skew = 0;           // server clock minus this tablet's clock, in seconds
let timer = null;

async function refresh() {
  clearTimeout(timer);
  const station = document.body.dataset.stationId;
  const key = localStorage.getItem(KEY_STORE) || "";
  let r;
  try {
    r = await fetch(`/v1/stations/${encodeURIComponent(station)}/live-code`,
      {headers: {"X-Screen-Key": key}, cache: "no-store"});
  } catch (e) {
    // The code on screen stays valid through its grace; keep trying quickly.
    $("screen-status").textContent = `${errorText("network")}，正在重新连接……`;
    timer = setTimeout(refresh, 3000);
    return;
  }
  if (!r.ok) {
    $("screen-status").textContent = r.status === 401 || r.status === 404
      ? "屏幕链接已失效，请联系社区工作人员重新获取" : `${await responseErrorText(r)}，正在重试……`;
    timer = setTimeout(refresh, 5000);
    return;
  }
  const code = await r.json();
  const img = $("qr");
  img.src = code.qr_svg;
  img.dataset.token = code.token;
  img.dataset.window = String(code.window);
  img.hidden = false;
  $("screen-status").textContent = "";
  skew = code.server_time - Date.now() / 1000;
  nextChangeAt = code.next_change_at;
  // Ask just after the window turns, so the new code is there as soon as it is valid.
  timer = setTimeout(refresh, Math.max(500, code.refresh_in_s * 1000 + 300));
}

function tick() {
  const left = Math.max(0, Math.ceil(nextChangeAt - (Date.now() / 1000 + skew)));
  if (nextChangeAt) $("countdown").textContent = `二维码 ${left} 秒后更新`;
}

// ---- 代签到: staff at the tablet check in a member of this community who has no smartphone.
// The screen key authorizes it (the same header as the code); the session is flagged as made
// by this station's tablet, for the organizer to see.

function kioskSay(text, ok) {
  $("kiosk-msg").textContent = text;
  $("kiosk-msg").classList.toggle("ok", !!ok);
}

async function kioskFetch(path, options) {
  const key = localStorage.getItem(KEY_STORE) || "";
  const headers = {...(options && options.headers), "X-Screen-Key": key};
  return fetch(path, {...options, headers, cache: "no-store"});
}

async function kioskSearch(ev) {
  ev.preventDefault();
  const station = encodeURIComponent(document.body.dataset.stationId);
  const q = $("kiosk-q").value.trim();
  if (!q) return;
  kioskSay("");
  let r;
  try {
    r = await kioskFetch(`/v1/stations/${station}/kiosk/members?q=${encodeURIComponent(q)}`);
  } catch (e) { kioskSay(errorText("network")); return; }
  if (!r.ok) { kioskSay(await responseErrorText(r)); return; }
  const found = await r.json();
  const body = $("kiosk-table").querySelector("tbody");
  body.replaceChildren();
  if (!found.items.length) { kioskSay("没有找到该党员，请核对姓名或手机号码"); return; }
  for (const m of found.items) {
    const tr = document.createElement("tr");
    tr.dataset.memberId = m.member_id;
    for (const text of [m.name, m.phone || "—", m.open_station_id ? "服务中" : ""]) {
      const td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
    }
    const td = document.createElement("td");
    for (const [action, label] of [["in", "签到"], ["out", "签退"]]) {
      const b = document.createElement("button");
      b.type = "button"; b.dataset.action = action; b.textContent = label;
      b.addEventListener("click", () => kioskCheckin(m, action, b));
      td.appendChild(b);
    }
    tr.appendChild(td);
    body.appendChild(tr);
  }
}

async function kioskCheckin(m, action, button) {
  const station = encodeURIComponent(document.body.dataset.stationId);
  button.disabled = true;
  let r;
  try {
    r = await kioskFetch(`/v1/stations/${station}/kiosk/checkins`, {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({member_id: m.member_id, action, client_event_id: crypto.randomUUID()}),
    });
  } catch (e) { kioskSay(errorText("network")); button.disabled = false; return; }
  if (r.status === 202) {
    kioskSay(`已为 ${m.name} ${action === "in" ? "签到" : "签退"}`, true);
  } else {
    kioskSay(await responseErrorText(r));
  }
  button.disabled = false;
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.page !== "screen") return;
  refresh();
  setInterval(tick, 1000);
  const form = $("kiosk-search");
  if (form) form.addEventListener("submit", kioskSearch);
});
