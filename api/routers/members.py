"""What a member's record shows, to those entitled to it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import Caller, Ctx, readable_member
from api.schemas import HoursOut
from services.counting import current_year
from services.reads.member_hours import year_breakdown, year_totals

router = APIRouter(prefix="/v1/members", tags=["members"])


@router.get("/{member_id}/hours", response_model=HoursOut)
def member_hours(
    member_id: str,
    caller: Caller,
    ctx: Ctx,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> HoursOut:
    """Credited hours and counted sessions of a calendar year: a session belongs to the year of
    its start's local (Asia/Shanghai) date (the record of service and the assessment count the
    same way). Voided, open and rejected sessions credit nothing."""
    m = readable_member(ctx, caller, member_id)
    y = year or current_year()
    t = year_totals(ctx.warehouse, m.id, y)
    return HoursOut(member_id=m.id, year=y, hours=t.hours, sessions=t.sessions)


class HoursBucket(BaseModel):
    period: str = Field(description="an ISO week (2026-W48) or a month (2026-11), Asia/Shanghai")
    hours: float
    sessions: int


class HoursBreakdown(BaseModel):
    member_id: str
    year: int
    hours: float
    sessions: int
    by_week: list[HoursBucket]
    by_month: list[HoursBucket]


@router.get("/{member_id}/hours/breakdown", response_model=HoursBreakdown)
def member_hours_breakdown(
    member_id: str,
    caller: Caller,
    ctx: Ctx,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> HoursBreakdown:
    """The year's credited hours by ISO week and by month (local time), with the same counting
    rules as `/hours`; weeks and months with no service are left out."""
    m = readable_member(ctx, caller, member_id)
    y = year or current_year()
    b = year_breakdown(ctx.warehouse, m.id, y)
    return HoursBreakdown(
        member_id=m.id,
        year=y,
        hours=b.total.hours,
        sessions=b.total.sessions,
        by_week=[
            HoursBucket(period=k.period, hours=k.hours, sessions=k.sessions) for k in b.by_week
        ],
        by_month=[
            HoursBucket(period=k.period, hours=k.hours, sessions=k.sessions) for k in b.by_month
        ],
    )
