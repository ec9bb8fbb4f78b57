from __future__ import annotations

from services.periods import parse_period
from services.rankings import period_weeks, score_entry


def test_weeks_of_a_month_are_those_whose_thursday_lies_in_it() -> None:
    # 2026-01-01 is a Thursday: W01 belongs to January; 2026-01-29 (Thu) is W05.
    assert period_weeks(parse_period("2026-01")) == [f"2026-W{w:02d}" for w in range(1, 6)]
    # Thursday 2026-12-31 is in W53, which therefore belongs to December.
    assert period_weeks(parse_period("2026-12"))[-1] == "2026-W53"
    q = period_weeks(parse_period("2026-Q1"))
    assert len(q) == 13 and q[0] == "2026-W01" and q[-1] == "2026-W13"


def test_every_week_of_a_year_belongs_to_exactly_one_month() -> None:
    months = [w for m in range(1, 13) for w in period_weeks(parse_period(f"2026-{m:02d}"))]
    assert months == period_weeks(parse_period("2026")) and len(set(months)) == 53


def test_score_by_hand() -> None:
    # 4 weeks, 10 members; served 10, 5, 5, 0 -> rate 0.5; 20 h -> 2 h/member of 4 -> 0.5;
    # feedback 4.0 -> 0.75. Score 60*0.5 + 25*0.5 + 15*0.75 = 53.75
    rate, per_member, score = score_entry([10, 5, 5, 0], 10, 20.0, 4.0, 4)
    assert (rate, per_member, score) == (0.5, 2.0, 53.75)


def test_missing_feedback_is_neutral_and_empty_entities_score_zero() -> None:
    # rate 1 -> 60; 0.5 h of the 1 h target -> 12.5; neutral 3 -> 7.5
    assert score_entry([2], 2, 1.0, None, 1)[2] == 80.0
    assert score_entry([], 0, 0.0, None, 4) == (0.0, 0.0, 0.0)
