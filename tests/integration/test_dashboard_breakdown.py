"""`GET /v1/communities/{id}/weekly/breakdown`: one week's hours and served counts per station
and per level-4 grid, adding up to the community's weekly figures; organizer's scope only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.counting import parts_agree
from services.timeutil import iso_week
from services.tokens import sign_station
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def test_breakdown_by_station_and_grid_adds_up_to_the_week(stack: Stack) -> None:
    now = datetime.now(UTC)
    week = iso_week(now)
    if iso_week(now - timedelta(minutes=61)) != week:
        pytest.skip("the seeded hour would straddle a week boundary")
    unit = stack.create("/v1/units", {"name": "县水务局"})
    c = stack.create("/v1/communities", {"name": "北关社区"})["id"]
    other = stack.create("/v1/communities", {"name": "西街社区"})["id"]
    g4 = stack.create("/v1/grids", {"community_id": c, "name": "北关一网格", "level": 4})
    g5 = stack.create(
        "/v1/grids", {"community_id": c, "name": "3号楼", "level": 5, "parent_id": g4["id"]}
    )
    st = [
        stack.create("/v1/stations", {"community_id": c, "name": n, "kind": "service_station"})
        for n in ("北关一站", "北关二站")
    ]

    def member(name: str, grid: str | None) -> dict[str, Any]:
        body = {"name": name, "unit_id": unit["id"], "community_id": c, "grid_id": grid}
        return stack.create("/v1/members", body)

    a, b, idle = member("周一", g5["id"]), member("吴二", None), member("郑三", g4["id"])
    for m, s, minutes in ((a, st[0], 60), (b, st[1], 30)):
        for action, at in (
            ("in", now - timedelta(minutes=minutes + 1)),
            ("out", now - timedelta(minutes=1)),
        ):
            r = stack.client.post(
                "/v1/checkins",
                json={
                    "station_token": sign_station(stack.settings, s["id"]),
                    "action": action,
                    "client_event_id": str(uuid.uuid4()),
                    "scanned_at": at.isoformat(),
                },
                headers=stack.token("member", m["id"]),
            )
            assert r.status_code == 202, r.text
    org = stack.token("organizer", c)
    url = f"/v1/communities/{c}/weekly/breakdown?week={week}"

    def done() -> Any:
        out = stack.client.get(url, headers=org).json()
        return out if sum(s["hours"] for s in out["stations"]) >= 1.5 else None

    got = stack.wait_for(done, timeout=30)
    assert got, stack.client.get(url, headers=org).json()
    assert got["week"] == week
    assert [
        (s["name"], s["members_served"], s["sessions"], s["hours"]) for s in got["stations"]
    ] == [
        ("北关一站", 1, 1, 1.0),
        ("北关二站", 1, 1, 0.5),
    ]
    # The level-5 grid counts in its level-4 parent; a member without a grid has their own row.
    assert [
        (g["grid_id"], g["name"], g["members_registered"], g["members_served"], g["hours"])
        for g in got["grids"]
    ] == [(g4["id"], "北关一网格", 2, 1, 1.0), (None, "未划分网格", 1, 1, 0.5)]
    weekly = stack.client.get(f"/v1/communities/{c}/weekly?week={week}", headers=org).json()
    assert weekly["hours"] == 1.5
    assert parts_agree([g["hours"] for g in got["grids"]], weekly["hours"])
    assert sum(g["members_served"] for g in got["grids"]) == weekly["members_served"] == 2
    assert weekly["not_served"] == [idle["id"]]

    for headers in (stack.token("organizer", other), stack.token("member", a["id"])):
        assert stack.client.get(url, headers=headers).status_code == 404
    bad = stack.client.get(f"/v1/communities/{c}/weekly/breakdown?week=2026-53", headers=org)
    assert bad.status_code == 422
