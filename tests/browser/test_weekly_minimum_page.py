"""The member's page says what the week still needs when a service was too short to count
(issue 17: a weekly target that cannot be met by a gesture)."""

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


def test_a_gesture_shows_what_is_still_needed(
    live: Live, phone: BrowserContext, shot: Shot
) -> None:
    now = datetime.now(UTC)
    if iso_week(now - timedelta(minutes=10)) != iso_week(now):
        pytest.skip("the seeded session would straddle a week boundary")
    d = live.community_with_member("岳明")
    member = d["member"]
    scan(live, member["id"], d["station"]["id"], "in", now - timedelta(minutes=5))
    scan(live, member["id"], d["station"]["id"], "out", now - timedelta(minutes=1))
    mine = live.auth("member", member["id"])

    def week() -> Any:
        w = live.http.get(f"/v1/members/{member['id']}/week", headers=mine).json()
        return w if w["below_minimum_sessions"] == 1 else None

    assert live.wait_for(week, timeout=40)
    page = phone.new_page()
    page.goto(f"{live.base_url}/me?t={mine['Authorization'].removeprefix('Bearer ')}")
    expect(page.locator("#week")).to_have_attribute("data-served", "false", timeout=20_000)
    expect(page.locator("#week")).to_contain_text("本周尚未完成志愿服务")
    expect(page.locator("#week")).to_contain_text("0.07 小时")
    expect(page.locator("#week")).to_contain_text("还需一次不少于 0.5 小时的服务，或由组织者确认")
    expect(page.locator("#week")).to_contain_text("1 次服务不足 0.5 小时，待组织者确认")
    shot(page, "member-weekly-minimum")
