"""The organizer's and HR's pages as issue 19 found them, fixed: each finding has a check here,
every page is shot at 320, 390 and 1366 px (test-output/screenshots/) and checked by axe-core.

One community (three grids named so that text order and natural order differ, two stations,
five members) and its unit, seeded once for the module.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from services.rankings import default_period
from services.timeutil import LOCAL_TZ, iso_week
from tests.support.a11y import assert_no_serious_violations
from tests.support.live import BROWSER_MARKS, Live, scan

pytestmark = BROWSER_MARKS

Shot = Callable[[Page, str], Path]
WIDTHS = (320, 390, 1366)


@pytest.fixture(scope="module")
def county(live: Live) -> dict[str, Any]:
    """第10网格 sorts before 第2网格 as text; members named 党员10 / 党员2 likewise. 党员1 and
    党员2 served this week; 党员3 has a check-out without a check-in (the review queue);
    党员10 and 党员11 have not served; 党员1 bound a phone."""
    tag = uuid.uuid4().hex[:4]
    unit = live.create("/v1/units", {"name": f"县水务局{tag}"})
    c = live.create("/v1/communities", {"name": f"南城社区{tag}"})["id"]
    grids = {
        n: live.create("/v1/grids", {"community_id": c, "name": n, "level": 4})
        for n in ("第10网格", "第2网格", "第1网格")
    }
    stations = [
        live.create("/v1/stations", {"community_id": c, "name": n, "kind": k})
        for n, k in (("南城党群服务站", "service_station"), ("南城党员驿站", "member_post"))
    ]
    members = {}
    people = [("党员10", "第1网格"), ("党员2", "第2网格"), ("党员1", "第10网格")]
    people += [("党员3", "第1网格"), ("党员11", "第2网格")]
    for i, (n, g) in enumerate(people):
        members[n] = live.create(
            "/v1/members",
            {
                "name": n,
                "phone": f"1380000{i:04d}",
                "unit_id": unit["id"],
                "community_id": c,
                "grid_id": grids[g]["id"],
                "party_branch": "水务局第一党支部",
                "reported_on": "2025-03-01",
            },
        )
    now = datetime.now(UTC)
    if iso_week(now - timedelta(minutes=70)) != iso_week(now):
        pytest.skip("the seeded hour would straddle a week boundary")
    if (now - timedelta(minutes=70)).astimezone(LOCAL_TZ).year != now.astimezone(LOCAL_TZ).year:
        pytest.skip("the seeded hour would straddle New Year")
    s1, s2 = stations[0]["id"], stations[1]["id"]
    scan(live, members["党员1"]["id"], s1, "in", now - timedelta(minutes=65))
    scan(live, members["党员1"]["id"], s1, "out", now - timedelta(minutes=5))
    scan(live, members["党员2"]["id"], s2, "in", now - timedelta(minutes=50))
    scan(live, members["党员2"]["id"], s2, "out", now - timedelta(minutes=20))
    scan(live, members["党员3"]["id"], s1, "out", now - timedelta(minutes=10))
    org = live.auth("organizer", c)
    code = live.http.post(
        "/v1/activations", json={"member_id": members["党员1"]["id"]}, headers=org
    ).json()["code"]
    r = live.http.post("/v1/activations/redeem", json={"code": code})
    assert r.status_code == 200, r.text

    def settled() -> bool:
        w = live.http.get(f"/v1/communities/{c}/weekly", headers=org).json()
        q = live.http.get(f"/v1/communities/{c}/review-queue", headers=org).json()
        roster = live.http.get(f"/v1/communities/{c}/roster", headers=org).json()
        bound = [i["binding"] for i in roster["items"] if i["name"] == "党员1"]
        return w["members_served"] == 2 and q["total"] == 1 and bound == ["bound"]

    assert live.wait_for(settled, timeout=60), "the seeded week did not reach the warehouse"
    return {
        "unit": unit,
        "community_id": c,
        "grids": grids,
        "stations": stations,
        "members": members,
        "org": org,
        "hr": live.auth("hr", unit["id"]),
    }


def no_sideways_scroll(page: Page) -> None:
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    # The outermost elements reaching past the screen's edge, to say what to fix.
    culprits = page.evaluate(
        """() => { const w = document.documentElement.clientWidth, out = [];
             for (const el of document.querySelectorAll("body *")) {
               const r = el.getBoundingClientRect();
               if (r.right > w + 1 && r.width > 0 && !out.some((o) => o.el.contains(el)))
                 out.push({el, d: `${el.tagName.toLowerCase()}#${el.id}.${el.className} ${Math.round(r.right)}`});
             }
             return out.map((o) => o.d).slice(0, 10); }"""
    )
    assert overflow <= 0, f"the page is {overflow}px wider than the screen: {culprits}"


def sign_in(page: Page, token: str) -> None:
    page.fill("#login-token", token)
    page.click("#login-submit")


def open_org(desk: BrowserContext, live: Live, county: dict[str, Any]) -> Page:
    page = desk.new_page()
    page.goto(f"{live.base_url}/org")
    token = county["org"]["Authorization"].removeprefix("Bearer ")
    # Pasted from a chat: the header's "Bearer " prefix and a line break in the middle.
    sign_in(page, f"Bearer {token[:20]}\n{token[20:]}\n")
    expect(page.locator("body")).to_have_attribute(
        "data-loaded", re.compile(r"W\d\d"), timeout=30_000
    )
    return page


def open_hr(desk: BrowserContext, live: Live, county: dict[str, Any]) -> Page:
    page = desk.new_page()
    year = datetime.now(UTC).astimezone(LOCAL_TZ).year
    page.goto(f"{live.base_url}/hr?year={year}")
    sign_in(page, county["hr"]["Authorization"])
    expect(page.locator("body")).to_have_attribute("data-loaded", str(year), timeout=30_000)
    return page


def test_a_pasted_token_with_a_line_break_or_bearer_prefix_signs_in(
    live: Live, desk: BrowserContext, county: dict[str, Any]
) -> None:
    page = open_org(desk, live, county)
    expect(page.locator("#who")).not_to_be_empty()
    expect(page.locator("#login-msg")).to_have_text("")


def test_organizer_page_fits_320_390_1366_and_passes_axe(
    live: Live, desk: BrowserContext, county: dict[str, Any], shot: Shot
) -> None:
    page = open_org(desk, live, county)
    not_found: list[str] = []
    page.on("response", lambda r: not_found.append(r.url) if r.status == 404 else None)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        # The charts follow their boxes (ECharts resized by a ResizeObserver).
        page.wait_for_function(
            """() => ["chart-served", "chart-trend", "chart-stations", "chart-grids"].every((id) => {
                 const el = document.getElementById(id), c = el.querySelector("canvas");
                 return c && Math.abs(c.getBoundingClientRect().width - el.clientWidth) < 2; })"""
        )
        no_sideways_scroll(page)
        shot(page, f"desk-org-{width}")
        assert_no_serious_violations(page)
    page.reload()
    expect(page.locator("body")).to_have_attribute(
        "data-loaded", re.compile(r"W\d\d"), timeout=30_000
    )
    assert not not_found, not_found
    r = live.http.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"] == "image/x-icon"


def test_grids_and_not_served_are_in_natural_order(
    live: Live, desk: BrowserContext, county: dict[str, Any], tmp_path: Path
) -> None:
    page = open_org(desk, live, county)
    labels = page.evaluate(
        """() => echarts.getInstanceByDom(document.getElementById("chart-grids"))
             .getOption().xAxis[0].data"""
    )
    assert labels == ["第1网格", "第2网格", "第10网格"]
    names = page.locator("#not-served-table tbody tr td:first-child").all_inner_texts()
    assert names == ["党员3", "党员10", "党员11"]
    # The activation search lists members in the same order.
    expect(page.locator("#members-table tbody tr td:first-child")).to_have_text(
        ["党员1", "党员2", "党员3", "党员10", "党员11"]
    )
    # Called from this list: the phone masked, a tap (logged) reveals it as a tel: link.
    row = page.locator("#not-served-table tbody tr", has_text="党员10")
    expect(row).to_contain_text("138****0000")
    row.locator("button.reveal").click()
    expect(page.locator("#not-served-table a[href='tel:13800000000']")).to_be_visible()

    # The same list as an Excel file: name first, phones in full (for calling), frozen header.
    with page.expect_download() as info:
        page.click("#not-served-xlsx")
    path = tmp_path / "not-served.xlsx"
    info.value.save_as(path)
    assert info.value.suggested_filename.endswith(".xlsx")
    ws = openpyxl.load_workbook(path).worksheets[0]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    assert rows[0][:3] == ["姓名", "手机号码", "网格"]
    assert [r[0] for r in rows[1:]] == ["党员3", "党员10", "党员11"]
    assert rows[1][1] == "13800000003" and rows[1][2] == "第1网格"
    assert ws.freeze_panes == "A2"


def test_review_result_beside_the_row_with_the_real_limit(
    live: Live, desk: BrowserContext, county: dict[str, Any]
) -> None:
    page = open_org(desk, live, county)
    row = page.locator("#review-table tbody tr", has_text="党员3")
    # A check-out without a check-in has no start time to show.
    expect(row.locator("td").nth(2)).to_have_text("无签到")
    row.locator("input.hours").fill("30")
    row.locator("input.reason").fill("核实")
    row.locator("button[data-action=adjust]").click()
    expect(row.locator(".row-msg")).to_have_text("核定时长须在 0～24 小时之间")
    expect(page.locator("#toolbar-msg")).to_have_text("")
    row.locator("input.hours").fill("0.25")
    row.locator("button[data-action=adjust]").click()
    expect(row).to_have_attribute("data-reviewed", "adjust")
    expect(row.locator(".row-msg")).to_contain_text("已核定为 0.25 小时")


def test_rankings_default_to_the_last_complete_month_rank_ties_equal_and_state_units(
    live: Live, desk: BrowserContext, county: dict[str, Any]
) -> None:
    page = open_org(desk, live, county)
    want = default_period(datetime.now(UTC)).label
    expect(page.locator("#ranking-month")).to_have_value(want)
    expect(page.locator("#ranking-period")).to_contain_text(want)
    api = live.http.get("/v1/rankings", params={"period": want}, headers=county["org"]).json()
    ranks = [i["rank"] for i in api["items"]]
    # Competition ranking: equal scores share a place, the next place skips.
    for a, b, x, y in zip(ranks, ranks[1:], api["items"], api["items"][1:], strict=False):
        assert (b == a) == (x["score"] == y["score"]), api["items"]
    expect(page.locator("#ranking-table tbody tr")).to_have_count(len(api["items"]))
    mine = page.locator("#ranking-table tr.mine")
    expect(mine.locator("td").nth(3)).to_contain_text("小时")
    expect(mine.locator("td").nth(5)).to_contain_text("分")
    expect(page.locator("#ranking-rule")).to_contain_text("名次相同")
    # The current month's weeks are not over: choosing it shows its (partial) ranking.
    current = datetime.now(UTC).astimezone(LOCAL_TZ).strftime("%Y-%m")
    page.fill("#ranking-month", current)
    page.dispatch_event("#ranking-month", "change")
    expect(page.locator("#ranking-period")).to_contain_text(current)


def test_last_week_beside_this_one(
    live: Live, desk: BrowserContext, county: dict[str, Any]
) -> None:
    page = open_org(desk, live, county)
    for k in ("registered", "served", "rate", "hours"):
        expect(page.locator(f"#prev-{k}")).to_contain_text("上周")
    # Last week, before anyone was seeded: nobody served; this week as the API counts it.
    expect(page.locator("#prev-served")).to_contain_text("：0")
    weekly = live.http.get(
        f"/v1/communities/{county['community_id']}/weekly", headers=county["org"]
    ).json()
    expect(page.locator("#kpi-served")).to_have_text(str(weekly["members_served"]))


def test_roster_evaluations_and_tablet_links(
    live: Live, desk: BrowserContext, county: dict[str, Any]
) -> None:
    page = open_org(desk, live, county)
    rows = page.locator("#roster-table tbody tr")
    expect(rows).to_have_count(5)
    assert rows.locator("td:first-child").all_inner_texts() == [
        "党员1",
        "党员2",
        "党员3",
        "党员10",
        "党员11",
    ]
    first = rows.first
    expect(first.locator("td").nth(1)).to_have_text("138****0002")  # masked
    expect(first.locator("td").nth(3)).to_have_text("已绑定")
    expect(first.locator("td").nth(4)).to_contain_text("已服务")
    expect(rows.nth(3).locator("td").nth(3)).to_have_text("未绑定")
    expect(rows.nth(3).locator("td").nth(6)).to_have_text("从未服务")
    page.fill("#roster-q", "第2网格")
    expect(rows).to_have_count(2)

    # An evaluation (评议 and 鉴定) from the roster's row.
    page.fill("#roster-q", "")
    rows.nth(1).locator("button").click()
    expect(page.locator("#eval-member")).to_have_value(county["members"]["党员2"]["id"])
    year = str(datetime.now(UTC).astimezone(LOCAL_TZ).year)
    page.fill("#eval-period", year)
    page.select_option("#eval-rating", "5")
    page.select_option("#eval-grade", "优秀")
    page.fill("#eval-comment", "服务认真")
    page.click("#eval-submit")
    expect(page.locator("#eval-msg")).to_contain_text("已提交 党员2")
    fb = live.http.get(
        f"/v1/members/{county['members']['党员2']['id']}/feedback",
        params={"period": year},
        headers=county["org"],
    ).json()
    assert fb["member_service"]["count"] == 1
    assert [e["grade"] for m in fb["members"] for e in m["evaluations"]] == ["优秀"]

    # A station tablet's link, made from the page.
    station = county["stations"][0]
    row = page.locator(f"#stations-table tr[data-station-id='{station['id']}']")
    expect(row.locator("td[data-accepts-poster]")).to_have_text("接受")
    row.locator("button[data-action=screen-link]").click()
    link = page.locator("#screen-link a")
    expect(link).to_have_attribute("href", re.compile(rf"/stations/{station['id']}/screen\?key=.+"))
    href = str(link.get_attribute("href"))
    tablet = desk.new_page()
    tablet.goto(href)
    expect(tablet.locator("body")).to_have_attribute("data-page", "screen")
    # A lost tablet: the organizer revokes the station's links from the page; the old one dies.
    row.locator("button[data-action=revoke]").click()
    expect(page.locator("#screen-link")).to_contain_text("已全部作废")
    tablet.goto(href)
    expect(tablet.locator("body")).to_have_attribute("data-page", "screen-invalid")


def test_hr_page_fits_320_390_1366_and_passes_axe(
    live: Live, desk: BrowserContext, county: dict[str, Any], shot: Shot
) -> None:
    page = open_hr(desk, live, county)
    not_found: list[str] = []
    page.on("response", lambda r: not_found.append(r.url) if r.status == 404 else None)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        no_sideways_scroll(page)
        # A name stays on one line (it wrapped one character per line on a phone).
        heights = page.locator("#assessment-table td.name").evaluate_all(
            "(tds) => tds.map((td) => td.querySelector('button').getClientRects().length)"
        )
        assert heights and set(heights) == {1}, heights
        shot(page, f"desk-hr-{width}")
        assert_no_serious_violations(page)
    page.locator("#assessment-table td.name button").first.click()
    expect(page.locator("#member-detail")).to_be_visible()
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "desk-hr-detail-390")
    assert_no_serious_violations(page)
    page.reload()
    assert not not_found, not_found


def test_hr_table_sorts_searches_and_opens_a_members_year(
    live: Live, desk: BrowserContext, county: dict[str, Any]
) -> None:
    page = open_hr(desk, live, county)
    names = page.locator("#assessment-table tbody td.name")
    expect(names).to_have_count(5)
    # By name in natural order at first; a click on the header turns it round.
    assert names.all_inner_texts() == ["党员1", "党员2", "党员3", "党员10", "党员11"]
    expect(page.locator("#assessment-table th[data-key=name]")).to_have_attribute(
        "aria-sort", "ascending"
    )
    page.click("#assessment-table th[data-key=name] button")
    assert names.all_inner_texts() == ["党员11", "党员10", "党员3", "党员2", "党员1"]
    page.click("#assessment-table th[data-key=hours] button")
    page.click("#assessment-table th[data-key=hours] button")
    expect(page.locator("#assessment-table th[data-key=hours]")).to_have_attribute(
        "aria-sort", "descending"
    )
    assert names.first.inner_text() == "党员1"  # the longest service first
    page.fill("#search", "党员1")
    expect(names).to_have_count(3)  # 党员1, 党员10, 党员11
    page.fill("#search", "")

    # One way of stating the rules, and no 「不合格 ≥ 0 分」.
    rules = page.locator("#rules-table").inner_text()
    assert "≥ 0" not in rules and "低于 60 分" in rules and "优秀 10 分" in rules
    expect(page.locator("#rules-description")).to_have_count(0)

    # A member's year, one click from the row: weeks, sessions, feedback.
    page.locator("#assessment-table td.name button", has_text=re.compile("^党员1$")).click()
    dialog = page.locator("#member-detail")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#detail-title")).to_contain_text("党员1")
    expect(dialog.locator("#detail-weeks li")).to_have_count(1)
    expect(dialog.locator("#detail-weeks")).to_contain_text("1 次")
    expect(dialog.locator("#detail-sessions tbody tr")).to_have_count(1)
    expect(dialog.locator("#detail-feedback")).to_contain_text("服务评价")
    expect(dialog.locator("#detail-components tr")).to_have_count(5)
    page.click("#detail-close")
    expect(dialog).to_be_hidden()


def test_hr_excel_name_first_with_office_columns(
    live: Live, desk: BrowserContext, county: dict[str, Any], tmp_path: Path
) -> None:
    page = open_hr(desk, live, county)
    with page.expect_download() as info:
        page.click("#download-xlsx")
    data = Path(info.value.path()).read_bytes()
    ws = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
    header, *body = [list(r) for r in ws.iter_rows(values_only=True)]
    assert header[:5] == ["姓名", "手机号码", "党支部", "报到日期", "居住社区"]
    assert header[-1] == "成员编号"
    assert ws.freeze_panes == "A2" and (ws.column_dimensions["A"].width or 0) >= 10
    row = next(r for r in body if r[0] == "党员10")
    assert row[1:4] == ["138****0000", "水务局第一党支部", "2025-03-01"]
    assert row[-1] == county["members"]["党员10"]["id"]
