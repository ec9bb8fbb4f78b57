"""This week at a glance for the member's phone: served or not, hours, scans."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import Caller, Ctx, readable_member
from services.reads.member_hours import this_week
from services.timeutil import iso_week

router = APIRouter(prefix="/v1/members", tags=["members"])


class WeekOut(BaseModel):
    member_id: str
    week: str = Field(description="ISO week in Asia/Shanghai, e.g. 2026-W48")
    week_start: datetime = Field(description="Monday 00:00 Asia/Shanghai, in UTC")
    served: bool = Field(description="at least one counted session this week (the weekly target)")
    sessions: int
    hours: float
    open_session: bool = Field(description="checked in and not yet checked out")
    scans: int = Field(description="scans received this week, each counted once")
    open_since: datetime | None = Field(
        default=None, description="when the open session began (UTC); null when none is open"
    )


@router.get("/{member_id}/week", response_model=WeekOut)
def member_week(member_id: str, caller: Caller, ctx: Ctx) -> WeekOut:
    """The current ISO week (Asia/Shanghai): sessions that started this week and count (a
    session's latest revision; open, rejected and voided ones do not count)."""
    m = readable_member(ctx, caller, member_id)
    now = datetime.now(UTC)
    w = this_week(ctx.warehouse, m.id, now)
    return WeekOut(
        member_id=m.id,
        week=iso_week(now),
        week_start=w.start,
        served=w.totals.sessions > 0,
        sessions=w.totals.sessions,
        hours=w.totals.hours,
        open_session=w.open_sessions > 0,
        scans=w.scans,
        open_since=w.open_since,
    )
