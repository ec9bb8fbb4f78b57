"""This week at a glance for the member's phone: served or not, hours, scans."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import Caller, Ctx, readable_member
from services.counting import hours, still_needed_seconds
from services.excused import excused
from services.reads.excusals import approved_weeks
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
    minimum_hours: float = Field(
        description="the credited time one session needs to count as a service toward the week"
        " (WEEK_MIN_CREDITED_MIN), unless an organizer approves it"
    )
    below_minimum_sessions: int = Field(
        description="this week's sessions credited below the minimum, awaiting an organizer's"
        " approval (their hours are in `hours`; they meet no target yet)"
    )
    excused: bool = Field(
        default=False,
        description="this week is an approved excused week (请假) and not served: neither served"
        " nor missed (served wins)",
    )
    needed_hours: float = Field(
        description="0 when served; with a session open, how much longer it must last; else the"
        " length of the one service still needed (or an organizer's approval)"
    )


@router.get("/{member_id}/week", response_model=WeekOut)
def member_week(member_id: str, caller: Caller, ctx: Ctx) -> WeekOut:
    """The current ISO week (Asia/Shanghai): sessions that started this week and count (a
    session's latest revision; open, rejected and voided ones do not count, nor one credited
    below the weekly minimum until an organizer approved it), and what is still needed."""
    m = readable_member(ctx, caller, member_id)
    now = datetime.now(UTC)
    w = this_week(ctx.warehouse, m.id, now)
    served = w.totals.sessions > 0
    minimum_s = ctx.settings.week_min_credited_min * 60
    needed = still_needed_seconds(served, w.open_since, now, minimum_s)
    return WeekOut(
        member_id=m.id,
        week=iso_week(now),
        week_start=w.start,
        served=served,
        sessions=w.totals.sessions,
        hours=w.totals.hours,
        open_session=w.open_sessions > 0,
        scans=w.scans,
        open_since=w.open_since,
        minimum_hours=hours(minimum_s),
        below_minimum_sessions=w.below_minimum,
        excused=excused(bool(approved_weeks(ctx.warehouse, m.id, [iso_week(now)])), served),
        needed_hours=hours(needed),
    )
