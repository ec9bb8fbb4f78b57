"""Sessions under every rule, organizer review and weekly activity, on the real broker, a faust
worker and chDB. Scans that must lie outside the API's 72 h window (a night duty across the
2025/2026 week and year boundary) are published to Kafka directly, as the API would have."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services import topics
from services.events import CheckinScanned, derived_id
from services.timeutil import iso_week
from tests.support import stack as support
from tests.support.stack import Stack, scan_token
from tests.support.weeks import YEAR_BOUNDARY_ENV

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

CST = timezone(timedelta(hours=8))


# A night duty across the 2025/2026 boundary is replayed into this worker today.
STACK_ENV = YEAR_BOUNDARY_ENV


@pytest.fixture(scope="module")
def demo(stack: Stack) -> dict[str, Any]:
    unit = stack.create("/v1/units", {"name": "县财政局"})
    community = stack.create("/v1/communities", {"name": "城关社区"})
    other_community = stack.create("/v1/communities", {"name": "东关社区"})
    grid = stack.create(
        "/v1/grids", {"community_id": community["id"], "name": "一网格", "level": 4}
    )
    a = stack.create(
        "/v1/stations",
        {"community_id": community["id"], "name": "城关党群服务站", "kind": "service_station"},
    )
    b = stack.create(
        "/v1/stations",
        {"community_id": community["id"], "name": "城关党员驿站", "kind": "member_post"},
    )
    members = {
        name: stack.create(
            "/v1/members",
            {
                "name": name,
                "unit_id": unit["id"],
                "community_id": community["id"],
                "grid_id": grid["id"],
            },
        )
        for name in ("张伟", "王芳", "李强", "赵敏", "刘洋", "陈静")
    }
    return {
        "unit": unit,
        "community": community,
        "other_community": other_community,
        "grid": grid,
        "a": a,
        "b": b,
        "m": members,
    }


def api_scan(stack: Stack, member_id: str, station_id: str, action: str, when: datetime) -> str:
    # A past scan with the screen's code of its moment, which proves the time (a poster token
    # would be a back-dated poster scan, flagged; tests/integration/test_presence.py).
    token = scan_token(stack.settings, station_id, when)
    return support.api_scan(stack, member_id, station_id, action, when, token)


def log_scan(
    stack: Stack, demo: dict[str, Any], member_id: str, station: str, action: str, when: datetime
) -> None:
    """A scan straight onto the log, as the API writes it (for times the API no longer takes)."""
    client_id = str(uuid.uuid4())
    ev = CheckinScanned(
        event_id=derived_id("checkin", member_id, client_id),
        occurred_at=when,
        member_id=member_id,
        station_id=demo[station]["id"],
        station_community_id=demo["community"]["id"],
        unit_id=demo["unit"]["id"],
        member_community_id=demo["community"]["id"],
        member_grid_id=demo["grid"]["id"],
        action=action,  # type: ignore[arg-type]
        client_event_id=client_id,
        received_at=datetime.now(UTC),
    )
    stack.client.app.state.ctx.publisher.send_sync(topics.CHECKINS, member_id, ev)  # type: ignore[attr-defined]


def sessions_of(stack: Stack, member_id: str, **params: str) -> dict[str, Any]:
    r = stack.client.get(f"/v1/members/{member_id}/sessions", params=params, headers=stack.admin)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def wait_sessions(stack: Stack, member_id: str, pred: Any, **params: str) -> list[dict[str, Any]]:
    got = stack.wait_for(
        lambda: (s := sessions_of(stack, member_id, **params)["items"]) and pred(s) and s,
        timeout=20,
    )
    assert got, f"sessions never matched; last: {sessions_of(stack, member_id, **params)}"
    items: list[dict[str, Any]] = got
    return items


def hours(stack: Stack, member_id: str, year: int) -> dict[str, Any]:
    r = stack.client.get(
        f"/v1/members/{member_id}/hours", params={"year": year}, headers=stack.admin
    )
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def recent_day(days_ago: int) -> datetime:
    d = (datetime.now(CST) - timedelta(days=days_ago)).date()
    return datetime(d.year, d.month, d.day, tzinfo=CST)


def test_every_pairing_rule_end_to_end(stack: Stack, demo: dict[str, Any]) -> None:
    m = demo["m"]["张伟"]["id"]
    day = recent_day(2)  # within the API's 72 h window, well before now
    api_scan(stack, m, demo["a"]["id"], "in", day + timedelta(hours=8))
    api_scan(stack, m, demo["a"]["id"], "in", day + timedelta(hours=8, minutes=1))  # repeat
    # A check-in elsewhere closes the first session after one hour.
    api_scan(stack, m, demo["b"]["id"], "in", day + timedelta(hours=9))
    api_scan(stack, m, demo["b"]["id"], "out", day + timedelta(hours=10, minutes=30))
    # Check-out without check-in: an anomaly with no hours.
    api_scan(stack, m, demo["a"]["id"], "out", day + timedelta(hours=11))
    # Over the cap: 9 h credited as 8.
    api_scan(stack, m, demo["a"]["id"], "in", day + timedelta(hours=12))
    api_scan(stack, m, demo["a"]["id"], "out", day + timedelta(hours=21))
    want = [
        (demo["a"]["id"], "closed", 1.0),
        (demo["b"]["id"], "closed", 1.5),
        (demo["a"]["id"], "closed", 0.0),
        (demo["a"]["id"], "capped", 8.0),
    ]

    def shown(s: list[dict[str, Any]]) -> list[tuple[str, str, float]]:
        return [
            (x["station_id"], x["status"], x["hours"]) for x in sorted(s, key=lambda x: x["start"])
        ]

    # Waits for the whole answer: before the last check-out lands (another batch under load),
    # the check-in two days ago is already closed by the watermark as forgotten, and four
    # sessions none of them open are shown on the way.
    items = wait_sessions(stack, m, lambda s: shown(s) == want)
    by_start = sorted(items, key=lambda x: x["start"])
    assert "closed_by_next_checkin" in by_start[0]["flags"]
    assert by_start[2]["flags"] == ["checkout_without_checkin"]
    assert "over_cap" in by_start[3]["flags"]
    h = hours(stack, m, (day + timedelta(hours=8)).year)
    assert h["hours"] == 10.5 and h["sessions"] == 3  # the anomaly is not a service
    # from/to are local days and filter by the session's start.
    assert sessions_of(stack, m, **{"from": str(day.date() + timedelta(days=1))})["total"] == 0
    assert sessions_of(stack, m, **{"from": str(day.date()), "to": str(day.date())})["total"] == 4
    r = stack.client.get(
        f"/v1/members/{m}/sessions",
        params={"from": "2026-02-02", "to": "2026-02-01"},
        headers=stack.admin,
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_range"
    other = stack.token("organizer", demo["other_community"]["id"])
    assert stack.client.get(f"/v1/members/{m}/sessions", headers=other).status_code == 404


def test_forgotten_checkout_is_closed_by_the_clock_and_queued_for_review(
    stack: Stack, demo: dict[str, Any]
) -> None:
    m = demo["m"]["王芳"]["id"]
    start = datetime.now(UTC) - timedelta(hours=70)
    api_scan(stack, m, demo["a"]["id"], "in", start)
    # No further scan ever comes: the worker's clock closes it at the end of that local day.
    items = wait_sessions(stack, m, lambda s: s[0]["status"] == "auto_closed")
    (s,) = items
    assert s["hours"] == 0.0 and "forgotten_checkout" in s["flags"]
    organizer = stack.token("organizer", demo["community"]["id"])
    q = stack.client.get(
        f"/v1/communities/{demo['community']['id']}/review-queue", headers=organizer
    )
    assert q.status_code == 200, q.text
    assert s["id"] in [i["id"] for i in q.json()["items"]]


def test_night_duty_across_midnight_and_the_week_and_year_boundary(
    stack: Stack, demo: dict[str, Any]
) -> None:
    m = demo["m"]["李强"]["id"]
    # Sunday 2025-12-28 23:00 to Monday 01:00, Asia/Shanghai: 2025-W52, year 2025.
    log_scan(stack, demo, m, "a", "in", datetime(2025, 12, 28, 23, 0, tzinfo=CST))
    log_scan(stack, demo, m, "a", "out", datetime(2025, 12, 29, 1, 0, tzinfo=CST))
    (s,) = wait_sessions(stack, m, lambda s: s[0]["status"] == "closed")
    assert s["hours"] == 2.0
    assert hours(stack, m, 2025)["hours"] == 2.0 and hours(stack, m, 2026)["hours"] == 0.0

    def week_52() -> Any:
        r = stack.client.get(
            f"/v1/members/{m}/weekly", params={"week": "2025-W52"}, headers=stack.admin
        )
        assert r.status_code == 200, r.text
        return r.json()

    # The weekly rows are another topic than the sessions, loaded in batches of their own.
    assert stack.wait_for(lambda: week_52()["hours"] == 2.0), week_52()
    assert week_52()["target_met"] is True
    r = stack.client.get(
        f"/v1/members/{m}/weekly", params={"week": "2026-W01"}, headers=stack.admin
    )
    assert r.json()["sessions"] == 0 and r.json()["target_met"] is False


def test_late_offline_checkin_lands_in_the_right_session(
    stack: Stack, demo: dict[str, Any]
) -> None:
    m = demo["m"]["赵敏"]["id"]
    now = datetime.now(UTC)
    api_scan(stack, m, demo["a"]["id"], "out", now - timedelta(hours=1))
    wait_sessions(stack, m, lambda s: "checkout_without_checkin" in s[0]["flags"])
    # The phone was offline at the check-in: its queued scan arrives after the check-out.
    api_scan(stack, m, demo["a"]["id"], "in", now - timedelta(hours=3))
    items = wait_sessions(
        stack, m, lambda s: len(s) == 1 and s[0]["status"] == "closed" and s[0]["hours"] == 2.0
    )
    assert items[0]["flags"] == []  # the anomaly was voided, not kept beside it
    assert hours(stack, m, (now - timedelta(hours=3)).astimezone(CST).year)["hours"] == 2.0


def test_review_changes_hours_everywhere_with_an_audit_trail(
    stack: Stack, demo: dict[str, Any]
) -> None:
    c = demo["community"]["id"]
    m = demo["m"]["刘洋"]["id"]
    organizer = stack.token("organizer", c)
    start = datetime.now(UTC) - timedelta(hours=3)
    api_scan(stack, m, demo["a"]["id"], "in", start)
    api_scan(stack, m, demo["a"]["id"], "out", start + timedelta(hours=2))
    (s,) = wait_sessions(stack, m, lambda s: s[0]["status"] == "closed")
    week = iso_week(start)
    year = start.astimezone(CST).year
    assert hours(stack, m, year)["hours"] == 2.0

    def member_week() -> dict[str, Any]:
        r = stack.client.get(f"/v1/members/{m}/weekly", params={"week": week}, headers=organizer)
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    assert stack.wait_for(lambda: member_week()["hours"] == 2.0)

    # Bad reviews are refused before anything is published.
    url = f"/v1/sessions/{s['id']}/review"
    for body, code in (
        ({"action": "adjust", "reason": "x"}, "invalid_request"),
        ({"action": "adjust", "credited_hours": 1}, "invalid_request"),
        ({"action": "reject"}, "invalid_request"),
        ({"action": "approve", "credited_hours": 1}, "invalid_request"),
        ({"action": "adjust", "credited_hours": 30, "reason": "x"}, "invalid_request"),
        ({"action": "delete"}, "invalid_request"),
    ):
        r = stack.client.post(url, json=body, headers=organizer)
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (body, r.text)
    other = stack.token("organizer", demo["other_community"]["id"])
    r = stack.client.post(url, json={"action": "approve"}, headers=other)
    assert r.status_code == 404
    r = stack.client.post(url, json={"action": "approve"}, headers=stack.token("member", m))
    assert r.status_code == 403
    r = stack.client.post("/v1/sessions/nope/review", json={"action": "approve"}, headers=organizer)
    assert r.status_code == 404 and r.json()["error"]["code"] == "session_not_found"

    r = stack.client.post(
        url,
        json={"action": "adjust", "credited_hours": 1.5, "reason": "中途离开半小时"},
        headers=organizer,
    )
    assert r.status_code == 202, r.text
    (s2,) = wait_sessions(stack, m, lambda s: s[0]["status"] == "adjusted")
    assert s2["hours"] == 1.5 and "adjusted" in s2["flags"]
    assert stack.wait_for(lambda: hours(stack, m, year)["hours"] == 1.5)
    assert stack.wait_for(lambda: member_week()["hours"] == 1.5)

    r = stack.client.post(url, json={"action": "reject", "reason": "重复登记"}, headers=stack.admin)
    assert r.status_code == 202, r.text
    wait_sessions(stack, m, lambda s: s[0]["status"] == "rejected" and s[0]["hours"] == 0)
    assert stack.wait_for(lambda: hours(stack, m, year) == {**hours(stack, m, year), "hours": 0.0})
    assert hours(stack, m, year)["sessions"] == 0
    assert stack.wait_for(lambda: member_week()["target_met"] is False)

    trail = stack.wait_for(
        lambda: (
            len(t := stack.client.get(f"/v1/sessions/{s['id']}/reviews", headers=organizer).json())
            == 2
            and t
        )
    )
    assert [(x["action"], x["reason"], x["reviewer_role"]) for x in trail] == [
        ("adjust", "中途离开半小时", "organizer"),
        ("reject", "重复登记", "admin"),
    ]
    assert trail[0]["credited_hours"] == 1.5 and trail[0]["reviewer_id"] == c


def test_community_grid_station_and_unit_weekly(stack: Stack, demo: dict[str, Any]) -> None:
    c = demo["community"]["id"]
    m = demo["m"]["陈静"]["id"]
    start = datetime.now(UTC) - timedelta(minutes=100)
    week = iso_week(start)
    api_scan(stack, m, demo["b"]["id"], "in", start)
    api_scan(stack, m, demo["b"]["id"], "out", start + timedelta(minutes=90))
    wait_sessions(stack, m, lambda s: s[0]["status"] == "closed")
    # The community's, grid's, station's and unit's weeks are compared below: every weekly row
    # of this module's members (earlier tests' too) must be written before the first is read.
    assert stack.settled(), "the pipeline did not settle"
    organizer = stack.token("organizer", c)

    def weekly(path: str, headers: dict[str, str] | None = None) -> Any:
        return stack.client.get(path, params={"week": week}, headers=headers or organizer)

    def community_served() -> Any:
        body = weekly(f"/v1/communities/{c}/weekly").json()
        return m not in body["not_served"] and body

    body = stack.wait_for(community_served)
    assert body, weekly(f"/v1/communities/{c}/weekly").text
    assert set(body) == {
        "week",
        "members_registered",
        "members_served",
        "rate",
        "hours",
        "not_served",
        "excused",
    }
    assert body["week"] == week and body["members_registered"] == 6 and body["excused"] == 0
    served = 6 - len(body["not_served"])
    assert body["members_served"] == served and body["rate"] == round(served / 6, 4)
    all_ids = {x["id"] for x in demo["m"].values()}
    assert set(body["not_served"]) <= all_ids and m not in body["not_served"]
    assert body["hours"] >= 1.5

    g = weekly(f"/v1/grids/{demo['grid']['id']}/weekly").json()
    assert g["members_registered"] == 6 and g["members_served"] == served
    st = weekly(f"/v1/stations/{demo['b']['id']}/weekly").json()
    assert m not in st["not_served"] and st["hours"] >= 1.5
    hr = stack.token("hr", demo["unit"]["id"])
    u = weekly(f"/v1/units/{demo['unit']['id']}/weekly", hr).json()
    assert u["members_registered"] == 6 and u["members_served"] == served

    # Access and input errors.
    other = stack.token("organizer", demo["other_community"]["id"])
    assert weekly(f"/v1/communities/{c}/weekly", other).status_code == 404
    assert weekly(f"/v1/units/{demo['unit']['id']}/weekly").status_code == 404
    r = stack.client.get(
        f"/v1/communities/{c}/weekly", params={"week": "2026-48"}, headers=organizer
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_week"
    r = stack.client.get(
        f"/v1/communities/{c}/weekly", params={"week": "2021-W53"}, headers=organizer
    )
    assert r.status_code == 422 and "week" in r.json()["error"]["message"]
