"""Excused weeks (请假) and standing posts (岗位认领) in Chromium, with screenshots: the member
asks for a week off and claims a post on the phone page, the organizer approves both on the
desk, the member sees the outcome, and the unit's HR sees the member's excused week."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, Page, expect

from services.timeutil import LOCAL_TZ, iso_week
from tests.support.a11y import assert_no_serious_violations
from tests.support.live import BROWSER_MARKS, Live

pytestmark = BROWSER_MARKS

Shot = Callable[[Page, str], Path]


def _world(live: Live) -> dict[str, Any]:
    d = live.community_with_member("冯请假")
    c = d["community"]["id"]
    g4 = live.create("/v1/grids", {"community_id": c, "name": "第一网格", "level": 4})["id"]
    g5 = live.create(
        "/v1/grids", {"community_id": c, "name": "5号楼1单元", "level": 5, "parent_id": g4}
    )["id"]
    org = live.auth("organizer", c)
    r = live.http.post(
        "/v1/posts",
        json={
            "community_id": c,
            "grid_id": g5,
            "kind": "unit_post",
            "title": "5号楼1单元党员责任岗",
            "description": "联系本单元住户，收集需求",
        },
        headers=org,
    )
    assert r.status_code == 202, r.text
    post = r.json()["post_id"]
    assert live.wait_for(
        lambda: live.http.get(f"/v1/posts/{post}", headers=org).status_code == 200, timeout=30
    )
    return {**d, "g5": g5, "post": post, "org": org}


def _desk(desk: BrowserContext, live: Live, path: str, token: str) -> Page:
    page = desk.new_page()
    page.goto(f"{live.base_url}{path}")
    page.fill("#login-token", token)
    page.click("#login-submit")
    expect(page.locator("#app")).to_be_visible(timeout=30_000)
    return page


def test_ask_for_leave_and_claim_a_post_then_the_organizer_approves(
    live: Live, phone: BrowserContext, desk: BrowserContext, shot: Shot
) -> None:
    w = _world(live)
    member = w["member"]["id"]
    this_week = iso_week(datetime.now(LOCAL_TZ))

    # The member: one tap per week, a reason, a note; then a post to claim.
    page = phone.new_page()
    page.goto(f"{live.base_url}/me?t={live.token('member', member)}")
    expect(page.locator("#leave-card")).to_be_visible()
    page.locator(f'#leave-weeks input[value="{this_week}"]').check()
    page.select_option("#leave-reason", "training")
    page.fill("#leave-note", "县委党校培训")
    page.click("#leave-submit")
    expect(page.locator("#leave-msg")).to_have_text("已提交，等待社区审批")
    expect(page.locator("#leave-list")).to_contain_text("培训 · 待审批", timeout=20_000)
    expect(page.locator("#open-posts")).to_contain_text("5号楼1单元党员责任岗")
    page.locator(f'#open-posts li[data-post-id="{w["post"]}"] button').click()
    expect(page.locator("#posts-msg")).to_have_text("已申请认领，等待社区审批")
    expect(page.locator("#my-posts")).to_contain_text("认领申请待社区审批", timeout=20_000)
    assert_no_serious_violations(page)
    shot(page, "leave-member-asks")

    # Nothing asked for without a week.
    page.click("#leave-submit")
    expect(page.locator("#leave-msg")).to_have_text("请选择请假周次")

    # The organizer: the pending request and the pending claim, each approved in one click.
    org_token = w["org"]["Authorization"].removeprefix("Bearer ")
    desk_page = _desk(desk, live, "/org", org_token)
    row = desk_page.locator("#excusals-table tbody tr", has_text="冯请假")
    expect(row).to_contain_text(this_week, timeout=20_000)
    expect(row).to_contain_text("培训")
    # A decline needs its reason.
    row.locator("button.reject").click()
    expect(desk_page.locator("#excusals-msg")).to_have_text("不批准时请填写原因")
    claim = desk_page.locator(f'#posts-table tr[data-post-id="{w["post"]}"]')
    expect(claim).to_contain_text("冯请假")
    assert_no_serious_violations(desk_page)
    shot(desk_page, "leave-organizer-pending")
    row.locator("button.approve").click()
    expect(desk_page.locator("#excusals-msg")).to_contain_text("已批准：冯请假")
    claim.locator("button.approve").click()
    expect(desk_page.locator("#posts-desk-msg")).to_contain_text("已批准：冯请假 认领")
    expect(claim).to_contain_text("已认领", timeout=20_000)
    expect(desk_page.locator("#excusals-empty")).to_be_visible(timeout=20_000)
    shot(desk_page, "leave-organizer-decided")

    # The member sees both outcomes.
    page.reload()
    expect(page.locator("#leave-list")).to_contain_text("培训 · 已批准", timeout=20_000)
    expect(page.locator("#my-posts")).to_contain_text("我已认领", timeout=20_000)
    expect(page.locator("#my-posts button")).to_have_text("退出岗位")
    expect(page.locator("#week-excused")).to_have_text("本周已请假（社区已批准），不计未服务")
    shot(page, "leave-member-approved")

    # HR of the member's unit sees the excused week.
    hr_token = live.token("hr", w["unit"]["id"])
    hr_page = _desk(desk, live, "/hr", hr_token)
    hr_row = hr_page.locator("#hr-excusals-table tbody tr", has_text="冯请假")
    expect(hr_row).to_contain_text("已批准", timeout=20_000)
    expect(hr_row).to_contain_text(this_week)
    assert_no_serious_violations(hr_page)
    shot(hr_page, "leave-hr")

    # The organizer's week: excused, not in the not-served list.
    r = live.http.get(f"/v1/communities/{w['community']['id']}/weekly", headers=w["org"]).json()
    assert (r["excused"], r["not_served"]) == (1, [])
