"""The organizer's views: who is on site now, and the A4 poster sheet of the community."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

import pytest

from services.qr import render, station_url
from services.tokens import sign_station
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


@pytest.fixture(scope="module")
def place(stack: Stack) -> dict[str, Any]:
    unit = stack.create("/v1/units", {"name": "县林业局"})
    community = stack.create("/v1/communities", {"name": "南关社区"})
    other = stack.create("/v1/communities", {"name": "西关社区"})
    stations = [
        stack.create(
            "/v1/stations",
            {"community_id": community["id"], "name": name, "kind": kind},
        )
        for name, kind in (("南关党群服务站", "service_station"), ("南关党员驿站", "member_post"))
    ]
    members = [
        stack.create(
            "/v1/members",
            {"name": n, "unit_id": unit["id"], "community_id": community["id"], "phone": p},
        )
        for n, p in (("韩梅", "13900000001"), ("李雷", "13900000002"))
    ]
    return {"community": community, "other": other, "stations": stations, "members": members}


def test_on_site_now_lists_open_sessions_only(stack: Stack, place: dict[str, Any]) -> None:
    st = place["stations"][0]
    a, b = place["members"]
    for m, actions in ((a, ["in"]), (b, ["in", "out"])):
        for action in actions:
            body = {
                "station_token": sign_station(stack.settings, st["id"]),
                "action": action,
                "client_event_id": str(uuid.uuid4()),
            }
            headers = stack.token("member", m["id"])
            assert stack.client.post("/v1/checkins", json=body, headers=headers).status_code == 202
    organizer = stack.token("organizer", place["community"]["id"])
    url = f"/v1/communities/{place['community']['id']}/on-site"

    def only_a() -> Any:
        r = stack.client.get(url, headers=organizer).json()
        return r if [i["member_id"] for i in r["items"]] == [a["id"]] else None

    # b's check-out within the repeat window is still a check-out: b is not on site.
    got = stack.wait_for(only_a, timeout=40)
    assert got, stack.client.get(url, headers=organizer).json()
    item = got["items"][0]
    assert item["member_name"] == "韩梅" and item["phone"] == "139****0001"
    assert item["station_name"] == "南关党群服务站"

    for headers in (stack.token("organizer", place["other"]["id"]), stack.token("member", a["id"])):
        r = stack.client.get(url, headers=headers)
        assert r.status_code == 404


def test_poster_sheet_has_every_station_with_its_own_code(
    stack: Stack, place: dict[str, Any]
) -> None:
    organizer = stack.token("organizer", place["community"]["id"])
    r = stack.client.get(f"/v1/communities/{place['community']['id']}/posters", headers=organizer)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "size: A4" in r.text
    assert r.text.count('class="poster"') == 2
    assert "党群服务站" in r.text and "党员驿站" in r.text
    images = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', r.text)
    expected = {render(station_url(stack.settings, s["id"]), "svg") for s in place["stations"]}
    assert {base64.b64decode(i) for i in images} == expected
    other = stack.token("organizer", place["other"]["id"])
    r = stack.client.get(f"/v1/communities/{place['community']['id']}/posters", headers=other)
    assert r.status_code == 404


def test_roster_lists_members_by_name_with_masked_phones_and_the_weeks_rule(
    stack: Stack, place: dict[str, Any]
) -> None:
    c = place["community"]["id"]
    organizer = stack.token("organizer", c)
    extra = stack.create(
        "/v1/members",
        {"name": "李雷2", "unit_id": place["members"][0]["unit_id"], "community_id": c},
    )
    r = stack.client.get(f"/v1/communities/{c}/roster", headers=organizer)
    assert r.status_code == 200, r.text
    roster = r.json()
    # Natural order by name; phones masked (a roster identifies, it does not call).
    assert [i["name"] for i in roster["items"]] == ["李雷", "李雷2", "韩梅"]
    by_name = {i["name"]: i for i in roster["items"]}
    assert by_name["韩梅"]["phone"] == "139****0001" and by_name["李雷2"]["phone"] is None
    assert {i["binding"] for i in roster["items"]} == {"unbound"}
    assert by_name["李雷2"]["week_sessions"] == 0 and by_name["李雷2"]["last_service"] is None
    # Served this week exactly as the week's figures count it.
    weekly = stack.client.get(f"/v1/communities/{c}/weekly", headers=organizer).json()
    assert roster["week"] == weekly["week"]
    assert sorted(i["member_id"] for i in roster["items"] if i["served_this_week"] is False) == (
        sorted(weekly["not_served"])
    )
    assert extra["id"] in weekly["not_served"]

    # The not-served file: the same members, phones in full (it is for calling them).
    csv_text = stack.client.get(
        f"/v1/communities/{c}/roster", params={"format": "csv"}, headers=organizer
    ).content.decode("utf-8-sig")
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("姓名,手机号码,网格")
    names = {m["id"]: m["name"] for m in place["members"]} | {extra["id"]: "李雷2"}
    assert sorted(line.split(",")[0] for line in lines[1:]) == sorted(
        names[i] for i in weekly["not_served"]
    )
    x = stack.client.get(f"/v1/communities/{c}/roster?format=xlsx", headers=organizer)
    assert x.status_code == 200 and x.content[:2] == b"PK"

    # Bad input is refused, naming it; another community's organizer learns nothing.
    for params, code in (({"week": "2026-W99"}, "invalid_week"), ({"format": "pdf"}, None)):
        bad = stack.client.get(f"/v1/communities/{c}/roster", params=params, headers=organizer)
        assert bad.status_code == 422, bad.text
        assert code is None or bad.json()["error"]["code"] == code
    other = stack.token("organizer", place["other"]["id"])
    assert stack.client.get(f"/v1/communities/{c}/roster", headers=other).status_code == 404
