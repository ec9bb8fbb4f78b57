"""The unit's annual assessment (年度考核) for HR, with the rules that produced it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AccessLog, Caller, Ctx, gate, readable_unit
from api.errors import ApiError
from api.openapi import errors
from services import topics
from services.assessment import AssessmentRules, GradeThreshold
from services.counting import YEAR_RULE, current_year
from services.events import AssessmentRulesPublished, derived_id, utcnow
from services.exports import CSV_MEDIA, XLSX_MEDIA, csv_chunks, xlsx_chunks
from services.processors import route_for_event
from services.reads.assessment import (
    EXPORT_HEADERS,
    EXPORT_WIDTHS,
    export_row,
    page,
    rules_json,
    rules_versions,
    unit_year,
)
from services.reads.registry import community_names as read_community_names
from services.text import FreeText, Line

router = APIRouter(prefix="/v1", tags=["assessments"])


class RulesList(BaseModel):
    current_version: int
    items: list[AssessmentRules]


# Grades and evaluation labels of a unit's rules: a handful in practice (优秀 良好 合格 ...).
LABELS_MAX = 20


class RulesIn(BaseModel):
    """A new version: everything but the number, which the server assigns."""

    model_config = ConfigDict(extra="forbid")

    description: FreeText = Field(min_length=1, max_length=1000)
    weight_participation: float
    weight_hours: float
    weight_wishes: float
    weight_feedback: float
    weight_evaluation: float
    hours_cap: float
    wishes_cap: int
    feedback_default: float
    evaluation_points: dict[Line, float] = Field(max_length=LABELS_MAX)
    evaluation_default: float
    grades: list[GradeThreshold] = Field(max_length=LABELS_MAX)
    not_assessed_grade: Line = Field(default="未参评", min_length=1, max_length=10)


class Summary(BaseModel):
    period: str
    grade: str | None
    comment: str
    community_id: str


class Item(BaseModel):
    member_id: str
    name: str
    community_id: str
    hours: float
    sessions: int
    active_weeks: int
    required_weeks: int = Field(
        description="ISO weeks from the member's report to now (or the year's end), less the"
        " approved excused weeks (请假) not served"
    )
    excused_weeks: int = Field(
        default=0, description="approved excused weeks (请假) not served, left out of required"
    )
    wishes_fulfilled: int
    feedback_avg: float | None
    evaluation: str | None
    score: float | None
    grade: str
    components: dict[str, float] = Field(description="points per rule component")
    summaries: list[Summary] = Field(description="the community's periodic summaries (双向反馈)")


class Assessment(BaseModel):
    unit_id: str
    year: int
    rules_version: int
    items: list[Item]
    total: int
    year_rule: str = Field(
        default=YEAR_RULE,
        description="which service belongs to the year: hours, sessions, wishes and feedback by "
        "the calendar year of their local date; active weeks by ISO week (the year of its "
        "Thursday)",
    )
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "unit_id": "unit_3f2a1b0c9d8e7f60",
                    "year": 2026,
                    "rules_version": 1,
                    "items": [
                        {
                            "member_id": "mem_1f2e3d4c5b6a7980",
                            "name": "张伟",
                            "community_id": "comm_0a1b2c3d4e5f6071",
                            "hours": 56.5,
                            "sessions": 48,
                            "active_weeks": 46,
                            "required_weeks": 48,
                            "excused_weeks": 2,
                            "wishes_fulfilled": 3,
                            "feedback_avg": 4.6,
                            "evaluation": "优秀",
                            "score": 94.9,
                            "grade": "优秀",
                            "components": {
                                "participation": 47.92,
                                "hours": 20.0,
                                "wishes": 6.0,
                                "feedback": 9.0,
                                "evaluation": 10.0,
                            },
                            "summaries": [],
                        }
                    ],
                    "total": 1,
                }
            ]
        }
    )


@router.get("/assessment-rules", response_model=RulesList)
def list_rules(caller: Caller, ctx: Ctx) -> RulesList:
    """Every version of the scoring rules; results name the version they used."""
    versions = rules_versions(ctx.warehouse)
    return RulesList(current_version=max(versions), items=list(versions.values()))


@router.post("/assessment-rules", response_model=AssessmentRules, status_code=201)
def publish_rules(body: RulesIn, caller: Caller, ctx: Ctx) -> AssessmentRules:
    """Admin: publishes the next version. Earlier versions stay, so old results stay explainable."""
    gate(caller, "county")
    version = max(rules_versions(ctx.warehouse)) + 1
    try:
        rules = AssessmentRules.model_validate({**body.model_dump(), "version": version})
    except ValueError as exc:
        raise ApiError(422, "invalid_rules", str(exc)) from exc
    event = AssessmentRulesPublished(
        event_id=derived_id("assessment-rules", str(version)),
        occurred_at=utcnow(),
        version=version,
        rules=rules_json(rules),
        created_by=f"{caller.role}:{caller.subject_id}",
    )
    ctx.publisher.send_sync(topics.ASSESSMENT_RULES, str(version), event)
    r = route_for_event(event)
    ctx.warehouse.insert(r.table, [r.to_row(event)], r.columns)
    return rules


# The export's columns and rows live with the read (`services.reads.assessment`).
HEADERS = EXPORT_HEADERS


@router.get(
    "/units/{unit_id}/assessments",
    response_model=Assessment,
    responses={
        **errors(503),
        200: {
            "content": {"text/csv": {}, XLSX_MEDIA: {}},
            "description": "JSON, or with format=csv|xlsx the same rows as a file with Chinese headers",
        },
    },
)
def unit_assessment(
    unit_id: str,
    caller: Caller,
    ctx: Ctx,
    audit: AccessLog,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    rules_version: Annotated[int | None, Query(ge=1)] = None,
    format: Annotated[Literal["json", "csv", "xlsx"], Query()] = "json",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="items to skip")] = 0,
) -> Any:
    """HR of the unit (or the admin): each member's year, score and grade under a rules version
    (the latest unless `rules_version` is given). Files hold every member, streamed. Hours and
    sessions are those of the calendar year (local date of the session's start), active weeks
    the ISO weeks of the year (a week belongs to the year of its Thursday): see `year_rule`.
    The members listed (a page, or a file's every member) are logged: one access-log entry."""
    readable_unit(ctx, caller, unit_id)
    y = year or current_year()
    versions = rules_versions(ctx.warehouse)
    v = rules_version or max(versions)
    if v not in versions:
        raise ApiError(404, "rules_version_not_found", f"no assessment rules version {v}")
    rules = versions[v]
    if format == "json":
        items, total = page(ctx.warehouse, unit_id, y, rules, limit, offset)
        audit.record_list([i.member_id for i in items], f"assessment {y}")
        return Assessment(
            unit_id=unit_id,
            year=y,
            rules_version=v,
            items=[Item.model_validate(i, from_attributes=True) for i in items],
            total=total,
        )
    community_names = dict(read_community_names(ctx.warehouse))
    ids, year_items = unit_year(ctx.warehouse, unit_id, y, rules)
    audit.record_list(ids, f"assessment {y} {format}")
    rows: Iterator[list[Any]] = (export_row(i, community_names, v) for i in year_items)
    filename = f"assessment-{y}-{unit_id}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if format == "csv":
        return StreamingResponse(csv_chunks(HEADERS, rows), media_type=CSV_MEDIA, headers=headers)
    return StreamingResponse(
        xlsx_chunks(f"{y}年度考核", HEADERS, rows, widths=EXPORT_WIDTHS, freeze_header=True),
        media_type=XLSX_MEDIA,
        headers=headers,
    )
