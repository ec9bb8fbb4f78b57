"""Personal information care in the pages (issue 15): the binding page says what is collected and
why and that no location is read; the organizer's on-site and not-served lists show phones masked
with 显示号码 (each reveal logged); the admin reads the log on its page; the member downloads
everything held about them from /me."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.support.live import BROWSER_MARKS, Live, scan

pytestmark = BROWSER_MARKS

Shot = Callable[[Page, str], Path]


@pytest.fixture(scope="module")
def place(live: Live) -> dict[str, Any]:
    """A community with one member on site now (checked in, not out) and one not served."""
    tag = uuid.uuid4().hex[:4]
    unit = live.create("/v1/units", {"name": f"县审计局{tag}"})
    c = live.create("/v1/communities", {"name": f"西城社区{tag}"})["id"]
    s = live.create(
        "/v1/stations", {"community_id": c, "name": "西城党群服务站", "kind": "service_station"}
    )["id"]
    members = {
        n: live.create(
            "/v1/members",
            {"name": n, "phone": p, "unit_id": unit["id"], "community_id": c},
        )
        for n, p in (("周红", "13700000011"), ("吴军", "13700000012"))
    }
    scan(live, members["周红"]["id"], s, "in", datetime.now(UTC) - timedelta(minutes=15))
    org = live.auth("organizer", c)
    assert live.wait_for(
        lambda: live.http.get(f"/v1/communities/{c}/on-site", headers=org).json()["total"] == 1,
        timeout=40,
    ), "the open session did not arrive"
    return {"community_id": c, "members": members, "org": org}


def test_the_binding_page_says_what_is_collected_and_that_location_is_never_read(
    live: Live, phone: BrowserContext, shot: Shot
) -> None:
    page = phone.new_page()
    page.goto(f"{live.base_url}/bind/ABCD-EFGH")
    notice = page.locator("#privacy-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("我们收集什么、为什么")
    expect(notice).to_contain_text("扫码签到、签退的时间和站点")
    expect(notice).to_contain_text("不获取您的位置")
    expect(notice).to_contain_text("从不读取手机定位")
    expect(notice).to_contain_text("138****0004")
    # SCAN_RETENTION_YEARS (4 by default) as the member reads it.
    expect(notice).to_contain_text("当年及之前 3 年（共 4 年）")
    expect(notice).to_contain_text("下载关于您的全部数据")
    shot(page, "privacy-01-binding-notice")
    # The page never asks the phone for its position.
    assert page.evaluate("() => typeof navigator.geolocation") == "object"
    assert "geolocation" not in (live.http.get("/static/app.js").text)


def test_organizer_reveals_a_phone_with_a_tap_and_the_admin_sees_it_logged(
    live: Live, desk: BrowserContext, place: dict[str, Any], shot: Shot
) -> None:
    c, org = place["community_id"], place["org"]
    page = desk.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live.base_url}/org?t={org['Authorization'].removeprefix('Bearer ')}")
    expect(page.locator("body")).to_have_attribute(
        "data-loaded", re.compile(r"^\d{4}-W\d{2}$"), timeout=20_000
    )
    onsite = page.locator("#onsite-table tbody tr", has_text="周红")
    expect(onsite).to_contain_text("137****0011")
    not_served = page.locator("#not-served-table tbody tr", has_text="吴军")
    expect(not_served).to_contain_text("137****0012")
    # Nothing in full on the page until a tap.
    assert "13700000011" not in page.content() and "13700000012" not in page.content()
    shot(page, "privacy-02-org-masked")

    onsite.locator("button.reveal").click()
    expect(onsite.locator("a[href='tel:13700000011']")).to_have_text("13700000011")
    not_served.locator("button.reveal").click()
    expect(not_served.locator("a[href='tel:13700000012']")).to_be_visible()
    shot(page, "privacy-03-org-revealed")
    assert not errors, errors

    # Both reveals are in the log, as the organizer of this community.
    ids = [place["members"][n]["id"] for n in ("周红", "吴军")]

    def logged() -> Any:
        r = live.http.get(
            "/v1/access-log", params={"kind": "phone_reveal", "actor_id": c}, headers=live.admin
        )
        items = r.json()["items"]
        return items if len(items) >= 2 else None

    items = live.wait_for(logged, timeout=30)
    assert items and sorted(m for i in items for m in i["member_ids"]) == sorted(ids)

    # The admin's page lists them, newest first, and filters by kind.
    admin = desk.new_page()
    admin.on("pageerror", lambda e: errors.append(str(e)))
    admin.goto(f"{live.base_url}/admin/access-log")
    expect(admin.locator("#login")).to_be_visible()
    admin.fill("#login-token", place["org"]["Authorization"].removeprefix("Bearer "))
    admin.click("#login-submit")
    expect(admin.locator("#login-msg")).to_contain_text("不是管理员令牌")
    admin.fill("#login-token", live.settings.admin_token)
    admin.click("#login-submit")
    expect(admin.locator("body")).to_have_attribute(
        "data-loaded", re.compile(r"^\d+$"), timeout=20_000
    )
    rows = admin.locator("#log-table tbody tr")
    expect(rows.first).to_be_visible()
    expect(admin.locator("#log-table")).to_contain_text("查看完整号码")
    expect(admin.locator("#log-table")).to_contain_text("社区 西城社区")
    expect(admin.locator("#log-table")).to_contain_text(f"周红（{ids[0]}）")
    admin.fill("#f-member", ids[1])
    admin.select_option("#f-kind", "phone_reveal")
    admin.click("#search")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(ids[1])
    expect(admin.locator("#page-info")).to_have_text("第 1–1 条，共 1 条")
    shot(admin, "privacy-04-access-log")
    admin.select_option("#f-kind", "phones_export")
    admin.click("#search")
    expect(admin.locator("#log-empty")).to_be_visible()
    assert not errors, errors


def test_the_member_downloads_their_own_data_from_me(
    live: Live, phone: BrowserContext, place: dict[str, Any], shot: Shot, tmp_path: Path
) -> None:
    member = place["members"]["周红"]["id"]
    r = live.http.get(f"/v1/members/{member}/phone", headers=place["org"])
    assert r.status_code == 200, r.text
    page = phone.new_page()
    page.goto(f"{live.base_url}/me?t={live.token('member', member)}")
    card = page.locator("#my-data-card")
    expect(card).to_be_visible()
    expect(card).to_contain_text("下载我的数据")
    with page.expect_download() as info:
        page.click("#my-data")
    download = info.value
    assert download.suggested_filename.startswith(f"my-data-{member}-")
    path = tmp_path / "my-data.json"
    download.save_as(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["member_id"] == member and data["record"]["phone"] == "13700000011"
    assert [s["action"] for s in data["parts"]["scans"]] == ["in"]
    # The organizer's reveal of this member's phone is part of what the member is told.
    assert live.wait_for(
        lambda: any(
            e["kind"] == "phone_reveal"
            for e in live.http.get(
                f"/v1/members/{member}/my-data", headers=live.auth("member", member)
            ).json()["parts"]["access_log"]
        ),
        timeout=30,
    )
    expect(page.locator("#my-data-msg")).to_contain_text("已下载")
    shot(page, "privacy-05-me-my-data")
