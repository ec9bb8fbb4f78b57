"""Sessions (过程纪实): a member's list, the organizer's review queue and review decisions.

A review is an event (`session-reviews`, keyed by the member) that the session agent applies:
the session gets a new revision with status adjusted/rejected (or an "approved" flag), and the
member's weekly totals follow, so every figure that counts hours changes together. The decision
itself is kept in `session_reviews` (who, when, why).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import (
    AccessLog,
    Caller,
    Ctx,
    check,
    community_desk,
    gate,
    hidden,
    readable_member,
)
from api.errors import ApiError
from api.openapi import errors
from services import topics
from services.access import Facts
from services.anomalies import Anomaly
from services.counting import hours, seconds_of_hours
from services.events import SessionReviewed, SessionStatus, derived_id, utcnow
from services.reads import anomalies as anomaly_reads
from services.reads import member_hours as reads
from services.reads import sessions as session_reads
from services.registry import NotFound
from services.sessions import REVIEW_FLAGS, REVIEWED_FLAGS
from services.text import FreeText
from services.tokens import Principal

router = APIRouter(prefix="/v1", tags=["sessions"])


class SessionOut(BaseModel):
    id: str
    station_id: str
    start: datetime
    end: datetime | None
    hours: float
    status: SessionStatus
    flags: list[str]
    station_name: str | None = Field(
        default=None, description="the station's name (also another community's station)"
    )


class SessionPage(BaseModel):
    items: list[SessionOut]
    total: int


class QueuedSessionOut(SessionOut):
    member_id: str
    member_name: str | None
    anomalies: list[Anomaly] = Field(
        default_factory=list,
        description="anomaly flags computed when read (services.anomalies): `overlap` with "
        "another session of the member, `too_fast` from the previous station, `shared_device` "
        "(the phone scanned for another member too); they change no credit",
    )


class ReviewQueue(BaseModel):
    items: list[QueuedSessionOut]
    total: int


class ReviewIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {"action": "adjust", "credited_hours": 1.5, "reason": "忘记签退，核实服务1.5小时"}
            ]
        },
    )

    action: Literal["approve", "adjust", "reject"]
    credited_hours: float | None = Field(default=None, ge=0, le=24)
    reason: FreeText = Field(default="", max_length=500)


class ReviewAccepted(BaseModel):
    review_id: str
    session_id: str
    action: str


class ReviewOut(BaseModel):
    review_id: str
    action: str
    credited_hours: float | None
    reason: str
    reviewer_role: str
    reviewer_id: str
    reviewed_at: datetime


def _utc(v: datetime | None) -> datetime | None:
    # chDB hands DateTime64('UTC') back naive.
    if v is None:
        return None
    return v if v.tzinfo else v.replace(tzinfo=UTC)


@router.get("/members/{member_id}/sessions", response_model=SessionPage)
def member_sessions(
    member_id: str,
    caller: Caller,
    ctx: Ctx,
    from_: Annotated[date | None, Query(alias="from", description="first local day")] = None,
    to: Annotated[date | None, Query(description="last local day, inclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="items to skip")] = 0,
) -> SessionPage:
    """A member's sessions that began between `from` and `to` (Asia/Shanghai days), newest first."""
    m = readable_member(ctx, caller, member_id)
    if from_ and to and from_ > to:
        raise ApiError(422, "invalid_range", "from: must not be after to")
    items, total = reads.sessions_page(ctx.warehouse, m.id, from_, to, limit, offset)
    names: dict[str, str | None] = {}
    for i in items:
        # Named here so the member's history needs no lookup per station (a station of another
        # community is not in the member's own community's list).
        if i["station_id"] not in names:
            try:
                names[i["station_id"]] = ctx.registry.station(i["station_id"]).name
            except NotFound:
                names[i["station_id"]] = None
        i["station_name"] = names[i["station_id"]]
    return SessionPage(items=[SessionOut(**i) for i in items], total=total)


@router.get(
    "/communities/{community_id}/review-queue", response_model=ReviewQueue, responses=errors(503)
)
def review_queue(
    community_id: str,
    caller: Caller,
    ctx: Ctx,
    audit: AccessLog,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="items to skip")] = 0,
) -> ReviewQueue:
    """Sessions at this community's stations that need a decision: forgotten check-outs,
    capped sessions and check-outs without a check-in, and sessions with an anomaly flag
    (`anomalies`), not yet reviewed, still reviewable. The members the page names are logged
    (one access-log entry)."""
    community_desk(ctx, caller, community_id)
    now = utcnow()
    since = now - timedelta(days=ctx.settings.session_review_window_days)
    anomalous = anomaly_reads.community_anomalies(
        ctx.warehouse,
        community_id,
        since,
        now,
        ctx.settings.anomaly_max_speed_kmh,
        timedelta(days=ctx.settings.anomaly_device_window_days),
    )
    items, total = session_reads.review_queue(
        ctx.warehouse,
        community_id,
        since,
        sorted(REVIEW_FLAGS),
        sorted(REVIEWED_FLAGS),
        limit,
        offset,
        anomalous,
    )
    audit.record_list([i["member_id"] for i in items], "review queue")
    return ReviewQueue(items=[QueuedSessionOut(**i) for i in items], total=total)


def _reviewable_session(ctx: Ctx, caller: Principal, session_id: str) -> dict[str, Any]:
    gate(caller, "session")
    row = session_reads.session(ctx.warehouse, session_id)
    if row is None:
        raise hidden("session", session_id)
    check(
        caller,
        "session",
        "change",
        Facts(community_id=row["station_community_id"]),
        "session",
        session_id,
    )
    return row


@router.post("/sessions/{session_id}/review", response_model=ReviewAccepted, status_code=202)
async def review_session(
    session_id: str, body: ReviewIn, caller: Caller, ctx: Ctx
) -> ReviewAccepted:
    """Approve, adjust (new credited hours and a reason) or reject (a reason) one session.

    Accepted once the decision is on the log; the session's new revision and every total that
    counts it follow within seconds. The latest decision on a session wins."""
    # Validate everything before anything is published.
    if body.action == "adjust" and body.credited_hours is None:
        raise ApiError(422, "invalid_request", "credited_hours: required to adjust a session")
    if body.action != "adjust" and body.credited_hours is not None:
        raise ApiError(422, "invalid_request", "credited_hours: only an adjust carries hours")
    if body.action in ("adjust", "reject") and not body.reason:
        raise ApiError(422, "invalid_request", f"reason: required to {body.action} a session")
    row = await asyncio.to_thread(_reviewable_session, ctx, caller, session_id)
    if row["status"] == "open":
        raise ApiError(
            409, "session_open", "the session is still open; review it once it has ended"
        )
    start = _utc(row["start"])
    window = timedelta(days=ctx.settings.session_review_window_days)
    if start is not None and start < utcnow() - window:
        raise ApiError(
            409,
            "review_window_closed",
            f"sessions can be reviewed for {window.days} days after they start",
        )
    now = utcnow()
    review_id = f"rev_{uuid.uuid4().hex[:16]}"
    event = SessionReviewed(
        event_id=derived_id("review", review_id),
        occurred_at=now,
        review_id=review_id,
        session_id=session_id,
        member_id=row["member_id"],
        station_community_id=row["station_community_id"],
        action=body.action,
        credited_seconds=(
            seconds_of_hours(body.credited_hours) if body.credited_hours is not None else None
        ),
        reason=body.reason,
        reviewer_role=caller.role,
        reviewer_id=caller.subject_id,
    )
    await ctx.publisher.send(topics.SESSION_REVIEWS, row["member_id"], event)
    return ReviewAccepted(review_id=review_id, session_id=session_id, action=body.action)


@router.get("/sessions/{session_id}/reviews", response_model=list[ReviewOut])
def session_reviews(session_id: str, caller: Caller, ctx: Ctx) -> list[ReviewOut]:
    """The audit trail of one session: every decision, oldest first."""
    _reviewable_session(ctx, caller, session_id)
    return [
        ReviewOut(
            review_id=r["review_id"],
            action=r["action"],
            credited_hours=(
                hours(r["credited_seconds"]) if r["credited_seconds"] is not None else None
            ),
            reason=r["reason"],
            reviewer_role=r["reviewer_role"],
            reviewer_id=r["reviewer_id"],
            reviewed_at=r["reviewed_at"] or utcnow(),
        )
        for r in session_reads.reviews(ctx.warehouse, session_id)
    ]
