"""The unit's loop in a real browser: HR uploads the unit's roster and sees who has not reported
(未报到); the organizer confirms a member's report (报到回执) and HR sees the receipt; HR opens
a member's quarterly card (季度纪实卡) to print. Screenshots in test-output/screenshots/."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from services.timeutil import LOCAL_TZ
from tests.support.a11y import assert_no_serious_violations
from tests.support.live import BROWSER_MARKS, Live, scan

pytestmark = BROWSER_MARKS

Shot = Callable[[Page, str], Path]


@pytest.fixture(scope="module")
def county(live: Live) -> dict[str, Any]:
    d = live.community_with_member("张伟")
    unit, community = d["unit"], d["community"]
    r = live.http.patch(
        f"/v1/members/{d['member']['id']}",
        json={
            "phone": "13500000001",
            "reported_on": "2025-03-01",
            "party_branch": "机关第一党支部",
        },
        headers=live.admin,
    )
    assert r.status_code == 200, r.text
    d["member"] = r.json()
    d["lapsed"] = live.create(
        "/v1/members",
        {
            "name": "李强",
            "phone": "13500000002",
            "unit_id": unit["id"],
            "community_id": community["id"],
            "reported_on": "2025-03-01",
        },
    )
    now = datetime.now(UTC)
    if (now - timedelta(minutes=91)).astimezone(LOCAL_TZ).month != now.astimezone(LOCAL_TZ).month:
        pytest.skip("the seeded session would straddle a month")
    scan(live, d["member"]["id"], d["station"]["id"], "in", now - timedelta(minutes=90))
    scan(live, d["member"]["id"], d["station"]["id"], "out", now - timedelta(minutes=1))
    hr = live.auth("hr", unit["id"])

    def served() -> Any:
        q = f"{now.astimezone(LOCAL_TZ).year}-Q{(now.astimezone(LOCAL_TZ).month - 1) // 3 + 1}"
        c = live.http.get(
            f"/v1/members/{d['member']['id']}/quarterly-card?quarter={q}", headers=hr
        ).json()
        return c if c.get("hours") else None

    assert live.wait_for(served, timeout=40), "the session did not arrive"
    d["hr"] = hr
    return d


ROSTER = (
    "姓名,手机号码,党支部,职务\n"
    "张伟,13500000001,机关第一党支部,科长\n"
    "李强,13500000002,机关第一党支部,\n"
    "王芳,13500000003,机关第二党支部,科员\n"
)


def sign_in(page: Page, live: Live, path: str, token: str) -> None:
    page.goto(f"{live.base_url}{path}")
    page.fill("#login-token", token)
    page.click("#login-submit")


def test_hr_uploads_the_roster_and_sees_who_has_not_reported(
    live: Live, desk: BrowserContext, shot: Shot, county: dict[str, Any]
) -> None:
    page = desk.new_page()
    sign_in(page, live, "/hr", county["hr"]["Authorization"].removeprefix("Bearer "))
    expect(page.locator("#unit-roster-card")).to_be_visible(timeout=20_000)
    expect(page.locator("#unit-roster-empty")).to_be_visible()
    files = [{"name": "名单.csv", "mimeType": "text/csv", "buffer": ROSTER.encode("gb18030")}]
    page.set_input_files("#unit-roster-file", files=files)  # type: ignore[arg-type]
    page.click("#unit-roster-check")
    expect(page.locator("#unit-roster-msg")).to_contain_text("检查通过（未保存）：新增 3 人")
    expect(page.locator("#unit-roster-table tbody tr")).to_have_count(0)
    page.click("#unit-roster-upload")
    expect(page.locator("#unit-roster-msg")).to_contain_text("名单已上传：新增 3 人")
    rows = page.locator("#unit-roster-table tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#unit-roster-count")).to_contain_text("未报到 1")
    zhang = page.locator("#unit-roster-table tr", has_text="张伟")
    expect(zhang.locator("td").nth(1)).to_have_text("135****0001")
    expect(zhang.locator("td").nth(4)).to_have_text("已报到")
    expect(zhang.locator("td").nth(5)).to_have_text(county["community"]["name"])
    expect(
        page.locator("#unit-roster-table tr", has_text="李强").locator("td").nth(4)
    ).to_have_text("已报到，连续未服务")
    shot(page, "unit-01-roster")
    page.select_option("#unit-roster-status", "unreported")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td").nth(4)).to_have_text("未报到（未登记）")
    shot(page, "unit-02-not-reported")
    # A bad file: every rejected row named, nothing written.
    bad = [
        {
            "name": "坏.csv",
            "mimeType": "text/csv",
            "buffer": "姓名,手机号码,党支部\n赵六,123,支部\n".encode(),
        }
    ]
    page.set_input_files("#unit-roster-file", files=bad)  # type: ignore[arg-type]
    page.click("#unit-roster-upload")
    expect(page.locator("#unit-roster-errors li")).to_have_text(
        ["第 2 行「手机号码」：“123”不是 11 位大陆手机号码"]
    )
    page.select_option("#unit-roster-status", "all")
    expect(rows).to_have_count(3)
    assert_no_serious_violations(page)


def test_the_organizer_confirms_a_report_and_the_unit_sees_it(
    live: Live, desk: BrowserContext, shot: Shot, county: dict[str, Any]
) -> None:
    live.http.post(
        f"/v1/imports/units/{county['unit']['id']}/roster",
        files={"file": ("名单.csv", ROSTER.encode(), "text/csv")},
        headers=county["hr"],
    )
    page = desk.new_page()
    sign_in(page, live, "/org", live.token("organizer", county["community"]["id"]))
    table = page.locator("#reports-table tbody tr")
    expect(table).to_have_count(2, timeout=20_000)
    row = page.locator("#reports-table tr", has_text="张伟")
    expect(row.locator("td").nth(1)).to_have_text(county["unit"]["name"])
    row.locator("button.confirm-report").click()
    expect(page.locator("#reports-msg")).to_have_text("已确认 张伟 报到，回执已送达其单位")
    expect(row.locator("td").nth(3)).to_contain_text("已确认")
    expect(page.locator("#reports-count")).to_have_text("共 2 人，待确认 1 人")
    page.locator("#reports-card").scroll_into_view_if_needed()
    shot(page, "unit-03-organizer-receipts")

    hr = desk.new_page()
    sign_in(hr, live, "/hr", county["hr"]["Authorization"].removeprefix("Bearer "))
    zhang = hr.locator("#unit-roster-table tr", has_text="张伟")
    expect(zhang.locator("td").nth(7)).to_have_text("已回执", timeout=20_000)
    expect(hr.locator("#unit-roster-table tr", has_text="李强").locator("td").nth(7)).to_have_text(
        "待社区确认"
    )


def test_hr_prints_a_members_quarterly_card(
    live: Live, desk: BrowserContext, shot: Shot, county: dict[str, Any]
) -> None:
    live.http.post(
        f"/v1/imports/units/{county['unit']['id']}/roster",
        files={"file": ("名单.csv", ROSTER.encode(), "text/csv")},
        headers=county["hr"],
    )
    page = desk.new_page()
    sign_in(page, live, "/hr", county["hr"]["Authorization"].removeprefix("Bearer "))
    link = page.locator("#unit-roster-table tr", has_text="张伟").locator("a.card-link")
    expect(link).to_be_visible(timeout=20_000)
    href = link.get_attribute("href")
    assert href and href.startswith("/hr/card?member=")
    card = desk.new_page()
    card.goto(f"{live.base_url}{href}")
    expect(card.locator("#card")).to_be_visible(timeout=20_000)
    expect(card.locator("#card-name")).to_have_text("张伟")
    expect(card.locator("#card-branch")).to_have_text("机关第一党支部")
    expect(card.locator("#card-hours")).to_have_text("1.48 小时")
    expect(card.locator("#card-sessions")).to_have_text("1 次")
    expect(card.locator("#card-weeks")).to_have_text("1 周")
    expect(card.locator("#card-activities tbody tr")).to_have_count(1)
    expect(card.locator("#card-print")).to_be_visible()
    shot(card, "unit-04-quarterly-card")
    assert_no_serious_violations(card)
    # Without the HR office's token in this browser, the card says where to sign in.
    other = desk.browser.new_context() if desk.browser else None
    if other is not None:
        blank = other.new_page()
        blank.goto(f"{live.base_url}{href}")
        expect(blank.locator("#card-msg")).to_contain_text("请先在单位考核页面")
        other.close()
