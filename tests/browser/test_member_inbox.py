"""The member's reminders on /me (issue 14): the inbox lists them, and the weekly nudge can be
turned off from the phone, kept on the server (the next decision respects it)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect

from services import topics
from services.events import NotificationCreated
from services.publisher import Publisher
from tests.support.a11y import assert_no_serious_violations
from tests.support.live import BROWSER_MARKS, Live

pytestmark = BROWSER_MARKS


def test_the_inbox_shows_reminders_and_the_nudge_can_be_turned_off(
    live: Live, phone: BrowserContext, shot: Callable[[Page, str], Path]
) -> None:
    d = live.community_with_member("吴提醒")
    member = d["member"]["id"]
    nid = f"t-{uuid.uuid4()}"
    publisher = Publisher(live.settings)
    try:
        publisher.send_sync(
            topics.NOTIFICATIONS,
            member,
            NotificationCreated(
                event_id=nid,
                occurred_at=datetime.now(UTC),
                notification_id=nid,
                kind="weekly_nudge",
                recipient_kind="member",
                recipient_id=member,
                community_id=d["community"]["id"],
                week="2026-W49",
                title="本周志愿服务提醒",
                body="吴提醒同志，您好！本周您还没有参加志愿服务。",
            ),
        )
    finally:
        publisher.close()
    mine = live.auth("member", member)
    assert live.wait_for(
        lambda: live.http.get(f"/v1/members/{member}/inbox", headers=mine).json()["items"],
        timeout=30,
    )
    page = phone.new_page()
    page.goto(f"{live.base_url}/me?t={live.token('member', member)}")
    expect(page.locator("#inbox-card")).to_be_visible()
    expect(page.locator("#inbox")).to_contain_text("本周志愿服务提醒")
    expect(page.locator("#inbox")).to_contain_text("本周您还没有参加志愿服务")
    box = page.locator("#nudge-pref")
    expect(box).to_be_checked()
    assert_no_serious_violations(page)
    shot(page, "member-inbox")
    box.uncheck()
    expect(page.locator("#pref-msg")).to_have_text("已关闭每周服务提醒，之后不再发送")
    assert live.wait_for(
        lambda: (
            live.http.get(f"/v1/members/{member}/reminder-preferences", headers=mine).json()
            == {"weekly_nudge": False, "slot_reminder": True}
        ),
        timeout=30,
    )
    page.reload()
    expect(page.locator("#inbox")).to_contain_text("本周志愿服务提醒")
    expect(page.locator("#nudge-pref")).not_to_be_checked()
