"""Two-way feedback and evaluation (双向反馈, 双向评议): write and read the aggregates by period.

Each evaluation has a natural id (who evaluates what, for which session or period): sending it
again, or correcting it, replaces the earlier version instead of counting twice. It is published
to the compacted `feedback` topic (the source of truth) and written through to ClickHouse so
the caller reads it at once; the sink's later copy of the same version is a no-op.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.deps import (
    Caller,
    Ctx,
    check,
    community_desk,
    facts_of_member,
    gate,
    known_to,
    may_read,
    readable_member,
    readable_unit,
)
from api.errors import ApiError
from api.openapi import errors
from services import topics
from services.access import Facts
from services.events import FeedbackRecorded, Grade, Member, derived_id, utcnow
from services.periods import InvalidPeriod, Period, current_year, day_of, parse_period
from services.processors import route_for_event
from services.reads import engagement
from services.reads import sessions as session_reads
from services.registry import NotFound
from services.text import FreeText
from services.tokens import Principal

router = APIRouter(prefix="/v1", tags=["feedback"])

PeriodText = Field(min_length=4, max_length=7, examples=["2026-Q3", "2026-07", "2026"])


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    client_event_id: uuid.UUID | None = None


class MemberServiceIn(_In):
    """Rate one session (`session_id`) or a period (`period`) of a member's service."""

    member_id: str = Field(min_length=1, max_length=64)
    session_id: str | None = Field(default=None, max_length=64)
    period: str | None = Field(
        default=None, min_length=4, max_length=7, examples=["2026-Q3", "2026-07", "2026"]
    )
    rating: int = Field(ge=1, le=5)
    comment: FreeText = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _one_target(self) -> MemberServiceIn:
        if (self.session_id is None) == (self.period is None):
            raise ValueError("give exactly one of session_id or period")
        return self


class ArrangementIn(_In):
    period: str = PeriodText
    rating: int = Field(ge=1, le=5)
    comment: FreeText = Field(default="", max_length=1000)


class SummaryItem(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    member_id: str = Field(min_length=1, max_length=64)
    grade: Grade
    comment: FreeText = Field(default="", max_length=1000)


class UnitSummaryIn(_In):
    """The community's periodic evaluation of its members, one item per member; each goes to
    the member's unit."""

    period: str = PeriodText
    items: list[SummaryItem] = Field(min_length=1, max_length=1000)


class FeedbackAccepted(BaseModel):
    feedback_ids: list[str]
    period: str


class Stat(BaseModel):
    count: int
    average: float | None


class Evaluation(BaseModel):
    period: str
    grade: str
    comment: str
    community_id: str


class MemberFeedback(BaseModel):
    member_id: str
    service: Stat
    wish_ratings: Stat
    evaluations: list[Evaluation]


class FeedbackOut(BaseModel):
    period: str
    member_service: Stat
    community_arrangement: Stat
    wish_ratings: Stat
    grades: dict[str, int]
    members: list[MemberFeedback]


class MemberFeedbackOut(FeedbackOut):
    member_id: str


class CommunityFeedbackOut(FeedbackOut):
    community_id: str


class UnitFeedbackOut(FeedbackOut):
    unit_id: str


def _period(text: str | None, field: str = "period") -> Period:
    if text is None:
        return current_year(utcnow())
    try:
        return parse_period(text)
    except InvalidPeriod as exc:
        raise ApiError(422, "invalid_period", f"{field}: {exc}") from exc


def _unknown_member(member_id: str, field: str) -> ApiError:
    return ApiError(422, "unknown_member", f"{field}: no member {member_id!r}")


def _member(ctx: Ctx, member_id: str, field: str = "member_id") -> Member:
    try:
        return ctx.registry.member(member_id)
    except NotFound:
        raise _unknown_member(member_id, field) from None


def _record(
    caller: Principal,
    body: _In,
    natural_key: tuple[str, ...],
    **fields: Any,
) -> FeedbackRecorded:
    now = utcnow()
    feedback_id = derived_id("feedback", *natural_key)
    # Microseconds of the write: a correction (later) replaces, the same request re-sent
    # replaces with the same content.
    version = int(now.timestamp() * 1_000_000)
    basis = str(body.client_event_id) if body.client_event_id else str(version)
    return FeedbackRecorded(
        event_id=derived_id("feedback.recorded", feedback_id, basis),
        occurred_at=now,
        feedback_id=feedback_id,
        version=version,
        author_role=caller.role,
        author_id=caller.subject_id,
        client_event_id=str(body.client_event_id) if body.client_event_id else None,
        **fields,
    )


def _store(ctx: Ctx, records: list[FeedbackRecorded]) -> None:
    # Every record was validated before this point: nothing is half-written on bad input. If
    # Kafka fails part-way (503), the client re-sends the request: natural ids make the
    # records already published the same records, so the retry completes the set.
    for r in records:
        ctx.publisher.send_sync(topics.FEEDBACK, r.feedback_id, r)
    if records:
        route = route_for_event(records[0])
        ctx.warehouse.insert(route.table, [route.to_row(r) for r in records], route.columns)


@router.post("/feedback/member-service", response_model=FeedbackAccepted, status_code=201)
def rate_member_service(body: MemberServiceIn, caller: Caller, ctx: Ctx) -> FeedbackAccepted:
    """The community rates a member's service (1–5 and a comment), on a session or a period."""
    gate(caller, "member_service")
    m = _member(ctx, body.member_id)
    if body.session_id is not None:
        found = session_reads.session(ctx.warehouse, body.session_id)
        ours = found if found is not None and found["member_id"] == m.id else None
        # The community where the member served, or the one they reported to, may rate it.
        facts = (
            Facts(
                community_id=ours["station_community_id"],
                also_community_id=ours["member_community_id"],
            )
            if ours is not None
            else None
        )
        # A member the caller may not read, named without a session of theirs the caller may
        # rate, answers as a member that does not exist.
        if facts is None or not may_read(caller, "session_feedback", facts):
            known_to(
                caller,
                "member_service",
                facts_of_member(m),
                _unknown_member(body.member_id, "member_id"),
            )
        if ours is None or facts is None:
            raise ApiError(
                422, "unknown_session", f"session_id: no session {body.session_id!r} of {m.id}"
            )
        s = ours
        check(
            caller,
            "session_feedback",
            "change",
            facts,
            "session",
            body.session_id,
            hideable=False,
            message="only the organizer of the session's community",
        )
        if not session_reads.is_evidence(s["status"]):
            raise ApiError(422, "session_not_rateable", f"session_id: the session is {s['status']}")
        span = day_of(s["start"])
        key: tuple[str, ...] = ("member_service", "session", body.session_id)
        unit_id, community_id = s["unit_id"], s["member_community_id"]
    else:
        known_to(caller, "member_service", facts_of_member(m), _unknown_member(m.id, "member_id"))
        check(
            caller,
            "member_service",
            "change",
            facts_of_member(m),
            "member",
            m.id,
            hideable=False,
            message="only the organizer of the member's community",
        )
        span = _period(body.period)
        key = ("member_service", "period", m.id, span.label)
        unit_id, community_id = m.unit_id, m.community_id
    rec = _record(
        caller,
        body,
        (*key, caller.role, caller.subject_id),
        kind="member_service",
        member_id=m.id,
        unit_id=unit_id,
        community_id=community_id,
        session_id=body.session_id,
        period=span.label,
        period_start=span.start,
        period_end=span.end,
        rating=body.rating,
        comment=body.comment,
    )
    _store(ctx, [rec])
    return FeedbackAccepted(feedback_ids=[rec.feedback_id], period=span.label)


@router.post(
    "/feedback/community-arrangement",
    response_model=FeedbackAccepted,
    status_code=201,
    responses=errors(404),
)
def rate_community_arrangement(body: ArrangementIn, caller: Caller, ctx: Ctx) -> FeedbackAccepted:
    """A member rates their community's arrangement of their service over a period."""
    gate(caller, "community_rating")
    try:
        m = ctx.registry.member(caller.subject_id)
    except NotFound:
        raise ApiError(404, "member_not_found", "the caller's member record is missing") from None
    span = _period(body.period)
    rec = _record(
        caller,
        body,
        ("community_arrangement", m.id, m.community_id, span.label),
        kind="community_arrangement",
        member_id=m.id,
        unit_id=m.unit_id,
        community_id=m.community_id,
        period=span.label,
        period_start=span.start,
        period_end=span.end,
        rating=body.rating,
        comment=body.comment,
    )
    _store(ctx, [rec])
    return FeedbackAccepted(feedback_ids=[rec.feedback_id], period=span.label)


@router.post("/feedback/unit-summaries", response_model=FeedbackAccepted, status_code=201)
def send_unit_summaries(body: UnitSummaryIn, caller: Caller, ctx: Ctx) -> FeedbackAccepted:
    """双向反馈: the community's evaluation of each member (优秀/良好/一般/较差) for a period,
    reported to the member's unit. All items are checked before any is recorded."""
    gate(caller, "member_service")
    span = _period(body.period)
    seen: set[str] = set()
    records = []
    for i, item in enumerate(body.items):
        if item.member_id in seen:
            raise ApiError(422, "duplicate_member", f"items.{i}.member_id: listed twice")
        seen.add(item.member_id)
        m = _member(ctx, item.member_id, f"items.{i}.member_id")
        known_to(
            caller,
            "member_service",
            facts_of_member(m),
            _unknown_member(item.member_id, f"items.{i}.member_id"),
        )
        check(
            caller,
            "member_service",
            "change",
            facts_of_member(m),
            "member",
            m.id,
            hideable=False,
            message=f"items.{i}.member_id: {m.id} is not of the caller's community",
        )
        records.append(
            _record(
                caller,
                body,
                ("unit_summary", m.id, m.community_id, span.label),
                kind="unit_summary",
                member_id=m.id,
                unit_id=m.unit_id,
                community_id=m.community_id,
                period=span.label,
                period_start=span.start,
                period_end=span.end,
                grade=item.grade,
                comment=item.comment,
            )
        )
    _store(ctx, records)
    return FeedbackAccepted(feedback_ids=[r.feedback_id for r in records], period=span.label)


PeriodQuery = Annotated[
    str | None, Query(description="2026, 2026-Q3 or 2026-07 (Asia/Shanghai); default this year")
]


def _stat(d: dict[str, Any]) -> Stat:
    return Stat(count=d["count"], average=d["average"])


def _out(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "period": d["period"],
        "member_service": _stat(d["member_service"]),
        "community_arrangement": _stat(d["community_arrangement"]),
        "wish_ratings": _stat(d["wish_ratings"]),
        "grades": d["grades"],
        "members": [
            MemberFeedback(
                member_id=m["member_id"],
                service=_stat(m["service"]),
                wish_ratings=_stat(m["wish_ratings"]),
                evaluations=[Evaluation(**e) for e in m["evaluations"]],
            )
            for m in d["members"]
        ],
    }


@router.get("/members/{member_id}/feedback", response_model=MemberFeedbackOut)
def member_feedback(
    member_id: str, caller: Caller, ctx: Ctx, period: PeriodQuery = None
) -> MemberFeedbackOut:
    """Ratings and evaluations of one member: the member, their community's organizer, their
    unit's HR and the admin may read them."""
    m = readable_member(ctx, caller, member_id)
    d = engagement.feedback_summary(ctx.warehouse, "member", m.id, _period(period))
    return MemberFeedbackOut(member_id=m.id, **_out(d))


@router.get("/communities/{community_id}/feedback", response_model=CommunityFeedbackOut)
def community_feedback(
    community_id: str, caller: Caller, ctx: Ctx, period: PeriodQuery = None
) -> CommunityFeedbackOut:
    """The community's members' ratings and evaluations, and its members' ratings of it."""
    community_desk(ctx, caller, community_id)
    d = engagement.feedback_summary(ctx.warehouse, "community", community_id, _period(period))
    return CommunityFeedbackOut(community_id=community_id, **_out(d))


@router.get("/units/{unit_id}/feedback", response_model=UnitFeedbackOut)
def unit_feedback(
    unit_id: str, caller: Caller, ctx: Ctx, period: PeriodQuery = None
) -> UnitFeedbackOut:
    """What the communities reported about the unit's members (双向反馈), per member."""
    readable_unit(ctx, caller, unit_id)
    d = engagement.feedback_summary(ctx.warehouse, "unit", unit_id, _period(period))
    return UnitFeedbackOut(unit_id=unit_id, **_out(d))
