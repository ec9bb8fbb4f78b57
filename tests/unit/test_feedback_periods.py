"""Reporting periods (Asia/Shanghai) and feedback/campaign events through the sink's processors."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from services.events import Campaign, CampaignUpserted, FeedbackRecorded, GridAssignment
from services.periods import InvalidPeriod, day_of, parse_period
from services.processors import InvalidMessage, process


@pytest.mark.parametrize(
    ("text", "label", "start", "end"),
    [
        ("2026", "2026", date(2026, 1, 1), date(2027, 1, 1)),
        ("2026-Q1", "2026-Q1", date(2026, 1, 1), date(2026, 4, 1)),
        ("2026-Q3", "2026-Q3", date(2026, 7, 1), date(2026, 10, 1)),
        ("2026-Q4", "2026-Q4", date(2026, 10, 1), date(2027, 1, 1)),
        ("2026-07", "2026-07", date(2026, 7, 1), date(2026, 8, 1)),
        ("2026-12", "2026-12", date(2026, 12, 1), date(2027, 1, 1)),
    ],
)
def test_periods(text: str, label: str, start: date, end: date) -> None:
    p = parse_period(text)
    assert (p.label, p.start, p.end) == (label, start, end)


@pytest.mark.parametrize("bad", ["", "26", "2026-Q5", "2026-13", "2026-00", "2026-W01", "1999"])
def test_bad_periods_name_the_problem(bad: str) -> None:
    with pytest.raises(InvalidPeriod, match=r"period|year|month"):
        parse_period(bad)


def test_containment_quarter_in_year_not_in_month() -> None:
    q3 = parse_period("2026-Q3")
    assert parse_period("2026").contains(q3.start, q3.end)
    assert q3.contains(q3.start, q3.end)
    assert not parse_period("2026-07").contains(q3.start, q3.end)


def test_a_session_rating_falls_on_its_local_day() -> None:
    # 23:30 UTC on 30 June is 07:30 on 1 July in Shanghai: it is a Q3 rating, not Q2.
    d = day_of(datetime(2026, 6, 30, 23, 30, tzinfo=UTC))
    assert d.start == date(2026, 7, 1) and parse_period("2026-Q3").contains(d.start, d.end)
    assert not parse_period("2026-Q2").contains(d.start, d.end)


def _feedback(**kw: object) -> FeedbackRecorded:
    base: dict[str, object] = {
        "event_id": "e1",
        "occurred_at": datetime(2026, 7, 2, tzinfo=UTC),
        "feedback_id": "f1",
        "version": 1,
        "kind": "member_service",
        "member_id": "mem_1",
        "unit_id": "unit_1",
        "community_id": "comm_1",
        "period": "2026-Q3",
        "period_start": date(2026, 7, 1),
        "period_end": date(2026, 10, 1),
        "rating": 4,
        "author_role": "organizer",
        "author_id": "comm_1",
    }
    return FeedbackRecorded.model_validate({**base, **kw})


def test_feedback_row_and_refusals() -> None:
    route, row = process("feedback", _feedback().to_bytes())
    d = dict(zip(route.columns, row, strict=True))
    assert route.table == "feedback" and d["rating"] == 4 and d["period_start"] == date(2026, 7, 1)
    with pytest.raises(ValueError):
        _feedback(rating=6)
    with pytest.raises(ValueError):
        _feedback(grade="很好")
    bad = json.loads(_feedback().to_bytes())
    bad["kind"] = "resident_gossip"
    with pytest.raises(InvalidMessage):
        process("feedback", json.dumps(bad).encode())


def test_campaign_row_flattens_assignments() -> None:
    now = datetime(2026, 7, 1, tzinfo=UTC)
    rec = Campaign(
        id="camp_1",
        version=1,
        name="疫情防控",
        community_id="comm_1",
        starts_at=now,
        ends_at=datetime(2026, 8, 1, tzinfo=UTC),
        assignments=[
            GridAssignment(grid_id="g1", member_ids=["m1", "m2"], unit_ids=["u1"]),
            GridAssignment(grid_id="g2", member_ids=["m2"]),
        ],
        updated_at=now,
        updated_by="admin",
    )
    route, row = process(
        "registry.campaigns",
        CampaignUpserted(event_id="c1", occurred_at=now, record=rec).to_bytes(),
    )
    d = dict(zip(route.columns, row, strict=True))
    assert d["assigned_member_ids"] == ["m1", "m2"] and d["assigned_unit_ids"] == ["u1"]
    assert json.loads(d["assignments"])[0]["grid_id"] == "g1"
