"""Scoring by hand against the rules, so a grade can be explained."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from services.assessment import RULES_V1, AssessmentRules, MemberFacts, required_weeks, score


def test_a_full_year_of_weekly_service_is_excellent() -> None:
    facts = MemberFacts(
        hours=60,
        sessions=52,
        active_weeks=52,
        required_weeks=52,
        wishes_fulfilled=5,
        feedback_avg=5.0,
        evaluation="优秀",
    )
    s = score(facts, RULES_V1)
    assert s.score == 100.0 and s.grade == "优秀"


def test_components_computed_by_hand() -> None:
    # participation 50*26/52=25; hours 20*10/50=4; wishes 10*1/5=2; feedback 10*(4-1)/4=7.5;
    # evaluation 10*0.8=8 -> 46.5, 不合格
    facts = MemberFacts(
        hours=10,
        sessions=26,
        active_weeks=26,
        required_weeks=52,
        wishes_fulfilled=1,
        feedback_avg=4.0,
        evaluation="良好",
    )
    s = score(facts, RULES_V1)
    assert s.components == {
        "participation": 25.0,
        "hours": 4.0,
        "wishes": 2.0,
        "feedback": 7.5,
        "evaluation": 8.0,
    }
    assert s.score == 46.5 and s.grade == "不合格"


def test_missing_ratings_use_the_neutral_defaults() -> None:
    facts = MemberFacts(hours=50, active_weeks=40, required_weeks=40, wishes_fulfilled=5)
    s = score(facts, RULES_V1)
    # 50 + 20 + 10 + 10*(3-1)/4=5 + 10*0.5=5 -> 90
    assert s.score == 90.0 and s.grade == "优秀"


def test_member_with_no_required_weeks_is_not_assessed() -> None:
    s = score(MemberFacts(required_weeks=0), RULES_V1)
    assert s.score is None and s.grade == "未参评"


def test_grade_boundaries_are_inclusive() -> None:
    # participation only: 50*x/52 ... use required 10: active 7 -> 35, hours 50 -> 20, wishes 5 -> 10,
    # feedback 3 -> 5, evaluation default 5 -> 75 -> 良好; active 6 -> 70 exactly -> 良好
    base = dict(hours=50, required_weeks=10, wishes_fulfilled=5)
    assert score(MemberFacts(active_weeks=6, **base), RULES_V1).score == 70.0
    assert score(MemberFacts(active_weeks=6, **base), RULES_V1).grade == "良好"
    assert score(MemberFacts(active_weeks=5, **base), RULES_V1).grade == "合格"


def test_rules_must_add_up_and_order_grades() -> None:
    data = RULES_V1.model_dump()
    with pytest.raises(ValidationError, match="add up to 100"):
        AssessmentRules.model_validate({**data, "weight_hours": 25})
    with pytest.raises(ValidationError, match="highest"):
        AssessmentRules.model_validate({**data, "grades": list(reversed(data["grades"]))})


@pytest.mark.parametrize(
    ("year", "reported", "today", "expected"),
    [
        (2026, date(2020, 1, 1), date(2027, 3, 1), 53),  # 2026 has 53 ISO weeks
        (2025, date(2020, 1, 1), date(2026, 3, 1), 52),
        (2026, date(2026, 1, 5), date(2026, 1, 11), 1),  # reported in W02, today in W02
        (2026, date(2026, 1, 11), date(2026, 1, 12), 2),  # Sunday of W02 to Monday of W03
        (2026, date(2026, 6, 1), date(2026, 5, 1), 0),  # reports later than today
        (2026, None, date(2026, 1, 14), 3),
        (2025, date(2026, 2, 1), date(2026, 3, 1), 0),  # reported after that year
    ],
)
def test_required_weeks(year: int, reported: date | None, today: date, expected: int) -> None:
    assert required_weeks(year, reported, today) == expected
