"""The annual assessment of a small unit, computed by hand, equals the API's in JSON, CSV and XLSX;
a rules change makes a new version and leaves the old results reproducible; rankings."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from openpyxl import load_workbook

from tests.support.stack import Stack, log_scan

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

CST = timezone(timedelta(hours=8))
YEAR = datetime.now(CST).year
# Let the worker pair scans from earlier in the year (the API itself takes scans up to 72 h old;
# these are published to the log as the API would have published them at the time).
STACK_ENV = {"SESSION_REDERIVE_HORIZON_H": str(400 * 24), "SESSION_REVIEW_WINDOW_DAYS": "400"}


def monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def at(week: int, day: int, hour: int, minute: int = 0) -> datetime:
    d = date.fromisocalendar(YEAR, week, day)
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=CST)


@pytest.fixture(scope="module")
def county(stack: Stack) -> dict[str, Any]:
    unit = stack.create("/v1/units", {"name": "县发改局"})
    other_unit = stack.create("/v1/units", {"name": "县商务局"})
    community = stack.create("/v1/communities", {"name": "北关社区"})
    station = stack.create(
        "/v1/stations",
        {"community_id": community["id"], "name": "北关党群服务站", "kind": "service_station"},
    )

    def member(name: str, reported: str) -> dict[str, Any]:
        return stack.create(
            "/v1/members",
            {
                "name": name,
                "unit_id": unit["id"],
                "community_id": community["id"],
                "reported_on": reported,
            },
        )

    return {
        "unit": unit,
        "other_unit": other_unit,
        "community": community,
        "station": station,
        "a": member("孙丽", f"{YEAR}-01-05"),
        "b": member("马超", f"{YEAR}-01-01"),
        "d": member("高远", f"{YEAR}-01-01"),
    }


@pytest.fixture(scope="module")
def served(stack: Stack, county: dict[str, Any]) -> dict[str, Any]:
    c = county
    # 孙丽: W02 2 h; W03 1 h and 1.5 h. 马超: nothing. 高远: W10 2 h, then moves to another unit.
    for who, a, b in (
        ("a", at(2, 2, 9), at(2, 2, 11)),
        ("a", at(3, 3, 9), at(3, 3, 10)),
        ("a", at(3, 6, 14), at(3, 6, 15, 30)),
        ("d", at(10, 1, 8), at(10, 1, 10)),
    ):
        log_scan(stack, c[who], c["station"], "in", a)
        log_scan(stack, c[who], c["station"], "out", b)
    organizer = stack.token("organizer", c["community"]["id"])
    for period, rating in (("%d-Q1", 4), ("%d-03", 5)):
        r = stack.client.post(
            "/v1/feedback/member-service",
            json={"member_id": c["a"]["id"], "period": period % YEAR, "rating": rating},
            headers=organizer,
        )
        assert r.status_code == 201, r.text
    r = stack.client.post(
        "/v1/feedback/unit-summaries",
        json={
            "period": str(YEAR),
            "items": [{"member_id": c["a"]["id"], "grade": "优秀", "comment": "表现突出"}],
        },
        headers=organizer,
    )
    assert r.status_code == 201, r.text

    def member_weeks() -> bool:
        # Every week's final totals (6.5 h), not only its rows: the agent re-emits a week's row
        # (a higher version) as each scan of it is paired, so three rows may still be partial.
        rows = stack.client.app.state.ctx.warehouse.query(  # type: ignore[attr-defined]
            "SELECT count(), sum(credited_seconds) FROM member_weeks FINAL WHERE unit_id = %(u)s",
            {"u": c["unit"]["id"]},
        )
        return bool(rows[0][0] == 3 and rows[0][1] == 6.5 * 3600)

    assert stack.wait_for(member_weeks, timeout=60), "weekly records did not arrive"
    # The assessment reads the sessions too: another topic than the weeks, in its own batches.
    assert stack.settled(), "the pipeline did not settle"
    r = stack.client.patch(
        f"/v1/members/{c['d']['id']}", json={"unit_id": c["other_unit"]["id"]}, headers=stack.admin
    )
    assert r.status_code == 200, r.text
    return c


def expected(today: date) -> dict[str, dict[str, Any]]:
    """By hand, under rules version 1."""
    last = date.fromisocalendar(YEAR, date(YEAR, 12, 28).isocalendar()[1], 7)
    end = min(today, last)
    req_a = (monday(end) - monday(date(YEAR, 1, 5))).days // 7 + 1
    req_all = (monday(end) - date.fromisocalendar(YEAR, 1, 1)).days // 7 + 1
    a_parts = [50 * 2 / req_a, 20 * 4.5 / 50, 0.0, 10 * (4.5 - 1) / 4, 10 * 1.0]
    b_parts = [0.0, 0.0, 0.0, 10 * (3 - 1) / 4, 10 * 0.5]
    d_parts = [50 * 1 / req_all, 20 * 2 / 50, 0.0, 10 * (3 - 1) / 4, 10 * 0.5]
    return {
        "孙丽": {
            "hours": 4.5,
            "sessions": 3,
            "active_weeks": 2,
            "required_weeks": req_a,
            "wishes_fulfilled": 0,
            "feedback_avg": 4.5,
            "evaluation": "优秀",
            "score": round(sum(round(x, 2) for x in a_parts), 1),
        },
        "马超": {
            "hours": 0.0,
            "sessions": 0,
            "active_weeks": 0,
            "required_weeks": req_all,
            "wishes_fulfilled": 0,
            "feedback_avg": None,
            "evaluation": None,
            "score": round(sum(round(x, 2) for x in b_parts), 1),
        },
        "高远": {
            "hours": 2.0,
            "sessions": 1,
            "active_weeks": 1,
            "required_weeks": req_all,
            "wishes_fulfilled": 0,
            "feedback_avg": None,
            "evaluation": None,
            "score": round(sum(round(x, 2) for x in d_parts), 1),
        },
    }


def test_assessment_equals_the_hand_computed_one_in_json_csv_and_xlsx(
    stack: Stack, served: dict[str, Any]
) -> None:
    c = served
    hr = stack.token("hr", c["unit"]["id"])
    want = expected(datetime.now(CST).date())
    r = stack.client.get(
        f"/v1/units/{c['unit']['id']}/assessments", params={"year": YEAR}, headers=hr
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["unit_id"] == c["unit"]["id"] and body["year"] == YEAR
    assert body["rules_version"] == 1 and body["total"] == 3
    got = {i["name"]: i for i in body["items"]}
    assert set(got) == set(want)
    for name, w in want.items():
        for k, v in w.items():
            assert got[name][k] == v, (name, k, got[name][k], v)
        assert got[name]["grade"] == "不合格"  # a member who served two weeks of the year
    assert got["孙丽"]["summaries"][0]["grade"] == "优秀"

    # The member who moved keeps their hours with the unit they served for...
    other = stack.client.get(
        f"/v1/units/{c['other_unit']['id']}/assessments", params={"year": YEAR}, headers=stack.admin
    ).json()
    assert [(i["name"], i["hours"]) for i in other["items"]] == [("高远", 0.0)]

    csv_r = stack.client.get(
        f"/v1/units/{c['unit']['id']}/assessments",
        params={"year": YEAR, "format": "csv"},
        headers=hr,
    )
    assert csv_r.status_code == 200 and csv_r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_r.content.decode("utf-8-sig"))))
    assert {r["姓名"] for r in rows} == set(want)
    for row in rows:
        w = want[row["姓名"]]
        assert float(row["服务时长（小时）"]) == w["hours"]
        assert int(row["实际服务周数"]) == w["active_weeks"]
        assert int(row["应服务周数"]) == w["required_weeks"]
        assert float(row["得分"]) == w["score"] and row["规则版本"] == "1"

    x = stack.client.get(
        f"/v1/units/{c['unit']['id']}/assessments",
        params={"year": YEAR, "format": "xlsx"},
        headers=hr,
    )
    assert x.status_code == 200
    ws = load_workbook(io.BytesIO(x.content)).active
    assert ws is not None
    table = [list(r) for r in ws.iter_rows(values_only=True)]
    header, data = table[0], table[1:]
    assert header[0] == "姓名" and len(data) == 3
    by_name = {r[0]: dict(zip(header, r, strict=True)) for r in data}
    for name, w in want.items():
        assert by_name[name]["服务时长（小时）"] == w["hours"]
        assert by_name[name]["服务次数"] == w["sessions"]
        assert by_name[name]["得分"] == w["score"]


def test_a_rules_change_is_a_new_version_and_old_results_stay_explainable(
    stack: Stack, served: dict[str, Any]
) -> None:
    c = served
    rules = stack.client.get("/v1/assessment-rules", headers=stack.admin).json()
    assert rules["current_version"] == 1
    v1 = rules["items"][0]
    new = {k: v for k, v in v1.items() if k != "version"}
    new.update({"description": "时长权重提高", "weight_participation": 40, "weight_hours": 30})
    r = stack.client.post("/v1/assessment-rules", json=new, headers=stack.admin)
    assert r.status_code == 201 and r.json()["version"] == 2
    bad = {**new, "weight_hours": 31}
    r = stack.client.post("/v1/assessment-rules", json=bad, headers=stack.admin)
    assert r.status_code == 422 and "100" in r.json()["error"]["message"]
    hr = stack.token("hr", c["unit"]["id"])
    assert stack.client.post("/v1/assessment-rules", json=new, headers=hr).status_code == 403

    url = f"/v1/units/{c['unit']['id']}/assessments"
    latest = stack.client.get(url, params={"year": YEAR}, headers=hr).json()
    old = stack.client.get(url, params={"year": YEAR, "rules_version": 1}, headers=hr).json()
    assert latest["rules_version"] == 2 and old["rules_version"] == 1
    want = expected(datetime.now(CST).date())
    assert {i["name"]: i["score"] for i in old["items"]} == {n: w["score"] for n, w in want.items()}
    a_latest = next(i for i in latest["items"] if i["name"] == "孙丽")
    req = want["孙丽"]["required_weeks"]
    parts = [40 * 2 / req, 30 * 4.5 / 50, 0.0, 10 * 3.5 / 4, 10.0]
    assert a_latest["score"] == round(sum(round(p, 2) for p in parts), 1)
    listed = stack.client.get("/v1/assessment-rules", headers=hr).json()
    assert [v["version"] for v in listed["items"]] == [1, 2]
    r = stack.client.get(url, params={"year": YEAR, "rules_version": 9}, headers=hr)
    assert r.status_code == 404


def test_only_the_units_hr_and_the_admin_read_its_assessment(
    stack: Stack, served: dict[str, Any]
) -> None:
    c = served
    url = f"/v1/units/{c['unit']['id']}/assessments"
    for headers in (
        stack.token("hr", c["other_unit"]["id"]),
        stack.token("organizer", c["community"]["id"]),
        stack.token("member", c["a"]["id"]),
    ):
        r = stack.client.get(url, params={"year": YEAR}, headers=headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "unit_not_found"
    r = stack.client.get("/v1/units/unit_guessed/assessments", headers=stack.admin)
    assert r.status_code == 404


def test_rankings_show_the_rule_and_withhold_the_flag_at_low_participation(
    stack: Stack, served: dict[str, Any]
) -> None:
    c = served
    member = stack.token("member", c["a"]["id"])
    r = stack.client.get(
        "/v1/rankings", params={"kind": "units", "period": f"{YEAR}-Q1"}, headers=member
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert "流动红旗" in body["rule"]["text"] and body["weeks"] == 13
    first = body["items"][0]
    assert first["id"] == c["unit"]["id"] and first["rank"] == 1
    # First, but 3 of 13 weeks served: below the flag's participation floor (issue 19: the flag
    # went to a community at 0.2%), so nobody holds it this quarter.
    assert body["rule"]["red_flag_min_rate"] == 0.5
    assert [i["red_flag"] for i in body["items"]] == [False] * len(body["items"])
    ranks = [i["rank"] for i in body["items"]]
    assert ranks == sorted(ranks) and all(
        (b == a) == (x["score"] == y["score"])
        for a, b, x, y in zip(ranks, ranks[1:], body["items"], body["items"][1:], strict=False)
    )
    # 3 registered at the quarter's end (高远 moved to another unit only since: registered is
    # the registry as it stood then, services.counting), 2 members served in 3 weeks of 13.
    assert first["members_registered"] == 3
    assert first["participation_rate"] == round((1 + 1 + 1) / 3 / 13, 4)
    assert first["hours_per_member"] == round(6.5 / 3, 2)
    r = stack.client.get("/v1/rankings", params={"period": f"{YEAR}"}, headers=member)
    assert r.status_code == 422
