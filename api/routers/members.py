"""What a member's record shows, to those entitled to it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import Caller, Ctx
from api.errors import ApiError
from api.schemas import HoursOut
from services.events import Member
from services.registry import NotFound
from services.tokens import Principal

router = APIRouter(prefix="/v1/members", tags=["members"])


def readable_member(ctx: Ctx, caller: Principal, member_id: str) -> Member:
    """The member, if the caller may read their data; 404 otherwise, so ids can't be probed."""
    try:
        m = ctx.registry.member(member_id)
    except NotFound:
        m = None
    allowed = m is not None and (
        caller.role == "admin"
        or (caller.role == "member" and caller.subject_id == m.id)
        or (caller.role == "organizer" and caller.subject_id == m.community_id)
        or (caller.role == "hr" and caller.subject_id == m.unit_id)
    )
    if not allowed or m is None:
        raise ApiError(404, "member_not_found", f"no member {member_id!r} visible to this caller")
    return m


@router.get("/{member_id}/hours", response_model=HoursOut)
def member_hours(
    member_id: str,
    caller: Caller,
    ctx: Ctx,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> HoursOut:
    """Credited hours and completed sessions in a calendar year (Asia/Shanghai)."""
    m = readable_member(ctx, caller, member_id)
    y = year or datetime.now(UTC).year
    rows = ctx.warehouse.query(
        """
        SELECT sum(credited_seconds), countIf(counted = 1)
        FROM sessions FINAL
        WHERE member_id = %(m)s
          AND toYear(start, 'Asia/Shanghai') = %(y)s
          AND status NOT IN ('open', 'rejected')
          AND voided = 0
        """,
        {"m": m.id, "y": y},
    )
    seconds, count = rows[0] if rows else (0, 0)
    return HoursOut(
        member_id=m.id, year=y, hours=round((seconds or 0) / 3600, 2), sessions=int(count)
    )
