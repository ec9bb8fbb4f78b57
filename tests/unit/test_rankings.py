from __future__ import annotations

from datetime import datetime, timedelta, timezone

from services.periods import parse_period
from services.rankings import (
    RED_FLAG_MIN_RATE,
    Entry,
    default_period,
    period_weeks,
    ranked,
    score_entry,
)


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


def _entry(name: str, score: float, rate: float = 0.8) -> Entry:
    return Entry(f"id-{name}", name, 10, rate, 1.0, None, score)


def test_ties_share_a_place_and_the_next_place_skips() -> None:
    # Issue 19: 17 communities tied at 7.5 were ranked 2-18.
    entries = [_entry("第2社区", 7.5), _entry("第10社区", 7.5), _entry("第1社区", 90.0)]
    entries += [_entry("第3社区", 7.5), _entry("第4社区", 5.0)]
    placed = ranked(entries)
    assert [(p.rank, p.entry.name) for p in placed] == [
        (1, "第1社区"),
        (2, "第2社区"),
        (2, "第3社区"),
        (2, "第10社区"),
        (5, "第4社区"),
    ]
    assert [p.red_flag for p in placed] == [True, False, False, False, False]


def test_the_flag_needs_a_real_participation_and_is_shared_by_a_tie_for_first() -> None:
    # Issue 19: the flag went to a community at 0.2% participation.
    low = ranked([_entry("甲", 20.0, rate=0.002), _entry("乙", 10.0, rate=0.002)])
    assert [p.red_flag for p in low] == [False, False]
    assert RED_FLAG_MIN_RATE == 0.5
    edge = ranked([_entry("甲", 50.0, rate=RED_FLAG_MIN_RATE)])
    assert edge[0].red_flag
    tie = ranked([_entry("甲", 80.0), _entry("乙", 80.0), _entry("丙", 0.0, rate=0.0)])
    assert [(p.rank, p.red_flag) for p in tie] == [(1, True), (1, True), (3, False)]


def test_the_default_period_is_the_latest_month_whose_weeks_have_all_ended() -> None:
    tz = timezone(timedelta(hours=8))
    # Monday 30 November 2026: November's weeks (Thursdays 5-26 Nov) ended on Sunday the 29th.
    assert default_period(datetime(2026, 11, 30, 9, 0, tzinfo=tz)).label == "2026-11"
    # Sunday 29 November: the week of Thursday the 26th is still under way, so October.
    assert default_period(datetime(2026, 11, 29, 23, 0, tzinfo=tz)).label == "2026-10"
    # 3 December 2026 is a Thursday: its week (W49) is December's, November is complete.
    assert default_period(datetime(2026, 12, 3, 12, 0, tzinfo=tz)).label == "2026-11"
    # Across New Year: on 4 January 2027 December 2026 (through W53, ending 3 Jan) is over.
    assert default_period(datetime(2027, 1, 4, 8, 0, tzinfo=tz)).label == "2026-12"
    assert default_period(datetime(2027, 1, 3, 8, 0, tzinfo=tz)).label == "2026-11"
