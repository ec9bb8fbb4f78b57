"""Service slots in Chromium (issue 14): a member signs up in one tap on /me, a second member
lands on the waiting list with their position and is promoted when the first cancels; the
organizer publishes a slot on /org and reads its roster (已报名 / 候补)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.a11y import assert_no_serious_violations
from tests.support.live import BROWSER_MARKS, PHONE, Live, browser_context

pytestmark = BROWSER_MARKS


def _slot(live: Live, d: dict[str, Any], title: str, capacity: int) -> str:
    start = datetime.now(UTC) + timedelta(days=2)
    body = {
        "community_id": d["community"]["id"],
        "title": title,
        "description": "请自带手套",
        "station_id": d["station"]["id"],
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(),
        "capacity": capacity,
    }
    org = live.auth("organizer", d["community"]["id"])
    r = live.http.post("/v1/activities", json=body, headers=org)
    assert r.status_code == 202, r.text
    (aid,) = r.json()["ids"]
    assert live.wait_for(
        lambda: live.http.get(f"/v1/activities/{aid}", headers=org).status_code == 200, timeout=30
    )
    return str(aid)


def test_sign_up_wait_and_be_promoted_on_the_phone(
    live: Live, browser: Browser, phone: BrowserContext, shot: Callable[[Page, str], Path]
) -> None:
    d = live.community_with_member("赵报名")
    second = live.create(
        "/v1/members",
        {"name": "钱候补", "unit_id": d["unit"]["id"], "community_id": d["community"]["id"]},
    )
    aid = _slot(live, d, "楼道清理", capacity=1)

    first = phone.new_page()
    first.goto(f"{live.base_url}/me?t={live.token('member', d['member']['id'])}")
    row = first.locator(f'li.slot[data-activity="{aid}"]')
    expect(row).to_contain_text("楼道清理")
    expect(row).to_contain_text("剩余名额 1/1")
    expect(row).to_contain_text("城关党群服务站")
    row.locator("button").click()
    expect(first.locator("#slots-msg")).to_contain_text("报名", timeout=20_000)
    expect(row.locator(".slot-status")).to_have_text("已报名", timeout=20_000)
    expect(row.locator("button")).to_have_text("取消报名")
    assert_no_serious_violations(first)
    shot(first, "slots-member-signed-up")
    # The slot reminders' switch: on by default, turned off from the phone, kept on the server.
    pref = first.locator("#slot-pref")
    expect(pref).to_be_checked()
    pref.uncheck()
    expect(first.locator("#slot-pref-msg")).to_have_text("已关闭活动提醒，之后不再发送")
    mine = live.auth("member", d["member"]["id"])
    assert live.wait_for(
        lambda: (
            live.http.get(
                f"/v1/members/{d['member']['id']}/reminder-preferences", headers=mine
            ).json()
            == {"weekly_nudge": True, "slot_reminder": False}
        ),
        timeout=30,
    )

    # Another phone: the slot is full, the tap puts the member on the waiting list.
    second_phone = browser_context(browser, live, viewport=PHONE, is_mobile=True, has_touch=True)
    other = next(second_phone)
    try:
        page2 = other.new_page()
        page2.goto(f"{live.base_url}/me?t={live.token('member', second['id'])}")
        row2 = page2.locator(f'li.slot[data-activity="{aid}"]')
        expect(row2).to_contain_text("名额已满", timeout=20_000)
        expect(row2.locator("button")).to_have_text("报名候补")
        row2.locator("button").click()
        expect(row2.locator(".slot-status")).to_have_text("候补第 1 位", timeout=20_000)
        shot(page2, "slots-member-waiting")

        # The first member gives the place back: the waiting one is promoted.
        row.locator("button").click()
        expect(first.locator("#slots-msg")).to_contain_text("取消", timeout=20_000)
        expect(row.locator(".slot-status")).to_have_text("", timeout=20_000)
        expect(row.locator("button")).to_have_text("报名候补")

        def promoted() -> bool:
            page2.reload()
            page2.locator(f'li.slot[data-activity="{aid}"] .slot-status').wait_for()
            return page2.locator(f'li.slot[data-activity="{aid}"] .slot-status').inner_text() == (
                "已报名"
            )

        assert live.wait_for(promoted, timeout=30)
    finally:
        next(second_phone, None)  # closes the context, checks nothing loaded from outside


def test_the_slots_section_works_offline_from_the_app_shell(
    live: Live, phone: BrowserContext, shot: Callable[[Page, str], Path]
) -> None:
    """The service worker keeps the slots card's script with the shell: offline, /me shows the
    slots last seen online, read-only, and says why; back online the buttons return."""
    d = live.community_with_member("吴离线")
    aid = _slot(live, d, "离线可见活动", capacity=2)
    page = phone.new_page()
    page.goto(f"{live.base_url}/me?t={live.token('member', d['member']['id'])}")
    row = page.locator(f'li.slot[data-activity="{aid}"]')
    expect(row).to_contain_text("离线可见活动", timeout=20_000)
    page.evaluate("async () => { await navigator.serviceWorker.ready; }")
    page.reload()
    page.wait_for_function("() => !!navigator.serviceWorker.controller")
    expect(row).to_contain_text("城关党群服务站", timeout=20_000)
    assert page.evaluate(
        "async () => !!(await (await caches.open('volunteer-app-v1')).match('/static/slots.js'))"
    )

    phone.set_offline(True)
    try:
        page.goto(f"{live.base_url}/me")
        expect(page.locator("#slots-card")).to_be_visible(timeout=20_000)
        expect(page.locator("#slots-card")).to_have_attribute("data-offline", "1")
        expect(row).to_contain_text("离线可见活动")
        expect(row).to_contain_text("城关党群服务站")
        expect(page.locator("#slots-msg")).to_contain_text("当前无网络")
        expect(row.locator("button")).to_be_disabled()
        assert_no_serious_violations(page)
        shot(page, "slots-member-offline")
    finally:
        phone.set_offline(False)
    expect(page.locator("#slots-card")).to_have_attribute("data-offline", "0", timeout=20_000)
    expect(row.locator("button")).to_be_enabled()
    expect(page.locator("#slots-msg")).to_have_text("")


def test_the_organizer_publishes_a_slot_and_reads_its_roster(
    live: Live, desk: BrowserContext, shot: Callable[[Page, str], Path]
) -> None:
    d = live.community_with_member("孙签到")
    aid = _slot(live, d, "敬老院陪护", capacity=3)
    member = live.auth("member", d["member"]["id"])
    r = live.http.post(f"/v1/activities/{aid}/signup", json={}, headers=member)
    assert r.status_code == 202, r.text

    page = desk.new_page()
    page.goto(f"{live.base_url}/org?t={live.token('organizer', d['community']['id'])}")
    expect(page.locator("#slots-desk")).to_be_visible(timeout=20_000)
    expect(page.locator(f'#slots-table tr[data-activity="{aid}"]')).to_contain_text(
        "敬老院陪护", timeout=30_000
    )

    # Publish a weekly fixed service day from the form.
    page.fill("#slot-title", "固定服务日：环境整治")
    page.fill("#slot-capacity", "8")
    page.check("#slot-weekly")
    page.fill("#slot-weeks", "2")
    page.click("#slot-submit")
    expect(page.locator("#slot-msg")).to_have_text("已发布 2 场活动", timeout=20_000)
    expect(page.locator("#slots-table")).to_contain_text("固定服务日：环境整治", timeout=30_000)
    assert page.locator("#slots-table tr", has_text="固定服务日：环境整治").count() == 2

    def signed_up() -> bool:
        page.locator(f'#slots-table tr[data-activity="{aid}"] .slot-roster').click()
        return "孙签到" in page.locator("#slot-roster-table").inner_text()

    assert live.wait_for(signed_up, timeout=30)
    expect(page.locator("#slot-roster-table")).to_contain_text("已报名")
    expect(page.locator("#slot-roster-table")).to_contain_text("未开始")
    expect(page.locator("#slot-roster-summary")).to_contain_text("已报名 1")
    assert_no_serious_violations(page)
    shot(page, "slots-organizer-roster")


def test_hr_reads_its_members_places_attendance_and_no_shows(
    live: Live, desk: BrowserContext, shot: Callable[[Page, str], Path]
) -> None:
    """A slot held yesterday (published to the log as the demo does: the API takes no slot in
    the past) where the unit's member held a place and never scanned: /hr lists them with one
    no-show."""
    from services import activities as rules
    from services import topics
    from services.events import ActivitySpec
    from services.publisher import Publisher

    d = live.community_with_member("周缺席")
    cid, mid = d["community"]["id"], d["member"]["id"]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    spec = ActivitySpec(
        community_id=cid,
        title="昨日固定服务日",
        description="",
        station_id=d["station"]["id"],
        starts_at=start,
        ends_at=start + timedelta(hours=2),
        capacity=5,
        signup_deadline=start - timedelta(hours=1),
        cancel_deadline=start - timedelta(hours=2),
    )
    aid = "act_hr_" + mid[-8:]
    organizer = {"actor_role": "organizer", "actor_id": cid}
    create = rules.command(
        activity_id=aid, action="create", at=start - timedelta(days=3), basis="hr", spec=spec,
        **organizer,
    )  # fmt: skip
    sign_up = rules.command(
        activity_id=aid, action="sign_up", at=start - timedelta(days=2), basis="hr",
        actor_role="member", actor_id=mid, member_id=mid, member_unit_id=d["unit"]["id"],
        member_community_id=cid,
    )  # fmt: skip
    publisher = Publisher(live.settings)
    try:
        publisher.send_many_sync(
            [(topics.ACTIVITY_COMMANDS, aid, create), (topics.ACTIVITY_COMMANDS, aid, sign_up)]
        )
    finally:
        publisher.close()
    hr = live.auth("hr", d["unit"]["id"])

    def no_show() -> bool:
        r = live.http.get(f"/v1/activities/no-shows?unit_id={d['unit']['id']}", headers=hr)
        return r.status_code == 200 and any(i["no_shows"] == 1 for i in r.json()["items"])

    assert live.wait_for(no_show, timeout=60), "the no-show did not reach the warehouse"

    page = desk.new_page()
    page.goto(f"{live.base_url}/hr?t={live.token('hr', d['unit']['id'])}")
    row = page.locator("#hr-slots-table tr", has_text="周缺席")
    expect(row).to_be_visible(timeout=30_000)
    expect(row.locator("td")).to_have_text(["周缺席", "1", "0", "1"])
    assert_no_serious_violations(page)
    shot(page, "slots-hr-attendance")


def test_grid_slots_on_the_organizer_page_attendance_and_a_cancellation_notice(
    live: Live,
    desk: BrowserContext,
    phone: BrowserContext,
    shot: Callable[[Page, str], Path],
) -> None:
    """The organizer publishes courtyard work at a level-5 grid from /org; a grid slot held this
    morning reads its roster with the station each attendee scanned in at; the organizer
    cancels the coming one with a reason, and the member's phone shows the notice."""
    from services import activities as rules
    from services import topics
    from services.events import ActivitySpec
    from services.publisher import Publisher
    from tests.support.live import scan

    d = live.community_with_member("郑院落")
    cid, mid = d["community"]["id"], d["member"]["id"]
    grid4 = live.create("/v1/grids", {"community_id": cid, "name": "第二网格", "level": 4})
    grid5 = live.create(
        "/v1/grids", {"community_id": cid, "name": "5号院", "level": 5, "parent_id": grid4["id"]}
    )
    # A grid slot that ran this morning: the member had a place and scanned in at the station.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    spec = ActivitySpec(
        community_id=cid,
        title="院落清扫（已结束）",
        grid_id=grid5["id"],
        starts_at=start,
        ends_at=start + timedelta(hours=2),
        capacity=5,
        signup_deadline=start,
        cancel_deadline=start,
    )
    past = "act_yard_" + mid[-8:]
    create = rules.command(
        activity_id=past, action="create", at=start - timedelta(days=1), basis="y", spec=spec,
        actor_role="organizer", actor_id=cid,
    )  # fmt: skip
    sign_up = rules.command(
        activity_id=past, action="sign_up", at=start - timedelta(hours=20), basis="y",
        actor_role="member", actor_id=mid, member_id=mid, member_unit_id=d["unit"]["id"],
        member_community_id=cid,
    )  # fmt: skip
    publisher = Publisher(live.settings)
    try:
        publisher.send_many_sync(
            [(topics.ACTIVITY_COMMANDS, past, create), (topics.ACTIVITY_COMMANDS, past, sign_up)]
        )
    finally:
        publisher.close()
    scan(live, mid, d["station"]["id"], "in", start + timedelta(minutes=5))
    scan(live, mid, d["station"]["id"], "out", start + timedelta(minutes=95))
    org = live.auth("organizer", cid)

    def attended() -> bool:
        r = live.http.get(f"/v1/activities/{past}/roster", headers=org)
        return r.status_code == 200 and r.json()["attended"] == 1

    assert live.wait_for(attended, timeout=60), "the grid slot's attendance did not land"

    page = desk.new_page()
    page.goto(f"{live.base_url}/org?t={live.token('organizer', cid)}")
    expect(page.locator("#slots-desk")).to_be_visible(timeout=20_000)
    # Publish courtyard work at the grid from the form.
    expect(page.locator("#slot-station option[data-kind=grid]")).to_have_text(
        "5号院（网格）", timeout=20_000
    )
    page.select_option("#slot-station", grid5["id"])
    page.fill("#slot-title", "院落清扫")
    page.fill("#slot-capacity", "6")
    page.click("#slot-submit")
    expect(page.locator("#slot-msg")).to_have_text("已发布 1 场活动", timeout=20_000)
    coming = page.locator("#slots-table tr", has_text="院落清扫（5号院（网格））")
    expect(coming).to_be_visible(timeout=30_000)
    aid = coming.get_attribute("data-activity")
    assert aid

    # This morning's grid slot: attended, at the community's station.
    row = page.locator(f'#slots-table tr[data-activity="{past}"]')
    expect(row).to_contain_text("院落清扫（已结束）（5号院（网格））", timeout=30_000)
    row.locator(".slot-roster").click()
    expect(page.locator("#slot-roster-title")).to_contain_text("5号院（网格）")
    expect(page.locator("#slot-roster-table tbody tr").first.locator("td")).to_have_text(
        ["郑院落", "已报名", "已签到", "城关党群服务站", re.compile(r"\d+月\d+日 \d\d:\d\d")]
    )
    assert_no_serious_violations(page)
    shot(page, "slots-organizer-grid-roster")

    # The member signs up for the coming one; the organizer cancels it, giving a reason.
    member = live.auth("member", mid)
    r = live.http.post(f"/v1/activities/{aid}/signup", json={}, headers=member)
    assert r.status_code == 202, r.text
    assert live.wait_for(
        lambda: live.http.get(f"/v1/activities/{aid}", headers=member).json()["mine"], timeout=30
    )
    page.once("dialog", lambda dialog: dialog.accept("降雨，改期另行通知"))
    page.locator(f'#slots-table tr[data-activity="{aid}"] .slot-cancel').click()
    expect(page.locator("#slot-msg")).to_have_text("活动已取消", timeout=20_000)
    expect(page.locator(f'#slots-table tr[data-activity="{aid}"]')).to_contain_text(
        "已取消", timeout=30_000
    )

    def notified() -> bool:
        items = live.http.get(f"/v1/members/{mid}/inbox", headers=member).json()["items"]
        return any(i["kind"] == "slot_cancelled" for i in items)

    assert live.wait_for(notified, timeout=30), "the cancellation notice did not land"
    me = phone.new_page()
    me.goto(f"{live.base_url}/me?t={live.token('member', mid)}")
    expect(me.locator("#inbox")).to_contain_text("活动取消通知", timeout=20_000)
    expect(me.locator("#inbox")).to_contain_text("您报名的「院落清扫」")
    expect(me.locator("#inbox")).to_contain_text("原因：降雨，改期另行通知")
    assert_no_serious_violations(me)
    shot(me, "slots-member-cancellation-notice")
