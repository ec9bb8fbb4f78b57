"""Static files compressed and cached (api/pages/assets.py), and /favicon.ico: a small app with
the same mount, in process (no network)."""

from __future__ import annotations

import gzip

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.pages import assets
from api.pages import routes as pages


def client() -> TestClient:
    app = FastAPI()
    app.include_router(pages.router)
    app.mount("/static", assets.Static(directory=pages.STATIC), name="static")
    return TestClient(app)


def test_scripts_are_gzipped_when_accepted_and_revalidated_by_etag() -> None:
    c = client()
    raw = (pages.STATIC / "dashboard.js").read_bytes()
    r = c.get("/static/dashboard.js", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip" and r.headers["vary"] == "Accept-Encoding"
    assert r.content == raw  # httpx undoes the gzip
    assert int(r.headers["content-length"]) < len(raw) / 2
    assert r.headers["cache-control"] == "no-cache"
    etag = r.headers["etag"]
    again = c.get(
        "/static/dashboard.js", headers={"Accept-Encoding": "gzip", "If-None-Match": etag}
    )
    assert again.status_code == 304 and again.content == b""
    # A browser that does not take gzip gets the file as it is, with its own ETag.
    plain = c.get("/static/dashboard.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == raw
    assert plain.headers["etag"] != etag
    assert (
        c.get(
            "/static/dashboard.js",
            headers={"If-None-Match": plain.headers["etag"], "Accept-Encoding": "identity"},
        ).status_code
        == 304
    )


def test_versioned_urls_are_cached_for_good() -> None:
    c = client()
    v = assets.version("desk.js")
    assert len(v) == 12
    r = c.get(f"/static/desk.js?v={v}", headers={"Accept-Encoding": "gzip"})
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    page = assets.versioned('<script src="/static/desk.js" defer></script>')
    assert page == f'<script src="/static/desk.js?v={v}" defer></script>'
    # The desk pages carry versioned URLs for their scripts and styles.
    html = c.get("/org").text
    assert f"/static/desk.js?v={v}" in html
    assert f"/static/dashboard.js?v={assets.version('dashboard.js')}" in html


def test_small_and_binary_files_are_sent_as_they_are() -> None:
    c = client()
    r = c.get("/static/favicon.ico", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and "content-encoding" not in r.headers


def test_favicon() -> None:
    r = client().get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"] == "image/x-icon"
    assert r.content[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_the_chart_library_compresses_to_a_third() -> None:
    path = pages.STATIC / "vendor" / "echarts.min.js"
    raw = path.read_bytes()
    assert len(gzip.compress(raw)) < len(raw) / 2.5
    r = client().get("/static/vendor/echarts.min.js", headers={"Accept-Encoding": "gzip, br"})
    assert r.headers["content-encoding"] == "gzip"


def test_the_offline_shell_keeps_every_script_and_style_of_the_member_page() -> None:
    """The service worker (sw.js) keeps /me's shell for offline use: every script and style
    the page loads must be in its list, or that section breaks offline (the slots card's script
    was missing once)."""
    import re
    from types import SimpleNamespace

    from services.settings import Settings

    app = FastAPI()
    app.include_router(pages.router)
    app.state.ctx = SimpleNamespace(settings=Settings())
    page = TestClient(app).get("/me")
    assert page.status_code == 200
    loaded = {
        u.split("?")[0]
        for u in re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page.text)
        if u.startswith("/")
    }
    assert {"/static/app.js", "/static/slots.js", "/static/leave.js"} <= loaded
    sw = (pages.STATIC / "sw.js").read_text(encoding="utf-8")
    m = re.search(r"const SHELL = \[(.*?)\];", sw, re.S)
    assert m is not None
    shell = set(re.findall(r'"([^"]+)"', m.group(1)))
    assert loaded <= shell, f"not kept offline: {sorted(loaded - shell)}"
