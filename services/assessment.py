"""The annual assessment (年度考核): versioned scoring rules and the pure scoring of one member.

Every result names the rules version it was computed with, and old versions are never edited
or deleted, so a grade can always be explained and reproduced. Year semantics: hours, sessions
and wishes count by the local (Asia/Shanghai) calendar year of the session; weeks are ISO weeks
whose ISO year is the assessment year (the ISO convention: a week belongs to the year that holds
its Thursday).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.text import Line

Evaluation = Literal["优秀", "良好", "一般", "较差"]


class GradeThreshold(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    grade: Line = Field(min_length=1, max_length=10)
    min_score: float = Field(ge=0, le=100)


class AssessmentRules(BaseModel):
    """Weights add up to 100; each component is a ratio in [0, 1] times its weight."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ge=1)
    description: str = ""
    weight_participation: float = Field(ge=0, le=100)
    weight_hours: float = Field(ge=0, le=100)
    weight_wishes: float = Field(ge=0, le=100)
    weight_feedback: float = Field(ge=0, le=100)
    weight_evaluation: float = Field(ge=0, le=100)
    # Hours and wishes beyond the cap earn nothing more: service is weekly presence, not a race.
    hours_cap: float = Field(gt=0)
    wishes_cap: int = Field(gt=0)
    # Used when nobody rated the member, so a missing rating neither helps nor sinks them.
    feedback_default: float = Field(ge=1, le=5)
    evaluation_points: dict[str, float]
    evaluation_default: float = Field(ge=0, le=1)
    grades: list[GradeThreshold]
    not_assessed_grade: str = "未参评"

    @model_validator(mode="after")
    def _check(self) -> AssessmentRules:
        total = (
            self.weight_participation
            + self.weight_hours
            + self.weight_wishes
            + self.weight_feedback
            + self.weight_evaluation
        )
        if abs(total - 100) > 1e-9:
            raise ValueError(f"weights must add up to 100, not {total:g}")
        mins = [g.min_score for g in self.grades]
        if not self.grades or mins != sorted(mins, reverse=True):
            raise ValueError("grades must be listed from the highest min_score down")
        if any(not 0 <= v <= 1 for v in self.evaluation_points.values()):
            raise ValueError("evaluation points are ratios between 0 and 1")
        return self


RULES_V1 = AssessmentRules(
    version=1,
    description=(
        "参与率50分（实际服务周数/应服务周数）、服务时长20分（封顶50小时）、"
        "微心愿10分（封顶5个）、服务评价10分（平均分，未评按3分）、"
        "社区鉴定10分（优秀10、良好8、一般5、较差0，未鉴定按5分）。"
        "优秀≥85，良好≥70，合格≥60，其余不合格；当年应服务周数为0者不参评。"
    ),
    weight_participation=50,
    weight_hours=20,
    weight_wishes=10,
    weight_feedback=10,
    weight_evaluation=10,
    hours_cap=50,
    wishes_cap=5,
    feedback_default=3.0,
    evaluation_points={"优秀": 1.0, "良好": 0.8, "一般": 0.5, "较差": 0.0},
    evaluation_default=0.5,
    grades=[
        GradeThreshold(grade="优秀", min_score=85),
        GradeThreshold(grade="良好", min_score=70),
        GradeThreshold(grade="合格", min_score=60),
        GradeThreshold(grade="不合格", min_score=0),
    ],
)

BUILTIN_RULES: dict[int, AssessmentRules] = {1: RULES_V1}


class MemberFacts(BaseModel):
    """What the warehouse knows about one member in one year."""

    model_config = ConfigDict(frozen=True)

    hours: float = 0.0
    sessions: int = 0
    active_weeks: int = 0
    required_weeks: int = 0
    wishes_fulfilled: int = 0
    feedback_avg: float | None = None
    evaluation: str | None = None


class Score(BaseModel):
    model_config = ConfigDict(frozen=True)

    score: float | None
    grade: str
    components: dict[str, float]


def score(facts: MemberFacts, rules: AssessmentRules) -> Score:
    value, grade, components = score_parts(
        rules,
        hours=facts.hours,
        active_weeks=facts.active_weeks,
        required_weeks=facts.required_weeks,
        wishes_fulfilled=facts.wishes_fulfilled,
        feedback_avg=facts.feedback_avg,
        evaluation=facts.evaluation,
    )
    return Score(score=value, grade=grade, components=components)


def score_parts(
    rules: AssessmentRules,
    *,
    hours: float,
    active_weeks: int,
    required_weeks: int,
    wishes_fulfilled: int,
    feedback_avg: float | None,
    evaluation: str | None,
) -> tuple[float | None, str, dict[str, float]]:
    """`score` without the models: a whole unit's export scores ten thousand members, and
    building two validated models per member cost more than reading the unit's year."""
    if required_weeks <= 0:
        return None, rules.not_assessed_grade, {}
    feedback = feedback_avg if feedback_avg is not None else rules.feedback_default
    points = (
        rules.evaluation_points.get(evaluation, rules.evaluation_default)
        if evaluation
        else rules.evaluation_default
    )
    components = {
        "participation": round(
            rules.weight_participation * min(1.0, active_weeks / required_weeks), 2
        ),
        "hours": round(rules.weight_hours * min(1.0, hours / rules.hours_cap), 2),
        "wishes": round(rules.weight_wishes * min(1.0, wishes_fulfilled / rules.wishes_cap), 2),
        "feedback": round(rules.weight_feedback * (feedback - 1) / 4, 2),
        "evaluation": round(rules.weight_evaluation * points, 2),
    }
    total = round(sum(components.values()), 1)
    grade = next(g.grade for g in rules.grades if total >= g.min_score - 1e-9)
    return total, grade, components


def iso_year_weeks(year: int) -> int:
    """52 or 53: Dec 28 always lies in the last ISO week of its year."""
    return date(year, 12, 28).isocalendar()[1]


def required_weeks(year: int, reported_on: date | None, today: date) -> int:
    """ISO weeks of `year` from the week the member reported up to this week (or the year's end)."""
    first_monday = date.fromisocalendar(year, 1, 1)
    last_sunday = date.fromisocalendar(year, iso_year_weeks(year), 7)
    start = max(first_monday, reported_on or first_monday)
    end = min(last_sunday, today)
    if start > end:
        return 0
    start_monday = start - timedelta(days=start.weekday())
    end_monday = end - timedelta(days=end.weekday())
    return (end_monday - start_monday).days // 7 + 1
