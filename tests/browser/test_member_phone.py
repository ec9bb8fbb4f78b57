"""The member's phone in a real browser: bind, scan, offline queue; activation codes over HTTP."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import BrowserContext, Page, Route, expect

from tests.support.live import BROWSER_MARKS, Live

pytestmark = BROWSER_MARKS

Shot = Callable[[Page, str], Path]


def poster_token(live: Live, station_id: str) -> str:
    """The token printed on the station's poster, read back from the QR image itself."""
    r = live.http.get(f"/v1/stations/{station_id}/qr?format=png", headers=live.admin)
    assert r.status_code == 200
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(r.content)))
    url = decoded[0].text
    assert url.startswith(f"{live.base_url}/s/")
    return url.rsplit("/s/", 1)[1]


def activation(live: Live, member: dict[str, Any], community_id: str) -> dict[str, Any]:
    r = live.http.post(
        "/v1/activations",
        json={"member_id": member["id"]},
        headers=live.auth("organizer", community_id),
    )
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def week(live: Live, member_id: str) -> dict[str, Any]:
    r = live.http.get(f"/v1/members/{member_id}/week", headers=live.admin)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_bind_by_link_then_scan_in_and_out_shows_served_and_hours(
    live: Live, phone: BrowserContext, shot: Shot
) -> None:
    d = live.community_with_member("张伟")
    token = poster_token(live, d["station"]["id"])
    act = activation(live, d["member"], d["community"]["id"])
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", act["code"])
    assert act["url"] == f"{live.base_url}/bind/{act['code'].replace('-', '')}"

    page = phone.new_page()
    page.goto(act["url"])
    expect(page.locator("#bind-code")).to_have_value(act["code"])
    shot(page, "phone-01-bind-link")
    page.click("#bind-submit")
    expect(page.locator("#status")).to_contain_text("绑定成功：张伟")
    # The link's code is spent: the address bar no longer shows it.
    assert "/bind/" not in page.url

    # Check in "two hours ago" (the phone's clock), then check out now: a 2-hour session.
    now = datetime.now(UTC)
    page.clock.set_fixed_time(now - timedelta(hours=2))
    page.goto(f"{live.base_url}/s/{token}")
    expect(page.locator("#title")).to_have_text("城关党群服务站")
    expect(page.locator("#bind")).to_be_hidden()
    shot(page, "phone-02-scan-page")
    page.click("#btn-in")
    expect(page.locator("#status")).to_contain_text("签到成功")
    expect(page.locator("#status")).to_have_attribute("data-state", "ok")
    # After a check-in, the big button is the check-out.
    expect(page.locator("#btn-out")).to_have_class(re.compile("primary"))
    shot(page, "phone-03-checked-in")

    page.clock.set_fixed_time(now)
    page.click("#btn-out")
    expect(page.locator("#status")).to_contain_text("签退成功")
    # The page polls the week after a scan; the session arrives via the worker and the sink.
    expect(page.locator("#week")).to_have_attribute("data-served", "true", timeout=30_000)
    expect(page.locator("#week")).to_contain_text("本周已完成志愿服务")
    expect(page.locator("#hours")).to_have_attribute("data-hours", "2", timeout=30_000)
    expect(page.locator("#hours")).to_contain_text("累计服务 2 小时，共 1 次")
    shot(page, "phone-04-checked-out-hours")
    w = week(live, d["member"]["id"])
    assert w["served"] is True and w["sessions"] == 1 and w["hours"] == 2.0 and w["scans"] == 2


def test_unbound_phone_binds_with_a_typed_code_on_the_scan_page(
    live: Live, phone: BrowserContext, shot: Shot
) -> None:
    d = live.community_with_member("李娜")
    token = poster_token(live, d["station"]["id"])
    act = activation(live, d["member"], d["community"]["id"])

    page = phone.new_page()
    page.goto(f"{live.base_url}/s/{token}")
    expect(page.locator("#status")).to_have_attribute("data-state", "unbound")
    expect(page.locator("#bind")).to_be_visible()
    # Tapping a button before binding explains what to do instead of failing silently.
    page.click("#btn-in")
    expect(page.locator("#status")).to_contain_text("请先绑定本机")
    shot(page, "phone-05-unbound")

    page.fill("#bind-code", "ABCD-EFGH")  # well-formed, but not an issued code
    page.click("#bind-submit")
    expect(page.locator("#bind-msg")).to_contain_text("激活码不正确")

    # Typed the way it is read aloud: lower case, with a space.
    page.fill("#bind-code", act["code"].lower().replace("-", " "))
    page.click("#bind-submit")
    expect(page.locator("#status")).to_contain_text("绑定成功：李娜")
    expect(page.locator("#bind")).to_be_hidden()
    page.click("#btn-in")
    expect(page.locator("#status")).to_contain_text("签到成功")
    shot(page, "phone-06-bound-by-code")

    # The code was single use.
    again = live.http.post("/v1/activations/redeem", json={"code": act["code"]})
    assert again.status_code == 409 and again.json()["error"]["code"] == "activation_used"


def test_offline_and_lost_response_scans_are_queued_then_counted_once(
    live: Live, phone_intercepted: BrowserContext, shot: Shot
) -> None:
    d = live.community_with_member("王芳")
    member_id = d["member"]["id"]
    token = poster_token(live, d["station"]["id"])
    page = phone_intercepted.new_page()
    # The older way to bind: a token handed over in a link.
    page.goto(f"{live.base_url}/me?t={live.token('member', member_id)}")
    expect(page.locator("#who")).to_contain_text("已绑定")
    now = datetime.now(UTC)
    page.clock.set_fixed_time(now - timedelta(hours=1))
    page.goto(f"{live.base_url}/s/{token}")
    expect(page.locator("#status")).to_have_attribute("data-state", "ready")

    # 1. No network at all: the check-in is kept on the phone.
    phone_intercepted.set_offline(True)
    page.click("#btn-in")
    expect(page.locator("#status")).to_have_attribute("data-state", "queued")
    expect(page.locator("#status")).to_contain_text("签到已保存待上传")
    expect(page.locator("#pending")).to_have_attribute("data-count", "1")
    shot(page, "phone-07-offline-queued")

    # 2. Back online, but every answer is lost on the way back: the queued check-in and a new
    # check-out both reach the server, and the phone, not knowing, keeps both.
    reached: list[int] = []

    def lose_answer(route: Route) -> None:
        reached.append(route.fetch().status)
        route.abort("internetdisconnected")

    page.route("**/v1/checkins", lose_answer)
    page.clock.set_fixed_time(now)
    phone_intercepted.set_offline(False)
    page.click("#btn-out")
    expect(page.locator("#status")).to_contain_text("签退已保存待上传")
    expect(page.locator("#pending")).to_have_attribute("data-count", "2")
    assert live.wait_for(lambda: week(live, member_id)["scans"] == 2, timeout=20), week(
        live, member_id
    )
    assert reached.count(202) >= 2, reached
    page.unroute("**/v1/checkins")

    # 3. Network back: both go out in order with their original times, and each counts once.
    phone_intercepted.set_offline(True)
    phone_intercepted.set_offline(False)  # fires the page's "online" event
    expect(page.locator("#pending")).to_have_attribute("data-count", "0", timeout=20_000)
    expect(page.locator("#status")).to_have_attribute("data-state", "uploaded")
    expect(page.locator("#recent li.uploaded")).to_have_count(2)
    expect(page.locator("#week")).to_have_attribute("data-served", "true", timeout=30_000)
    shot(page, "phone-08-uploaded")
    w = live.wait_for(lambda: (x := week(live, member_id))["sessions"] == 1 and x, timeout=20)
    assert w, week(live, member_id)
    assert w["scans"] == 2, "a re-sent scan must be one check-in"
    assert w["hours"] == 1.0, "the queued scans kept their original scanned_at"


def test_activation_codes_are_scoped_durable_across_restart_single_use_and_rate_limited(
    live: Live,
) -> None:
    d = live.community_with_member("赵磊")
    other = live.community_with_member("孙强")
    member = d["member"]
    # Only the member's own organizer (or an admin) issues codes; members cannot.
    r = live.http.post(
        "/v1/activations",
        json={"member_id": member["id"]},
        headers=live.auth("organizer", other["community"]["id"]),
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "member_not_found"
    r = live.http.post(
        "/v1/activations",
        json={"member_id": member["id"]},
        headers=live.auth("member", member["id"]),
    )
    assert r.status_code == 403
    act = activation(live, member, d["community"]["id"])
    code = act["code"]

    # The code survives a restart of the API (it lives in the log and in ClickHouse).
    live.restart()
    r = live.http.post("/v1/activations/redeem", json={"code": code})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["member_id"] == member["id"] and body["member_name"] == "赵磊"
    me = live.http.get("/v1/auth/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.json() == {
        "role": "member",
        "subject_id": member["id"],
        "expires_at": body["expires_at"],
    }
    assert body["expires_at"] > datetime.now(UTC).timestamp() + 170 * 86400

    # Single use, also after another restart.
    live.restart()
    r = live.http.post("/v1/activations/redeem", json={"code": code})
    assert r.status_code == 409

    # Guessing: after the allowed failures, even a valid code is refused for a while.
    fresh = activation(live, member, d["community"]["id"])
    failures = 1  # the 409 above counted
    while failures < live.settings.activation_max_failures:
        r = live.http.post("/v1/activations/redeem", json={"code": "ZZZZ-ZZZZ"})
        assert r.status_code == 404
        failures += 1
    r = live.http.post("/v1/activations/redeem", json={"code": fresh["code"]})
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_attempts"
    assert "Retry-After" in r.headers


@pytest.mark.parametrize("bad", ["v1.st_x.AAAAAAAAAAAAAAAAAAAAAA", "nonsense"])
def test_scan_page_for_a_bad_code_says_so(
    live: Live, phone: BrowserContext, shot: Shot, bad: str
) -> None:
    page = phone.new_page()
    resp = page.goto(f"{live.base_url}/s/{bad}")
    assert resp is not None and resp.status == 400
    expect(page.locator("#title")).to_have_text("二维码无效")
    expect(page.locator("#btn-in")).to_have_count(0)
    if bad == "nonsense":
        shot(page, "phone-09-invalid-code")


def test_a_503_answer_keeps_the_scan_and_a_refused_one_is_explained(
    live: Live, phone_intercepted: BrowserContext, shot: Shot
) -> None:
    d = live.community_with_member("陈静")
    member_id = d["member"]["id"]
    token = poster_token(live, d["station"]["id"])
    page = phone_intercepted.new_page()
    page.goto(f"{live.base_url}/me?t={live.token('member', member_id)}")
    page.goto(f"{live.base_url}/s/{token}")
    expect(page.locator("#status")).to_have_attribute("data-state", "ready")

    # The service answers 503 (Kafka down): nothing was recorded, the phone keeps the scan.
    page.route(
        "**/v1/checkins",
        lambda route: route.fulfill(
            status=503,
            content_type="application/json",
            body='{"error": {"code": "kafka_unavailable", "message": "down"}}',
        ),
    )
    page.click("#btn-in")
    expect(page.locator("#status")).to_have_attribute("data-state", "queued")
    assert week(live, member_id)["scans"] == 0
    page.unroute("**/v1/checkins")
    phone_intercepted.set_offline(True)
    phone_intercepted.set_offline(False)
    expect(page.locator("#pending")).to_have_attribute("data-count", "0", timeout=20_000)
    assert live.wait_for(lambda: week(live, member_id)["scans"] == 1, timeout=20)

    # A scan the server refuses for good (here: the poster code is not genuine) is not kept
    # forever: the member is told why.
    page.goto(f"{live.base_url}/s/{token}")
    page.evaluate("document.body.dataset.stationToken = 'v1.st_forged.AAAAAAAAAAAAAAAAAAAAAA'")
    page.click("#btn-out")
    expect(page.locator("#status")).to_have_attribute("data-state", "error")
    expect(page.locator("#status")).to_contain_text("二维码无效")
    expect(page.locator("#pending")).to_have_attribute("data-count", "0")
