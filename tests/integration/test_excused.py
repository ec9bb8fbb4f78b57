"""Excused weeks (请假) through the real pipeline: a member asks, the organizer decides (each an
event on Kafka kept in ClickHouse), and the weekly figures, the not-served list, the member's
week, the assessment and the Thursday nudge all leave an approved week out; served wins."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from services.assessment import required_weeks
from services.publisher import Publisher
from services.reminder_job import Decider
from services.tokens import sign_station
from tests.support.stack import Stack
from tests.support.weeks import LAST_WEEK_ENV, LOCAL, last_week_at

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

# Scans are dated in last week (complete, wholly in the past, and at most 7 days over).
STACK_ENV = LAST_WEEK_ENV


def week_of(d: date) -> str:
    y, w, _ = d.isocalendar()
    return f"{y}-W{w:02d}"


LAST_WEEK = week_of(last_week_at(2, 12).astimezone(LOCAL).date())
THIS_WEEK = week_of(datetime.now(LOCAL).date())


def _wh(stack: Stack) -> Any:
    return stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def world(stack: Stack) -> dict[str, str]:
    unit = stack.create("/v1/units", {"name": "县林业局"})["id"]
    c = stack.create("/v1/communities", {"name": "南关社区"})["id"]
    other = stack.create("/v1/communities", {"name": "西关社区"})["id"]
    station = stack.create(
        "/v1/stations", {"community_id": c, "name": "南关服务站", "kind": "service_station"}
    )["id"]
    ids = {"unit": unit, "community": c, "other": other, "station": station}
    # away: excused, not served; busy: excused but served anyway; idle: neither; done: served.
    for key, name in (
        ("away", "周出差"),
        ("busy", "吴照常"),
        ("idle", "郑未到"),
        ("done", "王已到"),
    ):
        ids[key] = stack.create("/v1/members", {"name": name, "unit_id": unit, "community_id": c})[
            "id"
        ]
    for key in ("busy", "done"):
        token = stack.token("member", ids[key])
        for action, at in (("in", last_week_at(1, 9)), ("out", last_week_at(1, 11))):
            r = stack.client.post(
                "/v1/checkins",
                json={
                    "station_token": sign_station(stack.settings, station),
                    "action": action,
                    "client_event_id": str(uuid.uuid4()),
                    "scanned_at": at.isoformat(),
                },
                headers=token,
            )
            assert r.status_code == 202, r.text
    wh = _wh(stack)
    assert stack.wait_for(
        lambda: (
            wh.query(
                "SELECT count() FROM member_weeks FINAL WHERE week = %(w)s AND sessions > 0",
                {"w": LAST_WEEK},
            )[0][0]
            == 2
        ),
        timeout=60,
    ), "the served members' week never reached ClickHouse"
    # The roster and the assessment read the sessions too, another topic than the weeks.
    assert stack.settled(), "the pipeline did not settle"
    return ids


def _ask(stack: Stack, member: str, weeks: list[str], **extra: Any) -> Any:
    return stack.client.post(
        f"/v1/members/{member}/excusals",
        json={"weeks": weeks, "reason": "business_trip", **extra},
        headers=stack.token("member", member),
    )


def _status(stack: Stack, request_id: str, member: str) -> str | None:
    r = stack.client.get(f"/v1/members/{member}/excusals", headers=stack.admin)
    assert r.status_code == 200, r.text
    for i in r.json()["items"]:
        if i["request_id"] == request_id:
            return str(i["status"])
    return None


def _decide(
    stack: Stack, request_id: str, org: dict[str, str], decision: str, reason: str = ""
) -> Any:
    return stack.client.post(
        f"/v1/excusals/{request_id}/decision",
        json={"decision": decision, "reason": reason},
        headers=org,
    )


@pytest.fixture(scope="module")
def approved(stack: Stack, world: dict[str, str]) -> dict[str, str]:
    """away and busy excused for last week, approved by their organizer."""
    org = stack.token("organizer", world["community"])
    out = {}
    for key in ("away", "busy"):
        r = _ask(stack, world[key], [LAST_WEEK], note="省外培训")
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "pending" and r.json()["weeks"] == [LAST_WEEK]
        rid = r.json()["request_id"]
        assert stack.wait_for(lambda rid=rid, key=key: _status(stack, rid, world[key]) == "pending")
        r = _decide(stack, rid, org, "approve")
        assert r.status_code == 202, r.text
        assert stack.wait_for(
            lambda rid=rid, key=key: _status(stack, rid, world[key]) == "approved"
        )
        out[key] = rid
    return out


def test_a_request_is_pending_for_the_organizer_and_visible_to_hr(
    stack: Stack, world: dict[str, str]
) -> None:
    r = _ask(stack, world["idle"], [THIS_WEEK], reason="sick")
    assert r.status_code == 202, r.text
    rid = r.json()["request_id"]
    org = stack.token("organizer", world["community"])

    def pending() -> list[str]:
        got = stack.client.get(
            f"/v1/communities/{world['community']}/excusals",
            params={"status": "pending"},
            headers=org,
        )
        assert got.status_code == 200, got.text
        return [i["request_id"] for i in got.json()["items"]]

    assert rid in stack.wait_for(lambda: rid in pending() and pending())
    hr = stack.token("hr", world["unit"])
    mine = stack.client.get(f"/v1/members/{world['idle']}/excusals", headers=hr).json()["items"]
    assert [(i["reason"], i["reason_label"], i["status"]) for i in mine] == [
        ("sick", "病假", "pending")
    ]
    unit = stack.client.get(f"/v1/units/{world['unit']}/excusals", headers=hr)
    assert rid in [i["request_id"] for i in unit.json()["items"]]
    # The same week again while pending: refused; another community's organizer sees nothing.
    again = _ask(stack, world["idle"], [THIS_WEEK])
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_requested"
    other = stack.token("organizer", world["other"])
    assert _decide(stack, rid, other, "approve").status_code == 404
    # Declined with a reason: audited (who, when, why), and the week may be asked for again.
    assert _decide(stack, rid, org, "decline").status_code == 422
    assert _decide(stack, rid, org, "decline", "该周有固定服务日安排").status_code == 202
    assert stack.wait_for(lambda: _status(stack, rid, world["idle"]) == "declined")
    item = stack.client.get(f"/v1/members/{world['idle']}/excusals", headers=org).json()["items"][0]
    assert item["decided_by"] == f"organizer:{world['community']}"
    assert item["decision_reason"] == "该周有固定服务日安排" and item["decided_at"]
    late = _decide(stack, rid, org, "approve")
    assert late.status_code == 409 and late.json()["error"]["code"] == "already_decided"


def test_bad_input_is_refused(stack: Stack, world: dict[str, str]) -> None:
    m = world["idle"]
    old = week_of(datetime.now(LOCAL).date() - timedelta(weeks=3))
    far = week_of(datetime.now(LOCAL).date() + timedelta(weeks=12))
    for weeks, code in (
        ([old], "week_too_late"),
        ([far], "week_too_far"),
        (["2026-W99"], "invalid_week"),
        (["soon"], "invalid_week"),
    ):
        r = _ask(stack, m, weeks)
        assert r.status_code == 422 and r.json()["error"]["code"] == code, r.text
    for body in ({"weeks": [], "reason": "sick"}, {"weeks": [THIS_WEEK], "reason": "holiday"}):
        r = stack.client.post(
            f"/v1/members/{m}/excusals", json=body, headers=stack.token("member", m)
        )
        assert r.status_code == 422, r.text
    # Nobody asks for another member; HR never asks; a decision needs the organizer.
    other = stack.token("member", world["done"])
    r = stack.client.post(
        f"/v1/members/{m}/excusals", json={"weeks": [THIS_WEEK], "reason": "other"}, headers=other
    )
    assert r.status_code == 404
    hr = stack.token("hr", world["unit"])
    r = stack.client.post(
        f"/v1/members/{m}/excusals", json={"weeks": [THIS_WEEK], "reason": "other"}, headers=hr
    )
    assert r.status_code == 403
    assert _decide(stack, "exc_nope", stack.token("member", m), "approve").status_code == 403
    r = stack.client.post(
        "/v1/excusals/exc_nope/decision", json={"decision": "maybe"}, headers=stack.admin
    )
    assert r.status_code == 422


def test_the_week_leaves_the_excused_out_and_served_wins(
    stack: Stack, world: dict[str, str], approved: dict[str, str]
) -> None:
    org = stack.token("organizer", world["community"])
    r = stack.client.get(
        f"/v1/communities/{world['community']}/weekly", params={"week": LAST_WEEK}, headers=org
    )
    assert r.status_code == 200, r.text
    w = r.json()
    # away is excused; busy served anyway (served wins); idle is the one not served.
    assert (w["members_registered"], w["members_served"], w["excused"]) == (4, 2, 1)
    assert w["not_served"] == [world["idle"]]
    assert w["rate"] == round(2 / 3, 4)
    county = stack.client.get(
        "/v1/weekly/communities", params={"week": LAST_WEEK}, headers=stack.admin
    ).json()["items"]
    mine = next(i for i in county if i["community_id"] == world["community"])
    assert (mine["members_served"], mine["excused"], mine["rate"]) == (2, 1, round(2 / 3, 4))
    unit = stack.client.get(
        f"/v1/units/{world['unit']}/weekly", params={"week": LAST_WEEK}, headers=stack.admin
    ).json()
    assert (unit["excused"], unit["not_served"]) == (1, [world["idle"]])
    for key, excused, met in (("away", True, False), ("busy", False, True), ("idle", False, False)):
        mw = stack.client.get(
            f"/v1/members/{world[key]}/weekly", params={"week": LAST_WEEK}, headers=org
        ).json()
        assert (mw["excused"], mw["target_met"]) == (excused, met), key
    roster = stack.client.get(
        f"/v1/communities/{world['community']}/roster", params={"week": LAST_WEEK}, headers=org
    ).json()["items"]
    by_id = {i["member_id"]: i for i in roster}
    assert by_id[world["away"]]["excused_this_week"] is True
    assert by_id[world["away"]]["served_this_week"] is False
    assert by_id[world["busy"]]["served_this_week"] is True
    assert not by_id[world["busy"]]["excused_this_week"]


def test_the_assessment_leaves_excused_weeks_out_of_required(
    stack: Stack, world: dict[str, str], approved: dict[str, str]
) -> None:
    year = int(LAST_WEEK[:4])
    r = stack.client.get(
        f"/v1/units/{world['unit']}/assessments",
        params={"year": year},
        headers=stack.token("hr", world["unit"]),
    )
    assert r.status_code == 200, r.text
    items = {i["member_id"]: i for i in r.json()["items"]}
    today = datetime.now(LOCAL).date()
    base = required_weeks(year, None, min(today, date(year, 12, 31)))
    # Reported with no date: required from the year's first week.
    assert items[world["idle"]]["required_weeks"] == base
    assert (items[world["away"]]["required_weeks"], items[world["away"]]["excused_weeks"]) == (
        base - 1,
        1,
    )
    assert (items[world["busy"]]["required_weeks"], items[world["busy"]]["excused_weeks"]) == (
        base,
        0,
    )
    assert items[world["busy"]]["active_weeks"] == 1
    # The office's file says the same: 应服务周数 reduced, 请假周数 beside it.
    f = stack.client.get(
        f"/v1/units/{world['unit']}/assessments",
        params={"year": year, "format": "csv"},
        headers=stack.token("hr", world["unit"]),
    )
    rows = {
        row["成员编号"]: row for row in csv.DictReader(io.StringIO(f.content.decode("utf-8-sig")))
    }
    away = rows[world["away"]]
    assert (int(away["应服务周数"]), int(away["请假周数"])) == (base - 1, 1)
    assert int(rows[world["busy"]]["请假周数"]) == 0


def test_the_thursday_nudge_skips_the_excused(
    stack: Stack, world: dict[str, str], approved: dict[str, str]
) -> None:
    publisher = Publisher(stack.settings)
    try:
        n = Decider(
            stack.settings, _wh(stack), publisher, clock=lambda: last_week_at(3, 19)
        ).run_once()
    finally:
        publisher.close()
    # Of four members, two served and away is excused: only idle is nudged.
    assert n == 1

    def inbox(key: str) -> list[Any]:
        r = stack.client.get(
            f"/v1/members/{world[key]}/inbox", headers=stack.token("member", world[key])
        )
        return list(r.json()["items"])

    assert stack.wait_for(lambda: inbox("idle"))
    assert inbox("away") == []


def test_racing_decisions_the_first_in_time_stands(stack: Stack, world: dict[str, str]) -> None:
    ahead = week_of(datetime.now(LOCAL).date() + timedelta(weeks=2))
    r = _ask(stack, world["done"], [ahead], reason="training")
    rid = r.json()["request_id"]
    assert stack.wait_for(lambda: _status(stack, rid, world["done"]) == "pending")
    org = stack.token("organizer", world["community"])
    # Two tabs decide before either decision has reached the warehouse: both are recorded (the
    # audit keeps both), the first stands for every reader.
    first = _decide(stack, rid, org, "approve")
    second = _decide(stack, rid, org, "decline", "重复操作")
    assert first.status_code == 202
    assert second.status_code in (202, 409)
    assert stack.wait_for(lambda: _status(stack, rid, world["done"]) == "approved")
    rows = _wh(stack).query(
        "SELECT count() FROM excusals FINAL WHERE request_id = %(r)s", {"r": rid}
    )
    assert rows[0][0] == (3 if second.status_code == 202 else 2)
