"""The quarterly card (季度纪实卡): one member's quarter for their unit, by the assessment's rules;
its four quarters add up to the year's assessment (hours, services, weeks served, wishes), the
quarter's ratings and the community's evaluation of the quarter are on it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from services.counting import parts_agree
from services.timeutil import LOCAL_TZ
from tests.support.stack import Stack, log_scan

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

# Last year, all of it in the past; the worker re-pairs scans that far back.
STACK_ENV = {"SESSION_REDERIVE_HORIZON_H": str(800 * 24), "SESSION_REVIEW_WINDOW_DAYS": "800"}
YEAR = datetime.now(LOCAL_TZ).year - 1


def at(week: int, day: int, hour: int, minute: int = 0) -> datetime:
    d = date.fromisocalendar(YEAR, week, day)
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=LOCAL_TZ)


# (start, end): W02 2 h (Q1); Monday of W14 1 h (Q1 by its date, Q2 by its week's Thursday);
# W29 1.5 h and 10 min (below the weekly minimum: hours, not a service) (Q3); W43 2 h (Q4).
SESSIONS = [
    (at(2, 2, 9), at(2, 2, 11)),
    (at(14, 1, 9), at(14, 1, 10)),
    (at(29, 3, 14), at(29, 3, 15, 30)),
    (at(29, 4, 10), at(29, 4, 10, 10)),
    (at(43, 2, 19), at(43, 2, 21)),
]


@pytest.fixture(scope="module")
def county(stack: Stack) -> dict[str, Any]:
    unit = stack.create("/v1/units", {"name": "县林业局"})
    other = stack.create("/v1/units", {"name": "县水务局"})
    community = stack.create("/v1/communities", {"name": "巩昌社区"})
    station = stack.create(
        "/v1/stations",
        {"community_id": community["id"], "name": "巩昌党群服务站", "kind": "service_station"},
    )
    member = stack.create(
        "/v1/members",
        {
            "name": "吴刚",
            "unit_id": unit["id"],
            "community_id": community["id"],
            "reported_on": f"{YEAR - 1}-06-01",
            "party_branch": "林业局机关党支部",
        },
    )
    c = {"unit": unit, "other": other, "community": community, "station": station, "member": member}
    for a, b in SESSIONS:
        log_scan(stack, member, station, "in", a)
        log_scan(stack, member, station, "out", b)
    organizer = stack.token("organizer", community["id"])
    for period, rating in ((f"{YEAR}-Q1", 4), (f"{YEAR}-07", 5)):
        r = stack.client.post(
            "/v1/feedback/member-service",
            json={"member_id": member["id"], "period": period, "rating": rating},
            headers=organizer,
        )
        assert r.status_code == 201, r.text
    r = stack.client.post(
        "/v1/feedback/unit-summaries",
        json={
            "period": f"{YEAR}-Q3",
            "items": [{"member_id": member["id"], "grade": "优秀", "comment": "表现突出"}],
        },
        headers=organizer,
    )
    assert r.status_code == 201, r.text
    wh = stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]

    def settled() -> bool:
        rows = wh.query(
            "SELECT count(), sum(credited_seconds) FROM unit_member_weeks FINAL "
            "WHERE unit_id = %(u)s",
            {"u": unit["id"]},
        )
        return bool(rows[0][0] == 4 and rows[0][1] == 24000)

    assert stack.wait_for(settled, timeout=90), "weekly records did not arrive"
    # The cards read the sessions too: another topic than the weeks, loaded in its own batches.
    assert stack.settled(), "the pipeline did not settle"
    c["hr"] = stack.token("hr", unit["id"])
    return c


def card(stack: Stack, c: dict[str, Any], q: int, headers: Any = None) -> Any:
    r = stack.client.get(
        f"/v1/members/{c['member']['id']}/quarterly-card?quarter={YEAR}-Q{q}",
        headers=headers or c["hr"],
    )
    assert r.status_code == 200, r.text
    return r.json()


FIGURES = ("hours", "sessions", "weeks_served", "wishes_fulfilled", "feedback_avg", "evaluation")


def test_each_quarter_by_hand(stack: Stack, county: dict[str, Any]) -> None:
    got = {q: tuple(card(stack, county, q)[f] for f in FIGURES) for q in (1, 2, 3, 4)}
    assert got == {
        1: (3.0, 2, 1, 0, 4.0, None),
        2: (0.0, 0, 1, 0, None, None),
        3: (1.67, 1, 1, 0, 5.0, "优秀"),
        4: (2.0, 1, 1, 0, None, None),
    }
    q3 = card(stack, county, 3)
    assert q3["evaluation_comment"] == "表现突出" and q3["party_branch"] == "林业局机关党支部"
    assert q3["unit_name"] == "县林业局" and q3["community_name"] == "巩昌社区"
    assert [(a["hours"], a["counted"]) for a in q3["activities"]] == [(1.5, True), (0.17, False)]
    assert q3["period_from"] == f"{YEAR}-07-01" and q3["period_to"] == f"{YEAR}-09-30"


def test_the_four_quarters_are_the_years_assessment(stack: Stack, county: dict[str, Any]) -> None:
    """The card reads the assessment's read layer by its rules: what the unit's year shows is
    what its quarters' cards show together."""
    cards = [card(stack, county, q) for q in (1, 2, 3, 4)]
    r = stack.client.get(
        f"/v1/units/{county['unit']['id']}/assessments?year={YEAR}", headers=county["hr"]
    )
    assert r.status_code == 200, r.text
    item = next(i for i in r.json()["items"] if i["member_id"] == county["member"]["id"])
    assert item["hours"] == 6.67
    assert parts_agree([c["hours"] for c in cards], item["hours"])
    assert sum(c["sessions"] for c in cards) == item["sessions"] == 4
    assert sum(c["weeks_served"] for c in cards) == item["active_weeks"] == 4
    assert sum(c["wishes_fulfilled"] for c in cards) == item["wishes_fulfilled"]
    ratings = [(c["feedback_avg"], c["feedback_count"]) for c in cards if c["feedback_count"]]
    assert sum(a * n for a, n in ratings) / sum(n for _, n in ratings) == item["feedback_avg"]
    # The year's verdict is the latest summary of the year: the third quarter's here.
    assert item["evaluation"] == cards[2]["evaluation"]


def test_who_may_print_it_and_bad_quarters(stack: Stack, county: dict[str, Any]) -> None:
    mid = county["member"]["id"]
    for who in (
        stack.admin,
        stack.token("organizer", county["community"]["id"]),
        stack.token("member", mid),
    ):
        assert card(stack, county, 1, who)["hours"] == 3.0
    other = stack.client.get(
        f"/v1/members/{mid}/quarterly-card?quarter={YEAR}-Q1",
        headers=stack.token("hr", county["other"]["id"]),
    )
    assert other.status_code == 404
    for bad in ("2026-Q5", f"{YEAR}", f"{YEAR}-07", "x"):
        r = stack.client.get(
            f"/v1/members/{mid}/quarterly-card?quarter={bad}", headers=county["hr"]
        )
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_quarter", (
            bad,
            r.text,
        )
