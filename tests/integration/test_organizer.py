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
    assert item["member_name"] == "韩梅" and item["phone"] == "13900000001"
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
