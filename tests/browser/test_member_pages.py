"""The member's own pages in a real browser: from /me to the history (this week, recent weeks,
sessions, feedback about me), then a record of service (服务证明) issued and opened to print."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from services.timeutil import iso_week
from tests.support.live import BROWSER_MARKS, Live, scan

pytestmark = BROWSER_MARKS

Shot = Callable[[Page, str], Path]


def test_member_opens_history_and_prints_a_record_from_me(
    live: Live, phone: BrowserContext, shot: Shot
) -> None:
    now = datetime.now(UTC)
    if iso_week(now - timedelta(minutes=76)) != iso_week(now):
        pytest.skip("the seeded session would straddle a week boundary")
    d = live.community_with_member("陈静")
    member, community = d["member"], d["community"]
    scan(live, member["id"], d["station"]["id"], "in", now - timedelta(minutes=75))
    scan(live, member["id"], d["station"]["id"], "out", now - timedelta(minutes=1))
    r = live.http.post(
        "/v1/feedback/member-service",
        json={"member_id": member["id"], "period": str(now.year), "rating": 5, "comment": "认真"},
        headers=live.auth("organizer", community["id"]),
    )
    assert r.status_code == 201, r.text
    mine = live.auth("member", member["id"])

    def sessions() -> Any:
        s = live.http.get(f"/v1/members/{member['id']}/sessions", headers=mine).json()
        return s if s["total"] == 1 and s["items"][0]["status"] == "closed" else None

    assert live.wait_for(sessions, timeout=40)

    page = phone.new_page()
    page.goto(f"{live.base_url}/me?t={mine['Authorization'].removeprefix('Bearer ')}")
    expect(page.locator("#week")).to_have_attribute("data-served", "true", timeout=20_000)
    page.click("#link-history")
    expect(page).to_have_url(f"{live.base_url}/me/history")
    expect(page.locator("body")).to_have_attribute("data-loaded", "1")
    expect(page.locator("#this-week")).to_have_attribute("data-served", "true")
    expect(page.locator("#this-week")).to_contain_text("1 次，1.23 小时")
    expect(page.locator("#weeks li")).to_have_count(8)
    expect(page.locator("#weeks li").first).to_have_attribute("data-hours", "1.23")
    expect(page.locator("#sessions li")).to_have_count(1)
    expect(page.locator("#sessions li").first).to_contain_text("城关党群服务站")
    expect(page.locator("#sessions li").first).to_contain_text("已完成")
    expect(page.locator("#feedback")).to_contain_text("服务评价：1 次，平均 5")
    shot(page, "member-01-history")

    page.click("#record-submit")
    expect(page.locator("#record")).to_be_visible()
    expect(page.locator("#record-hours")).to_have_text("1.23")
    code = page.locator("#record-code").inner_text()
    page.click("#record-link")
    expect(page.locator("h1")).to_have_text("志愿服务证明")
    expect(page.locator("body")).to_contain_text("陈静")
    expect(page.locator("body")).to_contain_text(code)
    expect(page.locator("tbody tr")).to_have_count(1)
    shot(page, "member-02-record")
    raw = page.url.rsplit("/records/", 1)[1]
    v = live.http.get(f"/v1/verify/{raw}", params={"hours": 1.23, "member_name": "陈静"}).json()
    assert v["valid"] is True and v["sessions"] == 1
