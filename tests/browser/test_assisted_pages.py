"""Assisted and team check-in and the anomaly flags on the pages, in a real browser: the
organizer's 代签到 (search, 签到/签退, several at once, a team leader set), the review queue's
anomaly flags in Chinese, and the station tablet's 代签到."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, Page, expect

from services.sessions import assisted_by
from services.tokens import sign_station
from tests.support.live import BROWSER_MARKS, Live, scan

pytestmark = BROWSER_MARKS
# No weekly minimum: the seconds-long sessions here are queued for their anomalies only.
LIVE_SETTINGS = {"week_min_credited_min": 0}

Shot = Callable[[Page, str], Path]


def seed(live: Live) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:4]
    unit = live.create("/v1/units", {"name": f"县民政局{tag}"})
    c = live.create("/v1/communities", {"name": f"南城社区{tag}"})["id"]
    near = live.create(
        "/v1/stations",
        {
            "community_id": c,
            "name": "南城党群服务站",
            "kind": "service_station",
            "lat": 35.0030,
            "lon": 104.6340,
        },
    )
    far = live.create(
        "/v1/stations",
        {
            "community_id": c,
            "name": "文峰党员驿站",
            "kind": "member_post",
            "lat": 36.0611,
            "lon": 103.8343,
        },
    )
    base = 13700000000 + int(uuid.uuid4().int % 1_000_000) * 100
    members = {
        key: live.create(
            "/v1/members",
            {"name": name, "phone": str(base + n), "unit_id": unit["id"], "community_id": c},
        )
        for n, (key, name) in enumerate(
            (("elder", "王秀英"), ("grandpa", "李大爷"), ("traveller", "赵快"), ("lead", "刘队长"))
        )
    }
    # 陇西 then 兰州 within minutes: too fast for the road.
    now = datetime.now(UTC)
    t = members["traveller"]["id"]
    scan(live, t, near["id"], "in", now - timedelta(minutes=30))
    scan(live, t, near["id"], "out", now - timedelta(minutes=20))
    scan(live, t, far["id"], "in", now - timedelta(minutes=15))
    scan(live, t, far["id"], "out", now - timedelta(minutes=5))
    return {"community_id": c, "near": near, "far": far, **members}


def sessions(live: Live, member_id: str) -> list[dict[str, Any]]:
    r = live.http.get(f"/v1/members/{member_id}/sessions", headers=live.admin)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def test_the_organizer_checks_in_for_members_and_sees_anomalies_in_chinese(
    live: Live, desk: BrowserContext, shot: Shot
) -> None:
    d = seed(live)
    c = d["community_id"]
    org = live.auth("organizer", c)

    def queued() -> Any:
        r = live.http.get(f"/v1/communities/{c}/review-queue", headers=org)
        items = [i for i in r.json()["items"] if "too_fast" in i["anomalies"]]
        return items or None

    assert live.wait_for(queued, timeout=60), "the too-fast session did not reach the queue"

    page = desk.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live.base_url}/org?t={org['Authorization'].removeprefix('Bearer ')}")
    expect(page.locator("body")).to_have_attribute("data-loaded", re.compile(r".+"), timeout=20_000)
    rows = page.locator("#review-table tbody tr", has_text="赵快")
    expect(rows.filter(has_text="文峰党员驿站")).to_contain_text("异常：站点间移动过快")
    # The first session of the trip (a gesture of minutes, queued for that) is not too fast.
    expect(rows.filter(has_text="南城党群服务站")).not_to_contain_text("异常")
    shot(page, "assisted-01-review-queue-anomaly")

    # 代签到: find by name, pick the station, check in.
    page.fill("#assisted-q", "王秀")
    page.select_option("#assisted-station", d["near"]["id"])
    page.click("#assisted-search button[type=submit]")
    found = page.locator("#assisted-table tbody tr", has_text="王秀英")
    expect(found).to_have_count(1)
    phone = d["elder"]["phone"]
    expect(found).to_contain_text(f"{phone[:3]}****{phone[-4:]}")
    found.locator("button[data-action=in]").click()
    expect(page.locator("#assisted-msg")).to_have_text("已为 王秀英 签到", timeout=30_000)
    shot(page, "assisted-02-checked-in-for-a-member")

    def opened(member_id: str) -> Any:
        return next((s for s in sessions(live, member_id) if s["status"] == "open"), None)

    s = live.wait_for(lambda: opened(d["elder"]["id"]), timeout=60)
    assert s and "assisted" in s["flags"] and assisted_by(s["flags"]) == [f"organizer:{c}"]

    # Several at once (a group), by phone digits and by name.
    page.fill("#assisted-q", "李大")
    page.click("#assisted-search button[type=submit]")
    grandpa = page.locator("#assisted-table tbody tr", has_text="李大爷")
    expect(grandpa).to_have_count(1)
    expect(page.locator("#assisted-msg")).to_have_text("")
    grandpa.locator("input.pick").check()
    page.click("#assisted-group-in")
    expect(page.locator("#assisted-msg")).to_have_text("已为 李大爷 签到", timeout=30_000)
    assert live.wait_for(lambda: opened(d["grandpa"]["id"]), timeout=60)

    # A team leader for 李大爷: then 刘队长 may check him in from a phone.
    grandpa.locator("select.leader").select_option(label="刘队长")
    expect(page.locator("#assisted-msg")).to_have_text("已指定 李大爷 的队长", timeout=30_000)
    r = live.http.get("/v1/me/team", headers=live.auth("member", d["lead"]["id"]))
    assert [i["name"] for i in r.json()["items"]] == ["李大爷"]
    shot(page, "assisted-03-team-leader-set")

    # Nothing found: said in Chinese.
    page.fill("#assisted-q", "不存在的人")
    page.click("#assisted-search button[type=submit]")
    expect(page.locator("#assisted-msg")).to_contain_text("没有找到该党员")
    assert errors == []


def test_the_station_tablet_checks_in_a_member_without_a_smartphone(
    live: Live, tablet: BrowserContext, shot: Shot
) -> None:
    d = live.community_with_member("陈阿婆")
    station_id = d["station"]["id"]
    organizer = live.auth("organizer", d["community"]["id"])
    r = live.http.post(f"/v1/stations/{station_id}/screen-keys", headers=organizer)
    assert r.status_code == 201, r.text

    page = tablet.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(r.json()["url"])
    expect(page.locator("#qr")).to_be_visible()
    page.click("#kiosk summary")
    page.fill("#kiosk-q", "陈阿")
    page.click("#kiosk-search button[type=submit]")
    row = page.locator("#kiosk-table tr", has_text="陈阿婆")
    expect(row).to_have_count(1)
    row.locator("button[data-action=in]").click()
    expect(page.locator("#kiosk-msg")).to_have_text("已为 陈阿婆 签到", timeout=30_000)
    shot(page, "assisted-04-tablet-checkin")
    member_id = d["member"]["id"]

    def opened() -> Any:
        return next((s for s in sessions(live, member_id) if s["status"] == "open"), None)

    s = live.wait_for(opened, timeout=60)
    assert s and assisted_by(s["flags"]) == [f"station:{station_id}"]
    # The search on the tablet finds only this community's members.
    page.fill("#kiosk-q", "不存在的人")
    page.click("#kiosk-search button[type=submit]")
    expect(page.locator("#kiosk-msg")).to_contain_text("没有找到该党员")
    assert errors == []


def test_a_team_leader_checks_in_the_team_from_the_phone(
    live: Live, phone: BrowserContext, shot: Shot
) -> None:
    d = live.community_with_member("刘队长")
    leader, station = d["member"], d["station"]
    team = [
        live.create(
            "/v1/members",
            {
                "name": name,
                "unit_id": d["unit"]["id"],
                "community_id": d["community"]["id"],
                "team_leader_id": leader["id"],
            },
        )
        for name in ("队员张", "队员王")
    ]
    page = phone.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    token = sign_station(live.settings, station["id"])
    page.goto(f"{live.base_url}/s/{token}?t={live.token('member', leader['id'])}")
    card = page.locator("#team-card")
    expect(card).to_be_visible(timeout=20_000)
    page.click("#team-in")
    expect(page.locator("#team-msg")).to_have_text("请先勾选在场的队员")
    for m in team:
        card.get_by_label(m["name"]).check()
    page.click("#team-in")
    expect(page.locator("#team-msg")).to_have_text("已为 2 名队员签到", timeout=30_000)
    shot(page, "assisted-05-team-leader-phone")
    for m in team:

        def opened(member_id: str = m["id"]) -> Any:
            return next((s for s in sessions(live, member_id) if s["status"] == "open"), None)

        s = live.wait_for(opened, timeout=60)
        assert s and "team" in s["flags"]
        assert assisted_by(s["flags"]) == [f"member:{leader['id']}"]
    assert errors == []


def test_a_member_who_leads_nobody_sees_no_team(live: Live, phone: BrowserContext) -> None:
    d = live.community_with_member("普通党员")
    page = phone.new_page()
    token = sign_station(live.settings, d["station"]["id"])
    page.goto(f"{live.base_url}/s/{token}?t={live.token('member', d['member']['id'])}")
    expect(page.locator("#status")).to_contain_text("签到", timeout=20_000)
    page.wait_for_timeout(1000)
    expect(page.locator("#team-card")).to_be_hidden()
