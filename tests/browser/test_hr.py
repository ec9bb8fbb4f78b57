"""The unit HR page in a real browser: sign in, the year's assessment with its rules version and
rules, and the Excel and CSV downloads holding the same numbers as the JSON API."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from services.timeutil import LOCAL_TZ
from tests.support.live import BROWSER_MARKS, Live, scan

pytestmark = BROWSER_MARKS

Shot = Callable[[Page, str], Path]


def test_hr_sees_the_assessment_and_downloads_excel_and_csv(
    live: Live, desk: BrowserContext, shot: Shot, tmp_path: Path
) -> None:
    d = live.community_with_member("张伟")
    unit, community = d["unit"], d["community"]
    other = live.create(
        "/v1/members",
        {"name": "刘洋", "unit_id": unit["id"], "community_id": community["id"]},
    )
    now = datetime.now(UTC)
    year = now.astimezone(LOCAL_TZ).year
    if (now - timedelta(minutes=91)).astimezone(LOCAL_TZ).year != year:
        pytest.skip("the seeded session would straddle New Year")
    scan(live, d["member"]["id"], d["station"]["id"], "in", now - timedelta(minutes=90))
    scan(live, d["member"]["id"], d["station"]["id"], "out", now - timedelta(minutes=1))
    hr = live.auth("hr", unit["id"])
    url = f"/v1/units/{unit['id']}/assessments?year={year}"

    def assessed() -> Any:
        a = live.http.get(url, headers=hr).json()
        return a if any(i["hours"] > 0 for i in a["items"]) else None

    api = live.wait_for(assessed, timeout=40)
    assert api and api["total"] == 2, live.http.get(url, headers=hr).text
    by_id = {i["member_id"]: i for i in api["items"]}
    assert by_id[d["member"]["id"]]["hours"] == 1.48 and by_id[other["id"]]["hours"] == 0

    page = desk.new_page()
    page.goto(f"{live.base_url}/hr?year={year}")
    page.fill("#login-token", live.token("organizer", community["id"]))
    page.click("#login-submit")
    expect(page.locator("#login-msg")).to_have_text("该令牌不是单位人事部门令牌")
    page.fill("#login-token", hr["Authorization"].removeprefix("Bearer "))
    page.click("#login-submit")
    expect(page.locator("body")).to_have_attribute("data-loaded", str(year), timeout=20_000)
    expect(page.locator("#who")).to_have_text(unit["name"])
    expect(page.locator("#rules-version")).to_contain_text(f"第 {api['rules_version']} 版")
    expect(page.locator("#rules-table tbody tr")).not_to_have_count(0)
    rows = page.locator("#assessment-table tbody tr")
    expect(rows).to_have_count(2)
    row = page.locator(f"#assessment-table tr[data-member-id='{d['member']['id']}']")
    expect(row.locator("td").nth(2)).to_have_text("1.48")
    expect(row.locator("td").nth(10)).to_have_text(by_id[d["member"]["id"]]["grade"])
    shot(page, "hr-01-assessment")

    with page.expect_download() as info:
        page.click("#download-xlsx")
    download = info.value
    assert download.suggested_filename == f"{year}年度考核-{unit['name']}.xlsx"
    path = tmp_path / "a.xlsx"
    download.save_as(path)
    sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
    header, *body = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert header[:5] == ["姓名", "手机号码", "党支部", "报到日期", "居住社区"]
    col = {h: i for i, h in enumerate(header)}
    assert len(body) == 2
    for r in body:
        want = by_id[r[col["成员编号"]]]
        assert r[col["姓名"]] == want["name"]
        assert float(r[col["服务时长（小时）"]]) == want["hours"]
        assert int(r[col["服务次数"]]) == want["sessions"]
        assert int(r[col["应服务周数"]]) == want["required_weeks"]
        assert r[col["等次"]] == want["grade"]
        assert (r[col["得分"]] is None and want["score"] is None) or float(r[col["得分"]]) == want[
            "score"
        ]
        assert int(r[col["规则版本"]]) == api["rules_version"]

    with page.expect_download() as info:
        page.click("#download-csv")
    assert info.value.suggested_filename == f"{year}年度考核-{unit['name']}.csv"
    text = Path(info.value.path()).read_bytes().decode("utf-8-sig")
    rows_csv = list(csv.DictReader(io.StringIO(text)))
    assert {r["成员编号"]: float(r["服务时长（小时）"]) for r in rows_csv} == {
        k: v["hours"] for k, v in by_id.items()
    }
    expect(page.locator("#toolbar-msg")).to_contain_text("已下载")
