// The desk pages' (/org, /hr) shared sign-in: a pasted bearer token, checked with
// /v1/auth/me for the page's role, kept in this browser's localStorage under the page's own key;
// `?t=<token>` (a link handed over by the admin) signs in once and leaves the address bar.
"use strict";

function $(id) { return document.getElementById(id); }
function say(id, text, ok) {
  const el = $(id);
  if (!el) return;
  el.textContent = text;
  el.classList.toggle("ok", !!ok);
}

// A token as people paste it: from a chat with a line break in the middle, from a document with
// spaces around it, or the whole header line "Bearer eyJ…". A line break in a header made fetch
// throw (read as "network unavailable"); tokens never contain whitespace, so all of it goes.
function cleanToken(raw) {
  return String(raw || "").trim().replace(/^bearer\s+/i, "").replace(/\s+/g, "");
}

const desk = {
  key: null,

  token() { return localStorage.getItem(this.key); },

  logout(message) {
    localStorage.removeItem(this.key);
    $("app").hidden = true;
    $("login").hidden = false;
    say("login-msg", message || "");
  },

  // Resolves to {error} or {entity}: the caller's community or unit, as the registry has it.
  async signIn(t, role, wrongRole, entityPath) {
    let r;
    try {
      r = await fetch("/v1/auth/me", {headers: {Authorization: "Bearer " + t}, cache: "no-store"});
    } catch (e) { return {error: errorText("network")}; }
    if (r.status === 401) return {error: "令牌无效或已过期，请向县级管理员重新申请"};
    if (!r.ok) return {error: `登录失败：${await responseErrorText(r)}`};
    const who = await r.json();
    // A page may take several roles (the county page: the county office, a town office).
    if (!(Array.isArray(role) ? role : [role]).includes(who.role)) return {error: wrongRole};
    localStorage.setItem(this.key, t);
    const path = typeof entityPath === "function" ? entityPath(who) : entityPath;
    const fallback = {id: who.subject_id, name: who.subject_id};
    if (!path) return {entity: fallback, who};
    const e = await fetch(`/v1/${path}/${encodeURIComponent(who.subject_id)}`,
      {headers: {Authorization: "Bearer " + t}, cache: "no-store"});
    return {entity: e.ok ? await e.json() : fallback, who};
  },

  // Wires the sign-in form and the log-out button, then signs in from `?t=` or the stored
  // token; `onSignedIn(entity, who)` starts the page.
  async run({key, role, wrongRole, entityPath, onSignedIn: started}) {
    this.key = key;
    // Other scripts of the page (the unit's roster, the reports to confirm) start on this event.
    const onSignedIn = async (entity, who) => {
      await started(entity, who);
      document.dispatchEvent(new CustomEvent("desk:signed-in", {detail: entity}));
    };
    $("login-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const t = cleanToken($("login-token").value);
      if (!t) { say("login-msg", "请粘贴令牌"); return; }
      $("login-submit").disabled = true;
      const res = await this.signIn(t, role, wrongRole, entityPath);
      $("login-submit").disabled = false;
      if (res.error) { say("login-msg", res.error); return; }
      $("login-token").value = "";
      await onSignedIn(res.entity, res.who);
    });
    $("logout").addEventListener("click", () => this.logout("已退出登录"));

    const params = new URLSearchParams(location.search);
    const fromUrl = params.get("t");
    if (fromUrl) {
      params.delete("t");
      history.replaceState(null, "", location.pathname + (params.toString() ? `?${params}` : ""));
    }
    const t = cleanToken(fromUrl || this.token());
    if (!t) { this.logout(); return; }
    const res = await this.signIn(t, role, wrongRole, entityPath);
    if (res.error) { this.logout(res.error); return; }
    await onSignedIn(res.entity, res.who);
  },
};
