"""`GET /v1/weekly/communities`: the county's week in one request, each community with exactly the
figures of `GET /v1/communities/{id}/weekly`; the admin sees every community, an organizer only
their own, nobody else anything.

The week's rollup rows are written straight into `member_weeks` (as the sink writes the
agent's records), so every rule is exercised on a known week: who counts as registered (active,
reported by the week's end), served (registered members with a counted session for the
community), hours of the community's service (the community each row carries: the member's when
they served, `services.counting`), and the highest version of a row replacing older ones.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services import topics
from services.processors import ROUTES
from services.timeutil import iso_week
from services.tokens import issue_bearer
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

NOW = datetime.now(UTC)
WEEK = iso_week(NOW - timedelta(days=21))
PREVIOUS = iso_week(NOW - timedelta(days=28))
_Y, _W = WEEK.split("-W")
WEEK_END = date.fromisocalendar(int(_Y), int(_W), 7)

# The sink's own columns for the table these tests fill directly.
COLUMNS = ROUTES[topics.MEMBER_WEEKS.name].columns


@pytest.fixture(scope="module")
def county(stack: Stack) -> dict[str, Any]:
    unit = stack.create("/v1/units", {"name": "县林业局"})["id"]
    a = stack.create("/v1/communities", {"name": "北关社区"})["id"]
    b = stack.create("/v1/communities", {"name": "西街社区"})["id"]
    empty = stack.create("/v1/communities", {"name": "南河社区"})["id"]

    def member(name: str, community: str, **extra: Any) -> str:
        body = {"name": name, "unit_id": unit, "community_id": community, **extra}
        return str(stack.create("/v1/members", body)["id"])

    later = (WEEK_END + timedelta(days=1)).isoformat()
    m = {
        "a1": member("甲一", a),
        "a2": member("甲二", a, reported_on=later),  # reported after the week: not registered
        "a3": member("甲三", a, status="left"),  # left: not registered
        "a4": member("甲四", a),  # served while living in 西街: that service is 西街's
        "a5": member("甲五", a),  # registered, did not serve
        "a6": member("甲六", a),  # a row with credited time but no counted session
        "b1": member("乙一", b),  # served at 北关's station: service of 西街's member, 西街's
        "b2": member("乙二", b),
    }

    def row(who: str, station: str, sessions: int, seconds: int, **kw: Any) -> list[Any]:
        return [
            kw.get("week", WEEK),
            m[who],
            station,
            kw.get("station_community", a),
            kw.get("member_community", a if who.startswith("a") else b),
            None,
            unit,
            sessions,
            seconds,
            kw.get("version", 1),
            NOW,
        ]

    rows = [
        row("a1", "st_a1", 1, 100),
        row("a1", "st_a1", 1, 3600, version=2),  # the later version replaces the first
        row("a1", "st_a2", 2, 1800),
        row("a1", "st_a1", 1, 7200, week=PREVIOUS),  # another week
        row("a2", "st_a1", 1, 7200),
        row("a3", "st_a1", 1, 3600),
        row("a4", "st_b1", 1, 900, station_community=b, member_community=b),
        row("a6", "st_a1", 0, 600),
        row("b1", "st_a1", 1, 2700),
    ]
    stack.client.app.state.ctx.warehouse.insert("member_weeks", rows, COLUMNS)  # type: ignore[attr-defined]
    return {"unit": unit, "a": a, "b": b, "empty": empty, "m": m}


def _figures(item: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("members_registered", "members_served", "rate", "hours")
    return tuple(item[k] for k in keys)


def test_the_county_week_has_each_communitys_own_figures(
    stack: Stack, county: dict[str, Any]
) -> None:
    c = county
    r = stack.client.get("/v1/weekly/communities", params={"week": WEEK}, headers=stack.admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["week"] == WEEK and body["total"] == 3
    by_name = {i["name"]: i for i in body["items"]}
    assert [i["name"] for i in body["items"]] == sorted(by_name)
    # By hand: 北关 registers 甲一, 甲四, 甲五, 甲六; of them 甲一 (3 sessions) served for 北关.
    # Its hours are all service done as 北关's members: 甲一 1.5 h, 甲二 2 h and 甲三 1 h (not
    # registered that week, but their service was 北关's), 甲六's 600 s: 16,800 s. 西街: 乙一
    # served of two; its hours are 乙一's 0.75 h and 甲四's 0.25 h, done as 西街's member.
    assert _figures(by_name["北关社区"]) == (4, 1, 0.25, round(16800 / 3600, 2))
    assert _figures(by_name["西街社区"]) == (2, 1, 0.5, 1.0)
    assert _figures(by_name["南河社区"]) == (0, 0, 0.0, 0.0)
    assert by_name["北关社区"]["community_id"] == c["a"]

    # The same figures as each community's own weekly endpoint.
    for item in body["items"]:
        one = stack.client.get(
            f"/v1/communities/{item['community_id']}/weekly",
            params={"week": WEEK},
            headers=stack.admin,
        ).json()
        assert _figures(item) == _figures(one), (item, one)

    # Another week: nobody served in 西街, 北关's 甲一 served 2 h.
    prev = stack.client.get(
        "/v1/weekly/communities", params={"week": PREVIOUS}, headers=stack.admin
    ).json()
    assert {i["name"]: i["hours"] for i in prev["items"]} == {
        "北关社区": 2.0,
        "西街社区": 0.0,
        "南河社区": 0.0,
    }


def test_an_organizer_sees_only_their_own_community(stack: Stack, county: dict[str, Any]) -> None:
    c = county
    for community, figures in ((c["a"], (4, 1, 0.25, 4.67)), (c["empty"], (0, 0, 0.0, 0.0))):
        org = stack.token("organizer", community)
        r = stack.client.get("/v1/weekly/communities", params={"week": WEEK}, headers=org)
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert [i["community_id"] for i in items] == [community]
        assert _figures(items[0]) == figures

    # A token naming a community that does not exist (any longer): nothing at all.
    ghost = {"Authorization": "Bearer " + issue_bearer(stack.settings, "organizer", "comm_gone")}
    r = stack.client.get("/v1/weekly/communities", params={"week": WEEK}, headers=ghost)
    assert r.status_code == 200 and r.json()["items"] == [] and r.json()["total"] == 0

    for headers in (stack.token("hr", c["unit"]), stack.token("member", c["m"]["a1"])):
        r = stack.client.get("/v1/weekly/communities", params={"week": WEEK}, headers=headers)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert stack.client.get("/v1/weekly/communities").status_code == 401

    bad = stack.client.get(
        "/v1/weekly/communities", params={"week": "2026-53"}, headers=stack.admin
    )
    assert bad.status_code == 422 and "week" in bad.json()["error"]["message"]
