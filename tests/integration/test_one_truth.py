"""One truth of hours (issue 12): the measured bugs, through the real pipeline (broker, worker,
sink, chDB), each read through its public endpoint.

- a late offline check-in re-pairs a member's scans: the replaced session is voided and no read
  (this week, the record of service and its verification, the year, the sessions list, the ISO
  weekly, the assessment) counts it;
- the year: hours and sessions by the calendar year of the local date, weeks by ISO week;
- a past week's "registered" does not move when a member leaves today;
- a session at another community's station counts in the member's community, and every figure
  of the organizer's week adds up.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services import topics
from services.counting import local_week_start, parts_agree
from services.events import CheckinScanned, derived_id
from services.timeutil import iso_week, local_midnight
from tests.support.stack import Stack, api_scan
from tests.support.weeks import YEAR_BOUNDARY_ENV

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

CST = timezone(timedelta(hours=8))

# Scans around the 2025/2026 year boundary are replayed into this worker today.
STACK_ENV = YEAR_BOUNDARY_ENV


@pytest.fixture(scope="module")
def county(stack: Stack) -> dict[str, Any]:
    unit = stack.create("/v1/units", {"name": "县审计局"})
    north = stack.create("/v1/communities", {"name": "北关社区"})
    south = stack.create("/v1/communities", {"name": "南关社区"})
    grid = stack.create("/v1/grids", {"community_id": north["id"], "name": "北一网格", "level": 4})
    st_north = stack.create(
        "/v1/stations",
        {"community_id": north["id"], "name": "北关党群服务站", "kind": "service_station"},
    )
    st_south = stack.create(
        "/v1/stations",
        {"community_id": south["id"], "name": "南关党员驿站", "kind": "member_post"},
    )
    members = {
        name: stack.create(
            "/v1/members",
            {
                "name": name,
                "unit_id": unit["id"],
                "community_id": north["id"],
                "grid_id": grid["id"],
            },
        )["id"]
        for name in ("周强", "吴敏", "郑洁", "孙浩", "钱坤")
    }
    visitor = stack.create(
        "/v1/members", {"name": "冯雪", "unit_id": unit["id"], "community_id": south["id"]}
    )["id"]
    return {
        "unit": unit["id"],
        "north": north["id"],
        "south": south["id"],
        "grid": grid["id"],
        "st_north": st_north["id"],
        "st_south": st_south["id"],
        "m": members,
        "visitor": visitor,
    }


def log_scan(stack: Stack, c: dict[str, Any], member_id: str, action: str, when: datetime) -> None:
    """A scan straight onto the log, as the API writes it (for times the API no longer takes)."""
    client_id = str(uuid.uuid4())
    ev = CheckinScanned(
        event_id=derived_id("checkin", member_id, client_id),
        occurred_at=when,
        member_id=member_id,
        station_id=c["st_north"],
        station_community_id=c["north"],
        unit_id=c["unit"],
        member_community_id=c["north"],
        member_grid_id=c["grid"],
        action=action,  # type: ignore[arg-type]
        client_event_id=client_id,
        received_at=datetime.now(UTC),
    )
    stack.client.app.state.ctx.publisher.send_sync(topics.CHECKINS, member_id, ev)  # type: ignore[attr-defined]


def get(stack: Stack, path: str, **params: Any) -> Any:
    r = stack.client.get(path, params=params, headers=stack.admin)
    assert r.status_code == 200, r.text
    return r.json()


def sessions(stack: Stack, member_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get(stack, f"/v1/members/{member_id}/sessions")["items"]
    return items


def assessment_row(stack: Stack, unit_id: str, member_id: str, year: int) -> dict[str, Any]:
    rows = get(stack, f"/v1/units/{unit_id}/assessments", year=year, limit=1000)["items"]
    (row,) = [r for r in rows if r["member_id"] == member_id]
    out: dict[str, Any] = row
    return out


def test_a_late_offline_checkin_is_one_session_in_every_read(
    stack: Stack, county: dict[str, Any]
) -> None:
    """Queued 08:00 check-in, a second check-in at 09:00, check-out at 11:00, the 08:00 scan
    arriving last: one session of 3.0 h everywhere, the 09:00-11:00 one voided."""
    m, station = county["m"]["周强"], county["st_north"]
    now = datetime.now(UTC)
    in_this_week = now - local_midnight(local_week_start(now)) > timedelta(hours=3, minutes=5)
    t2 = now - timedelta(minutes=2)
    t0, t1 = t2 - timedelta(hours=3), t2 - timedelta(hours=2)
    api_scan(stack, m, station, "in", t1)
    api_scan(stack, m, station, "out", t2)
    assert stack.wait_for(lambda: [s["hours"] for s in sessions(stack, m)] == [2.0])
    api_scan(stack, m, station, "in", t0)  # the queued scan, last
    assert stack.wait_for(lambda: [s["hours"] for s in sessions(stack, m)] == [3.0], timeout=30)
    week = iso_week(t0)
    # The weekly rows follow the sessions: wait for them, then read everything.
    assert stack.wait_for(
        lambda: get(stack, f"/v1/members/{m}/weekly", week=week)["hours"] == 3.0, timeout=30
    )
    year = t0.astimezone(CST).year
    h = get(stack, f"/v1/members/{m}/hours", year=year)
    assert (h["hours"], h["sessions"]) == (3.0, 1)
    weekly = get(stack, f"/v1/members/{m}/weekly", week=week)
    assert (weekly["hours"], weekly["sessions"]) == (3.0, 1)
    if in_this_week:
        w = get(stack, f"/v1/members/{m}/week")
        assert (w["hours"], w["sessions"], w["served"]) == (3.0, 1, True)
    day0, day2 = t0.astimezone(CST).date(), t2.astimezone(CST).date()
    r = stack.client.post(
        f"/v1/members/{m}/service-records",
        json={"from": str(day0), "to": str(day2)},
        headers=stack.admin,
    )
    assert r.status_code == 201, r.text
    record = r.json()
    assert (record["hours"], record["sessions"]) == (3.0, 1)
    v = stack.client.get(f"/v1/verify/{record['code']}", params={"hours": 3.0, "sessions": 1})
    assert v.status_code == 200 and v.json()["valid"] is True, v.text
    row = assessment_row(stack, county["unit"], m, year)
    assert (row["hours"], row["sessions"]) == (3.0, 1)


def test_hours_belong_to_the_calendar_year_and_weeks_to_the_iso_year(
    stack: Stack, county: dict[str, Any]
) -> None:
    """Tuesday 2025-12-30 lies in ISO week 2026-W01: its hours are 2025's, its week 2026's."""
    m = county["m"]["吴敏"]
    log_scan(stack, county, m, "in", datetime(2025, 12, 30, 10, 0, tzinfo=CST))
    log_scan(stack, county, m, "out", datetime(2025, 12, 30, 12, 0, tzinfo=CST))
    # The weekly rows and the sessions are two topics the sink writes in their own batches.
    assert stack.wait_for(
        lambda: (
            get(stack, f"/v1/members/{m}/weekly", week="2026-W01")["hours"] == 2.0
            and get(stack, f"/v1/members/{m}/hours", year=2025)["sessions"] == 1
        ),
        timeout=30,
    )
    h2025 = get(stack, f"/v1/members/{m}/hours", year=2025)
    h2026 = get(stack, f"/v1/members/{m}/hours", year=2026)
    assert (h2025["hours"], h2025["sessions"]) == (2.0, 1)
    assert (h2026["hours"], h2026["sessions"]) == (0.0, 0)
    assert "自然年" in h2025["year_rule"]
    b = get(stack, f"/v1/members/{m}/hours/breakdown", year=2025)
    assert [(x["period"], x["hours"]) for x in b["by_month"]] == [("2025-12", 2.0)]
    a2025 = assessment_row(stack, county["unit"], m, 2025)
    assert (a2025["hours"], a2025["sessions"], a2025["active_weeks"]) == (2.0, 1, 0)
    a2026 = assessment_row(stack, county["unit"], m, 2026)
    assert (a2026["hours"], a2026["sessions"], a2026["active_weeks"]) == (0.0, 0, 1)


def test_a_past_week_keeps_its_registered_members_when_one_leaves_today(
    stack: Stack, county: dict[str, Any]
) -> None:
    last_week = iso_week(datetime.now(UTC) - timedelta(days=7))
    path = f"/v1/communities/{county['north']}/weekly"
    before = get(stack, path, week=last_week)
    before_now = get(stack, path)
    assert before["members_registered"] == len(county["m"])
    leaver = county["m"]["钱坤"]
    r = stack.client.patch(f"/v1/members/{leaver}", json={"status": "left"}, headers=stack.admin)
    assert r.status_code == 200, r.text
    after = get(stack, path, week=last_week)
    assert after["members_registered"] == before["members_registered"]
    assert leaver in after["not_served"]
    # This week is read as of now: the leaver is no longer registered.
    now = get(stack, path)
    assert now["members_registered"] == before_now["members_registered"] - 1
    county_week = get(stack, "/v1/weekly/communities", week=last_week)["items"]
    (north,) = [c for c in county_week if c["community_id"] == county["north"]]
    assert north["members_registered"] == before["members_registered"]
    r = stack.client.patch(f"/v1/members/{leaver}", json={"status": "active"}, headers=stack.admin)
    assert r.status_code == 200, r.text


def test_service_at_another_communitys_station_counts_in_the_members_community(
    stack: Stack, county: dict[str, Any]
) -> None:
    m, visitor = county["m"]["郑洁"], county["visitor"]
    now = datetime.now(UTC)
    start = now - timedelta(hours=2)
    if start < local_midnight(local_week_start(now)):
        start = now - timedelta(minutes=40)
    # 郑洁 (north) serves at the south station, and at home; 冯雪 (south) visits north's.
    api_scan(stack, m, county["st_south"], "in", start)
    api_scan(stack, m, county["st_south"], "out", start + timedelta(minutes=30))
    api_scan(stack, m, county["st_north"], "in", start + timedelta(minutes=31))
    api_scan(stack, m, county["st_north"], "out", start + timedelta(minutes=37))
    api_scan(stack, visitor, county["st_north"], "in", start)
    api_scan(stack, visitor, county["st_north"], "out", start + timedelta(minutes=30))
    week = iso_week(start)
    assert stack.wait_for(
        lambda: (
            get(stack, f"/v1/members/{m}/weekly", week=week)["hours"] == 0.6
            and get(stack, f"/v1/members/{visitor}/weekly", week=week)["hours"] == 0.5
        ),
        timeout=30,
    )
    north_week = get(stack, f"/v1/communities/{county['north']}/weekly", week=week)
    b = get(stack, f"/v1/communities/{county['north']}/weekly/breakdown", week=week)
    stations = [s["hours"] for s in b["stations"]]
    grids = [g["hours"] for g in b["grids"]]
    assert b["hours"] == north_week["hours"]
    # Each figure is rounded from its own seconds: the parts agree with the week by the one
    # rule (counting.parts_agree), not by an exact sum of rounded parts.
    assert parts_agree([*stations, b["elsewhere"]["hours"]], north_week["hours"])
    assert parts_agree(grids, north_week["hours"])
    assert b["elsewhere"]["hours"] == 0.5 and b["elsewhere"]["members_served"] == 1
    assert b["visitors"]["hours"] == 0.5 and b["visitors"]["members_served"] == 1
    assert sum(g["members_served"] for g in b["grids"]) == north_week["members_served"]
    # The visit counts in the visitor's own community, not in the station's.
    south_week = get(stack, f"/v1/communities/{county['south']}/weekly", week=week)
    assert south_week["hours"] >= 0.5
    sb = get(stack, f"/v1/communities/{county['south']}/weekly/breakdown", week=week)
    assert sb["visitors"]["hours"] >= 0.5
    assert parts_agree(
        [*(s["hours"] for s in sb["stations"]), sb["elsewhere"]["hours"]], south_week["hours"]
    )
    # The county reads the same figures.
    items = {c["community_id"]: c for c in get(stack, "/v1/weekly/communities", week=week)["items"]}
    for cid, w in ((county["north"], north_week), (county["south"], south_week)):
        assert (items[cid]["hours"], items[cid]["members_served"]) == (
            w["hours"],
            w["members_served"],
        )
