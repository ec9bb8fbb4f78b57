"""The member's pages as a member meets them (issue 19): every page at 320, 390 and 1366 px with
screenshots; errors in Chinese; a second tap of 签到; another community's station; offline from
the camera; re-binding by phone; tokens out of the address bar; contrast and touch targets."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, expect

from services.tokens import sign_station
from tests.support.a11y import assert_no_serious_violations
from tests.support.live import BROWSER_MARKS, Live, browser_context, scan

pytestmark = BROWSER_MARKS

Shot = Callable[[Page, str], Path]
WIDTHS = (320, 390, 1366)
ENGLISH = re.compile(r"[A-Za-z]{5,}")

# The WCAG contrast of an element's text against the first opaque background behind it.
CONTRAST_JS = """el => {
  const rgb = s => s.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  let bg = null;
  for (let n = el; n; n = n.parentElement) {
    const c = rgb(getComputedStyle(n).backgroundColor);
    if (c.length < 4 || c[3] > 0.99) { bg = c; break; }
  }
  bg = bg || [255, 255, 255];
  const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(bg)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""

# Every visible button and link of the page smaller than 44 px in height.
SMALL_TARGETS_JS = """() => [...document.querySelectorAll('button, a, summary, input')]
  .filter(e => e.offsetParent !== null)
  .map(e => ({id: e.id || e.textContent.trim().slice(0, 12), h: e.getBoundingClientRect().height}))
  .filter(t => t.h < 44)"""


def activation(live: Live, member_id: str, community_id: str) -> dict[str, Any]:
    r = live.http.post(
        "/v1/activations",
        json={"member_id": member_id},
        headers=live.auth("organizer", community_id),
    )
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def bind(page: Page, live: Live, member_id: str) -> None:
    page.goto(f"{live.base_url}/me?t={live.token('member', member_id)}")
    expect(page.locator("#who")).to_contain_text("已绑定")


def no_sideways_scroll(page: Page) -> None:
    # Against the screen's width: a phone's layout viewport grows to fit wide content.
    width = page.viewport_size["width"] if page.viewport_size else 0
    over = page.evaluate("document.documentElement.scrollWidth") - width
    assert over <= 1, f"{page.url} is {over} px wider than the screen"


def seeded_member(live: Live, name: str) -> dict[str, Any]:
    d = live.community_with_member(name)
    now = datetime.now(UTC)
    scan(live, d["member"]["id"], d["station"]["id"], "in", now - timedelta(minutes=95))
    scan(live, d["member"]["id"], d["station"]["id"], "out", now - timedelta(minutes=5))
    return d


def test_every_member_page_at_three_widths(
    live: Live, sized: Callable[[int], BrowserContext], shot: Shot
) -> None:
    d = seeded_member(live, "赵敏")
    member_id = d["member"]["id"]
    mine = live.auth("member", member_id)
    assert live.wait_for(
        lambda: (
            live.http.get(f"/v1/members/{member_id}/sessions", headers=mine).json()["total"] == 1
        ),
        timeout=40,
    )
    today = datetime.now(UTC).date()
    r = live.http.post(
        f"/v1/members/{member_id}/service-records",
        json={"from": str(today - timedelta(days=7)), "to": str(today)},
        headers=mine,
    )
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    station = sign_station(live.settings, d["station"]["id"])
    for width in WIDTHS:
        ctx = sized(width)
        page = ctx.new_page()
        act = activation(live, member_id, d["community"]["id"])
        page.goto(act["url"])
        expect(page.locator("#bind")).to_be_visible()
        no_sideways_scroll(page)
        assert_no_serious_violations(page)
        shot(page, f"member-{width}-01-bind")
        page.click("#bind-submit")
        expect(page.locator("#status")).to_contain_text("绑定成功：赵敏")
        page.goto(f"{live.base_url}/s/{station}")
        expect(page.locator("#status")).to_have_attribute("data-state", "ready")
        no_sideways_scroll(page)
        assert_no_serious_violations(page)
        shot(page, f"member-{width}-02-scan")
        page.goto(f"{live.base_url}/me")
        expect(page.locator("#week")).to_have_attribute("data-served", "true", timeout=20_000)
        no_sideways_scroll(page)
        assert_no_serious_violations(page)
        shot(page, f"member-{width}-03-me")
        page.goto(f"{live.base_url}/me/history")
        expect(page.locator("body")).to_have_attribute("data-loaded", "1")
        no_sideways_scroll(page)
        assert_no_serious_violations(page)
        shot(page, f"member-{width}-04-history")
        page.goto(f"{live.base_url}/records/{code}")
        expect(page.locator("h1")).to_have_text("志愿服务证明")
        no_sideways_scroll(page)
        assert_no_serious_violations(page)
        shot(page, f"member-{width}-05-record")
        page.goto(f"{live.base_url}/verify/{code}")
        expect(page.locator("body")).to_contain_text("真实有效")
        no_sideways_scroll(page)
        assert_no_serious_violations(page)
        shot(page, f"member-{width}-06-verify")
        page.goto(f"{live.base_url}/scan-offline")
        expect(page.locator("#btn-in")).to_be_visible()
        no_sideways_scroll(page)
        assert_no_serious_violations(page)
        shot(page, f"member-{width}-07-offline-shell")


def test_refusals_are_in_chinese_and_say_what_to_do(
    live: Live, phone: BrowserContext, shot: Shot
) -> None:
    d = live.community_with_member("周强")
    member_id = d["member"]["id"]
    page = phone.new_page()
    bind(page, live, member_id)
    r = live.http.patch(f"/v1/members/{member_id}", json={"status": "left"}, headers=live.admin)
    assert r.status_code == 200, r.text
    page.goto(f"{live.base_url}/s/{sign_station(live.settings, d['station']['id'])}")
    page.click("#btn-in")
    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "error")
    expect(status).to_have_text("签到失败：您的报到关系已变更，请联系社区")
    shot(page, "member-err-01-left")
    # A spent or wrong activation code, in words.
    page.goto(f"{live.base_url}/bind/ABCDEFGH")
    page.click("#bind-submit")
    expect(page.locator("#bind-msg")).to_contain_text("激活码")
    assert not ENGLISH.search(page.locator("#bind-msg").inner_text())
    # An unknown record: the check page says so in Chinese.
    resp = page.goto(f"{live.base_url}/v1/verify/{secrets.token_hex(8)}")
    assert resp is not None and resp.status == 404
    expect(page.locator("body")).to_contain_text("未找到此验证码对应的服务证明")
    assert not ENGLISH.search(page.locator("body").inner_text())


def test_a_second_tap_within_the_window_is_not_a_second_entry(
    live: Live, phone: BrowserContext, shot: Shot
) -> None:
    d = live.community_with_member("孙丽")
    member_id = d["member"]["id"]
    page = phone.new_page()
    bind(page, live, member_id)
    page.goto(f"{live.base_url}/s/{sign_station(live.settings, d['station']['id'])}")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/v1/checkins") else None)
    page.click("#btn-in")
    expect(page.locator("#status")).to_contain_text("签到成功")
    page.click("#btn-in")
    expect(page.locator("#status")).to_have_text("已签到，无需重复")
    expect(page.locator("#recent li")).to_have_count(1)
    assert len(sent) == 1
    # How long the open session has run, and a reminder to scan out.
    expect(page.locator("#session")).to_contain_text("本次服务已进行")
    expect(page.locator("#session")).to_contain_text("离开时请扫码签退")
    shot(page, "member-repeat-01")
    # After a reload the server's open session says the same.
    page.reload()
    expect(page.locator("#session")).to_contain_text("本次服务已进行", timeout=20_000)
    # The other button is not a repeat.
    page.click("#btn-out")
    expect(page.locator("#status")).to_contain_text("签退成功")
    expect(page.locator("#session")).to_be_hidden()


def test_another_communitys_station_warns_before_and_is_named_after(
    live: Live, phone: BrowserContext, shot: Shot
) -> None:
    d = live.community_with_member("钱进")
    member_id = d["member"]["id"]
    tag = uuid.uuid4().hex[:4]
    other = live.create("/v1/communities", {"name": f"东关社区{tag}"})
    away = live.create(
        "/v1/stations", {"community_id": other["id"], "name": "东关党员驿站", "kind": "member_post"}
    )
    page = phone.new_page()
    bind(page, live, member_id)
    page.goto(f"{live.base_url}/s/{sign_station(live.settings, d['station']['id'])}")
    expect(page.locator("#status")).to_have_attribute("data-state", "ready")
    expect(page.locator("#away")).to_be_hidden()
    page.goto(f"{live.base_url}/s/{sign_station(live.settings, away['id'])}")
    warn = page.locator("#away")
    expect(warn).to_be_visible()
    expect(warn).to_contain_text(f"东关社区{tag}")
    expect(warn).to_contain_text("不是您报到的社区")
    shot(page, "member-away-01-warning")
    now = datetime.now(UTC)
    page.clock.set_fixed_time(now - timedelta(minutes=40))
    page.click("#btn-in")
    expect(page.locator("#status")).to_contain_text("签到成功")
    page.clock.set_fixed_time(now - timedelta(minutes=1))
    page.click("#btn-out")
    expect(page.locator("#status")).to_contain_text("签退成功")
    mine = live.auth("member", member_id)
    assert live.wait_for(
        lambda: (
            live.http.get(f"/v1/members/{member_id}/sessions", headers=mine).json()["total"] == 1
        ),
        timeout=40,
    )
    page.goto(f"{live.base_url}/me/history")
    expect(page.locator("body")).to_have_attribute("data-loaded", "1")
    expect(page.locator("#sessions li").first).to_contain_text("东关党员驿站")
    shot(page, "member-away-02-history")


def test_a_poster_scanned_offline_from_the_camera_is_queued(
    live: Live, phone: BrowserContext, shot: Shot
) -> None:
    d = live.community_with_member("李华")
    member_id = d["member"]["id"]
    second = live.create(
        "/v1/stations",
        {"community_id": d["community"]["id"], "name": "城关党员驿站", "kind": "member_post"},
    )
    page = phone.new_page()
    bind(page, live, member_id)
    visited = sign_station(live.settings, d["station"]["id"])
    page.goto(f"{live.base_url}/s/{visited}")
    expect(page.locator("#status")).to_have_attribute("data-state", "ready")
    # Installable: a manifest, and a service worker that controls the page.
    assert page.evaluate(
        "async () => { await navigator.serviceWorker.ready; return !!document.querySelector("
        "'link[rel=manifest]'); }"
    )
    page.reload()
    page.wait_for_function("() => !!navigator.serviceWorker.controller")
    manifest = live.http.get("/manifest.webmanifest").json()
    assert manifest["start_url"] == "/me" and manifest["display"] == "standalone"

    phone.set_offline(True)
    # A station opened before: its own page, from the cache.
    page.goto(f"{live.base_url}/s/{visited}")
    expect(page.locator("#title")).to_have_text("城关党群服务站")
    # A station never opened: the app shell, which takes the station from the address.
    never = sign_station(live.settings, second["id"])
    page.goto(f"{live.base_url}/s/{never}")
    expect(page.locator("#title")).to_have_text("扫码签到")
    page.click("#btn-in")
    expect(page.locator("#status")).to_have_attribute("data-state", "queued")
    expect(page.locator("#pending")).to_have_attribute("data-count", "1")
    shot(page, "member-offline-01-queued-from-camera")
    phone.set_offline(False)
    expect(page.locator("#pending")).to_have_attribute("data-count", "0", timeout=30_000)
    expect(page.locator("#status")).to_have_attribute("data-state", "uploaded")

    def arrived() -> bool:
        w = live.http.get(f"/v1/members/{member_id}/week", headers=live.admin).json()
        return bool(w["scans"] == 1 and w["open_session"])

    assert live.wait_for(arrived, timeout=40)


def test_rebinding_another_browser_by_phone_number(
    live: Live, browser: Browser, phone: BrowserContext, shot: Shot
) -> None:
    tag = uuid.uuid4().hex[:4]
    unit = live.create("/v1/units", {"name": f"县教育局{tag}"})
    community = live.create("/v1/communities", {"name": f"西关社区{tag}", "phone": "0932-6620000"})
    station = live.create(
        "/v1/stations",
        {"community_id": community["id"], "name": "西关党群服务站", "kind": "service_station"},
    )
    number = "138" + str(secrets.randbelow(10**8)).zfill(8)
    member = live.create(
        "/v1/members",
        {"name": "吴桐", "unit_id": unit["id"], "community_id": community["id"], "phone": number},
    )
    # Bound inside one browser (say WeChat): the code is spent.
    first = phone.new_page()
    first.goto(activation(live, member["id"], community["id"])["url"])
    first.click("#bind-submit")
    expect(first.locator("#status")).to_contain_text("绑定成功：吴桐")
    # The camera app opens the poster in another browser: unbound, and told whom to call.
    other = next(browser_context(browser, live, viewport={"width": 390, "height": 844}))
    page = other.new_page()
    page.goto(f"{live.base_url}/s/{sign_station(live.settings, station['id'])}")
    expect(page.locator("#bind")).to_be_visible()
    expect(page.locator("#contact")).to_contain_text("没有激活码？请联系社区")
    expect(page.locator("#contact")).to_contain_text("0932-6620000")
    page.click("#rebind summary")
    page.fill("#bind-code", activation(live, member["id"], community["id"])["code"])
    page.fill("#bind-phone", "13800000000" if number != "13800000000" else "13900000000")
    page.click("#bind-submit")
    expect(page.locator("#bind-msg")).to_contain_text("激活码不正确")
    page.fill("#bind-phone", number)
    page.click("#bind-submit")
    expect(page.locator("#status")).to_contain_text("绑定成功：吴桐")
    shot(page, "member-rebind-01")
    page.click("#btn-in")
    expect(page.locator("#status")).to_contain_text("签到成功")
    other.close()


def test_tokens_leave_the_address_bar_and_the_header_names_the_member(
    live: Live, phone: BrowserContext, tablet: BrowserContext
) -> None:
    d = live.community_with_member("郑洁")
    member_id = d["member"]["id"]
    page = phone.new_page()
    t = live.token("member", member_id)
    page.goto(f"{live.base_url}/me?t={t}")
    assert page.url == f"{live.base_url}/me"
    expect(page.locator("#subtitle")).to_contain_text("郑洁")
    expect(page.locator("#status")).to_contain_text("郑洁")
    assert t not in page.evaluate("location.href")

    # /bind/{code}: the code moves to the page's storage, the header follows the binding.
    act = activation(live, member_id, d["community"]["id"])
    page.evaluate("localStorage.clear()")  # an unbound phone again
    fresh = phone.new_page()
    fresh.goto(act["url"])
    expect(fresh.locator("#title")).to_have_text("绑定手机")
    assert fresh.url == f"{live.base_url}/bind"
    expect(fresh.locator("#bind-code")).to_have_value(act["code"])
    fresh.reload()  # a reload keeps the code (session storage), not the address
    expect(fresh.locator("#bind-code")).to_have_value(act["code"])
    fresh.click("#bind-submit")
    expect(fresh.locator("#title")).to_have_text("我的志愿服务")
    expect(fresh.locator("#subtitle")).to_contain_text("郑洁")
    expect(fresh).to_have_url(f"{live.base_url}/me")

    # The station tablet's ?key=: moved to storage; a reload still shows the code.
    r = live.http.post(
        f"/v1/stations/{d['station']['id']}/screen-keys",
        headers=live.auth("organizer", d["community"]["id"]),
    )
    assert r.status_code == 201, r.text
    screen = tablet.new_page()
    screen.goto(r.json()["url"])
    expect(screen.locator("#qr")).to_be_visible()
    assert "key=" not in screen.url
    screen.reload()
    expect(screen.locator("#qr")).to_be_visible()
    assert "key=" not in screen.url


def test_footer_contrast_and_touch_targets(live: Live, phone: BrowserContext) -> None:
    d = seeded_member(live, "冯雪")
    page = phone.new_page()
    bind(page, live, d["member"]["id"])
    assert page.locator("#who").evaluate(CONTRAST_JS) >= 4.5
    for path in ("/me", f"/s/{sign_station(live.settings, d['station']['id'])}", "/me/history"):
        page.goto(f"{live.base_url}{path}")
        page.wait_for_load_state("networkidle")
        small = page.evaluate(SMALL_TARGETS_JS)
        assert not small, (path, small)
        for sel in ("#who", ".hint", "#sessions-count", ".back a", "#contact"):
            for el in page.locator(sel).all():
                if el.is_visible() and el.inner_text().strip():
                    assert el.evaluate(CONTRAST_JS) >= 4.5, (path, sel)
