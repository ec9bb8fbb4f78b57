"""Excused weeks (请假): a member asks to be excused for some ISO weeks, the organizer of their
community approves or declines, the unit's HR follows its members' requests.

The rule (which weeks may be asked for, what an approved week does to the figures, "served
wins", the first decision decides) is `services.excused`. Every request and decision is an event
on `excusals` (who, when, what), kept in ClickHouse. Writes answer 202: a request is readable
as soon as the sink has written it (typically < 1 s), and only then can it be decided.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import (
    Caller,
    Ctx,
    check,
    community_desk,
    gate,
    hidden,
    readable_member,
    readable_unit,
)
from api.errors import ApiError
from api.openapi import errors
from services import topics
from services.access import Facts
from services.events import ExcusalRecorded, derived_id, utcnow
from services.excused import (
    MAX_WEEKS,
    REASON_LABELS,
    ExcusalRefused,
    Reason,
    Status,
    check_weeks,
    overlapping,
)
from services.reads import excusals as reads
from services.reads.excusals import ExcusalRequest
from services.reads.weeks import InvalidWeek, parse_week
from services.text import FreeText, Line

router = APIRouter(prefix="/v1", tags=["excusals"])


class ExcusalIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    weeks: list[Line] = Field(
        min_length=1,
        max_length=MAX_WEEKS,
        description="ISO weeks in Asia/Shanghai (2026-W49): from the week that ended at most 7"
        " days ago up to 8 weeks ahead",
    )
    reason: Reason = Field(
        description="business_trip 出差, sick 病假, training 培训, deployment 下沉/应急, other 其他"
    )
    note: FreeText = Field(default="", max_length=500)
    # A re-sent request with the same id is the same request.
    client_event_id: uuid.UUID | None = None


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    decision: Literal["approve", "decline"]
    reason: FreeText = Field(default="", max_length=500, description="required to decline")


class ExcusalOut(BaseModel):
    request_id: str
    member_id: str
    community_id: str
    unit_id: str
    weeks: list[str]
    reason: str
    reason_label: str = Field(description="the reason as members read it (出差, 病假, ...)")
    note: str
    status: Status
    requested_by: str = Field(description="role:id of whoever asked")
    requested_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None


class ExcusalList(BaseModel):
    items: list[ExcusalOut]
    total: int


def _out(r: ExcusalRequest) -> ExcusalOut:
    return ExcusalOut(
        request_id=r.request_id,
        member_id=r.member_id,
        community_id=r.community_id,
        unit_id=r.unit_id,
        weeks=r.weeks,
        reason=r.reason,
        reason_label=REASON_LABELS.get(r.reason, r.reason),
        note=r.note,
        status=r.status,
        requested_by=r.requested_by,
        requested_at=r.requested_at,
        decided_by=r.decided_by,
        decided_at=r.decided_at,
        decision_reason=r.decision_note,
    )


def _list(rows: list[ExcusalRequest], status: Status | None) -> ExcusalList:
    items = [_out(r) for r in rows if status is None or r.status == status]
    return ExcusalList(items=items, total=len(items))


def _weeks(weeks: list[str]) -> list[str]:
    out = []
    for w in weeks:
        try:
            out.append(parse_week(w)[0])
        except InvalidWeek as exc:
            raise ApiError(422, "invalid_week", f"weeks: {exc}") from exc
    try:
        return check_weeks(out, utcnow())
    except ExcusalRefused as exc:
        raise ApiError(422, exc.code, exc.message) from exc


StatusQuery = Annotated[Status | None, Query(description="pending, approved or declined")]


@router.post(
    "/members/{member_id}/excusals",
    response_model=ExcusalOut,
    status_code=202,
    responses=errors(409),
)
def request_excusal(member_id: str, body: ExcusalIn, caller: Caller, ctx: Ctx) -> ExcusalOut:
    """Asks for the member to be excused for these weeks (the member, or their community's
    organizer for them); pending until the organizer decides. 409 `already_requested` when a
    week is in a pending or approved request already."""
    gate(caller, "excusal_request")
    m = readable_member(ctx, caller, member_id, "excusal_request", "change")
    weeks = _weeks(body.weeks)
    request_id = (
        "exc_" + derived_id("excusal", m.id, str(body.client_event_id))[:16]
        if body.client_event_id
        else f"exc_{uuid.uuid4().hex[:16]}"
    )
    if body.client_event_id:
        existing = reads.request(ctx.warehouse, request_id)
        if existing is not None:
            return _out(existing)
    clash = overlapping(weeks, reads.held_weeks(ctx.warehouse, m.id))
    if clash:
        raise ApiError(
            409,
            "already_requested",
            f"weeks: {', '.join(clash)} already in a pending or approved request",
        )
    now = utcnow()
    event = ExcusalRecorded(
        event_id=derived_id("excusal.request", request_id),
        occurred_at=now,
        request_id=request_id,
        action="request",
        member_id=m.id,
        community_id=m.community_id,
        unit_id=m.unit_id,
        weeks=weeks,
        reason=body.reason,
        note=body.note,
        actor_role=caller.role,
        actor_id=caller.subject_id,
    )
    ctx.publisher.send_sync(topics.EXCUSALS, m.id, event)
    return _out(
        ExcusalRequest(
            request_id=request_id,
            member_id=m.id,
            community_id=m.community_id,
            unit_id=m.unit_id,
            weeks=weeks,
            reason=body.reason,
            note=body.note,
            requested_by=f"{caller.role}:{caller.subject_id}",
            requested_at=now,
            status="pending",
        )
    )


@router.get("/members/{member_id}/excusals", response_model=ExcusalList)
def member_excusals(
    member_id: str, caller: Caller, ctx: Ctx, status: StatusQuery = None
) -> ExcusalList:
    """The member's requests, newest first: the member, their organizer, their unit's HR."""
    m = readable_member(ctx, caller, member_id, "excusal")
    return _list(reads.requests(ctx.warehouse, member_id=m.id), status)


@router.get("/communities/{community_id}/excusals", response_model=ExcusalList)
def community_excusals(
    community_id: str, caller: Caller, ctx: Ctx, status: StatusQuery = None
) -> ExcusalList:
    """Requests made in the community (e.g. `status=pending`, to decide), newest first."""
    community_desk(ctx, caller, community_id)
    return _list(reads.requests(ctx.warehouse, community_id=community_id), status)


@router.get("/units/{unit_id}/excusals", response_model=ExcusalList)
def unit_excusals(
    unit_id: str, caller: Caller, ctx: Ctx, status: StatusQuery = None
) -> ExcusalList:
    """Requests of the unit's members (as they were when asked), newest first: its HR."""
    readable_unit(ctx, caller, unit_id)
    return _list(reads.requests(ctx.warehouse, unit_id=unit_id), status)


@router.post(
    "/excusals/{request_id}/decision",
    response_model=ExcusalOut,
    status_code=202,
    responses=errors(409),
)
def decide_excusal(request_id: str, body: DecisionIn, caller: Caller, ctx: Ctx) -> ExcusalOut:
    """Approves or declines a pending request (the organizer of the community it was made in);
    a decline names its reason. 409 `already_decided` once decided: the first decision stands."""
    gate(caller, "excusal")
    r = reads.request(ctx.warehouse, request_id)
    if r is None:
        raise hidden("excusal", request_id)
    facts = Facts(member_id=r.member_id, community_id=r.community_id, unit_id=r.unit_id)
    check(caller, "excusal", "change", facts, "excusal", request_id)
    if body.decision == "decline" and not body.reason:
        raise ApiError(422, "reason_required", "reason: a decline names its reason")
    if r.status != "pending":
        raise ApiError(409, "already_decided", f"request {request_id!r} is {r.status} already")
    now = utcnow()
    event = ExcusalRecorded(
        event_id=derived_id("excusal.decision", request_id, body.decision, str(uuid.uuid4())),
        occurred_at=now,
        request_id=request_id,
        action=body.decision,
        member_id=r.member_id,
        community_id=r.community_id,
        unit_id=r.unit_id,
        note=body.reason,
        actor_role=caller.role,
        actor_id=caller.subject_id,
    )
    ctx.publisher.send_sync(topics.EXCUSALS, r.member_id, event)
    return _out(
        ExcusalRequest(
            request_id=r.request_id,
            member_id=r.member_id,
            community_id=r.community_id,
            unit_id=r.unit_id,
            weeks=r.weeks,
            reason=r.reason,
            note=r.note,
            requested_by=r.requested_by,
            requested_at=r.requested_at,
            status="approved" if body.decision == "approve" else "declined",
            decided_by=f"{caller.role}:{caller.subject_id}",
            decided_at=now,
            decision_note=body.reason,
        )
    )
