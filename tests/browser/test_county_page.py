"""The county's and towns' page in a real browser: the county office drills down county → town
→ community → grid by clicking, switches to units, sees the trend and the heatmap, downloads the
table; a town office starts at its own town; other roles are turned away."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
from playwright.sync_api import BrowserContext, Page, expect

from services.timeutil import iso_week
from tests.support.live import BROWSER_MARKS, Live, scan

pytestmark = BROWSER_MARKS

Shot = Callable[[Page, str], Path]


def _county(live: Live) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:4]
    t1 = live.create("/v1/towns", {"name": f"巩昌镇{tag}"})
    t2 = live.create("/v1/towns", {"name": f"文峰镇{tag}"})
    unit = live.create("/v1/units", {"name": f"县财政局{tag}"})
    south = live.create("/v1/communities", {"name": f"南城社区{tag}", "town_id": t1["id"]})
    west = live.create("/v1/communities", {"name": f"西城社区{tag}", "town_id": t1["id"]})
    jiaotong = live.create("/v1/communities", {"name": f"交通社区{tag}", "town_id": t2["id"]})
    grid = live.create("/v1/grids", {"community_id": south["id"], "name": "第1网格", "level": 4})
    st_south = live.create(
        "/v1/stations",
        {"community_id": south["id"], "name": "南城党群服务站", "kind": "service_station"},
    )
    st_jt = live.create(
        "/v1/stations",
        {"community_id": jiaotong["id"], "name": "交通党员驿站", "kind": "member_post"},
    )

    def member(name: str, community: dict[str, Any], **extra: Any) -> dict[str, Any]:
        body = {"name": name, "unit_id": unit["id"], "community_id": community["id"], **extra}
        return live.create("/v1/members", body)

    a = member("张伟", south, grid_id=grid["id"])
    member("李娜", south)
    member("王芳", west)
    c = member("刘洋", jiaotong)
    now = datetime.now(UTC)
    for who, station in ((a, st_south), (c, st_jt)):
        scan(live, who["id"], station["id"], "in", now - timedelta(minutes=90))
        scan(live, who["id"], station["id"], "out", now - timedelta(minutes=1))
    return {"t1": t1, "t2": t2, "unit": unit, "south": south, "west": west, "jt": jiaotong}


def test_the_county_office_drills_down_and_downloads(
    live: Live, desk: BrowserContext, shot: Shot, tmp_path: Path
) -> None:
    d = _county(live)
    county = live.auth("county", "county")
    week = iso_week(datetime.now(UTC))

    def served() -> Any:
        body = live.http.get("/v1/county/drilldown", params={"week": week}, headers=county).json()
        mine = [r for r in body["items"] if r["id"] in (d["t1"]["id"], d["t2"]["id"])]
        return mine if sum(r["served"] for r in mine) == 2 else None

    assert live.wait_for(served, timeout=60), "the scans never reached the roll-ups"

    page = desk.new_page()
    page.goto(f"{live.base_url}/county?week={week}")
    page.fill("#login-token", live.token("organizer", d["south"]["id"]))
    page.click("#login-submit")
    expect(page.locator("#login-msg")).to_have_text("该令牌不是县委组织部或镇（街道）的令牌")
    page.fill("#login-token", county["Authorization"].removeprefix("Bearer "))
    page.click("#login-submit")
    expect(page.locator("#who")).to_have_text("县委组织部")
    expect(page.locator("body")).to_have_attribute("data-loaded", "county::town", timeout=60_000)
    table = page.locator("#rows-table tbody")
    t1_row = table.locator("tr", has_text=d["t1"]["name"])
    expect(t1_row).to_have_count(1, timeout=30_000)
    # 巩昌镇: 张伟, 李娜, 王芳 registered, 张伟 served.
    expect(t1_row.locator("td").nth(1)).to_have_text("3")
    expect(t1_row.locator("td").nth(2)).to_have_text("1")
    expect(t1_row.locator("td").nth(3)).to_have_text("0")  # 请假: none excused
    expect(t1_row.locator("td").nth(4)).to_have_text("33.3%")
    expect(t1_row.locator("td").nth(9)).to_have_text("0")  # 未到: no slot missed
    expect(table.locator("tr.total")).to_have_count(1)
    expect(page.locator("#chart-rows canvas").first).to_be_visible()
    expect(page.locator("#chart-heatmap canvas").first).to_be_visible()
    shot(page, "county-01-towns")
    # The heatmap's window: the selected week alone, then back to 8 weeks.
    page.select_option("#heat-weeks", "1")
    expect(page.locator("#heatmap-weeks")).to_have_text(f"{week} 至 {week}", timeout=60_000)
    expect(page.locator("body")).to_have_attribute("data-loaded", "county::town", timeout=60_000)
    shot(page, "county-01b-heatmap-one-week")
    page.select_option("#heat-weeks", "8")
    expect(page.locator("#heatmap-weeks")).not_to_have_text(f"{week} 至 {week}", timeout=60_000)
    expect(page.locator("body")).to_have_attribute("data-loaded", "county::town", timeout=60_000)

    t1_row.locator("button.drill").click()
    loaded = page.locator("body")
    expect(loaded).to_have_attribute(
        "data-loaded", f"town:{d['t1']['id']}:community", timeout=60_000
    )
    expect(page.locator("#crumbs")).to_contain_text(f"全县 › {d['t1']['name']}")
    expect(page.locator("#col-name")).to_have_text("社区")
    south = table.locator("tr", has_text=d["south"]["name"])
    expect(south.locator("td").nth(1)).to_have_text("2")
    expect(table.locator("tr", has_text=d["jt"]["name"])).to_have_count(0)
    shot(page, "county-02-town")

    south.locator("button.drill").click()
    expect(loaded).to_have_attribute(
        "data-loaded", f"community:{d['south']['id']}:grid", timeout=60_000
    )
    expect(page.locator("#col-name")).to_have_text("网格")
    expect(table.locator("tr", has_text="第1网格").locator("td").nth(2)).to_have_text("1")
    expect(table.locator("tr", has_text="未划分网格").locator("td").nth(1)).to_have_text("1")
    shot(page, "county-03-community-grids")

    page.select_option("#by", "unit")
    expect(loaded).to_have_attribute(
        "data-loaded", f"community:{d['south']['id']}:unit", timeout=60_000
    )
    expect(page.locator("#col-name")).to_have_text("单位")
    expect(table.locator("tr", has_text=d["unit"]["name"]).locator("td").nth(1)).to_have_text("2")
    with page.expect_download() as info:
        page.click("#table-xlsx")
    path = tmp_path / "units.xlsx"
    info.value.save_as(path)
    assert info.value.suggested_filename.endswith("单位明细.xlsx")
    sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
    header, *body = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert header[:4] == ["单位", "登记党员数", "已服务人数", "本周服务率"]
    assert [r[0] for r in body] == [d["unit"]["name"], "合计"]
    assert body[0][1] == 2 and body[0][2] == 1

    # Back to the county by the breadcrumb.
    page.locator("#crumbs button.crumb", has_text="全县").click()
    expect(page.locator("#crumbs")).to_have_text("全县")
    page.select_option("#by", "")
    expect(loaded).to_have_attribute("data-loaded", "county::town", timeout=60_000)
    expect(page.locator("#col-name")).to_have_text("镇（街道）")
    shot(page, "county-04-back-to-county")


def test_a_town_office_starts_at_its_town(live: Live, desk: BrowserContext, shot: Shot) -> None:
    d = _county(live)
    page = desk.new_page()
    page.goto(f"{live.base_url}/county?t={live.token('town', d['t2']['id'])}")
    expect(page.locator("#who")).to_have_text(f"{d['t2']['name']}（镇街）")
    expect(page.locator("body")).to_have_attribute(
        "data-loaded", f"town:{d['t2']['id']}:community", timeout=60_000
    )
    expect(page.locator("#crumbs")).to_have_text(d["t2"]["name"])
    table = page.locator("#rows-table tbody")
    expect(table.locator("tr", has_text=d["jt"]["name"])).to_have_count(1, timeout=30_000)
    expect(table.locator("tr", has_text=d["south"]["name"])).to_have_count(0)
    shot(page, "county-05-town-office")
