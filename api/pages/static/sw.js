// The member app's service worker: keeps the app shell and each station page the phone opened,
// so that a poster scanned with the camera while offline still opens a page that can queue the
// scan (app.js keeps the queue and sends it once online). The API itself is never cached.
"use strict";

const CACHE = "volunteer-app-v1";
// Every script /me loads is here (tests/unit/test_static_assets.py checks it): a section whose
// script is missing offline breaks (its listeners never attach).
const SHELL = [
  "/me", "/bind", "/scan-offline", "/static/app.css", "/static/app.js", "/messages.js",
  "/manifest.webmanifest", "/static/app-icon.svg", "/static/slots.js", "/static/leave.js",
];
const MAX_STATIONS = 40;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

function cacheKey(url) {
  // Never the query: `?t=` carries a credential. Station pages by path; a poster's token is
  // printed on the wall, a screen's rotating code is useless later (not kept).
  if (url.pathname.startsWith("/s/w")) return null;
  if (url.pathname.startsWith("/s/") || SHELL.includes(url.pathname)) return url.pathname;
  return null;
}

async function keep(key, response) {
  const cache = await caches.open(CACHE);
  await cache.put(key, response);
  const stations = (await cache.keys()).filter((r) => new URL(r.url).pathname.startsWith("/s/"));
  for (const old of stations.slice(0, Math.max(0, stations.length - MAX_STATIONS))) {
    await cache.delete(old);
  }
}

self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/v1/")) return;
  const key = cacheKey(url);
  const isStation = url.pathname.startsWith("/s/");
  // Only the member's own pages: the desk pages (/org, /hr) stay outside the app.
  const memberPage = /^\/(s\/|me(\/|$)|bind(\/|$)|scan-offline$)/.test(url.pathname);
  if (!key && !memberPage) return;
  // Network first (pages and scripts stay current); the cache only when the network fails.
  event.respondWith((async () => {
    try {
      const response = await fetch(req);
      if (key && response.ok) event.waitUntil(keep(key, response.clone()));
      return response;
    } catch (e) {
      const cache = await caches.open(CACHE);
      const hit = (key && await cache.match(key))
        || (isStation && await cache.match("/scan-offline"))
        || (req.mode === "navigate" && memberPage && await cache.match("/me"));
      if (hit) return hit;
      throw e;
    }
  })());
});
