"""This week at a glance for the member's phone: served or not, hours, scans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import Caller, Ctx, readable_member
from services.timeutil import LOCAL_TZ, iso_week, local_midnight

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


def week_bounds(now: datetime) -> tuple[datetime, datetime]:
    """Monday 00:00 to the next Monday 00:00 in Asia/Shanghai, as UTC instants."""
    today = now.astimezone(LOCAL_TZ).date()
    monday = today - timedelta(days=today.weekday())
    return local_midnight(monday), local_midnight(monday + timedelta(days=7))


@router.get("/{member_id}/week", response_model=WeekOut)
def member_week(member_id: str, caller: Caller, ctx: Ctx) -> WeekOut:
    """The current ISO week (Asia/Shanghai): sessions that started this week and count
    (FINAL, so a session's latest revision; open and rejected ones do not count)."""
    m = readable_member(ctx, caller, member_id)
    now = datetime.now(UTC)
    start, end = week_bounds(now)
    params = {"m": m.id, "a": start, "b": end}
    rows = ctx.warehouse.query(
        """
        SELECT
            countIf(status NOT IN ('open', 'rejected')),
            sumIf(credited_seconds, status NOT IN ('open', 'rejected')),
            countIf(status = 'open')
        FROM sessions FINAL
        WHERE member_id = %(m)s AND start >= %(a)s AND start < %(b)s
        """,
        params,
    )
    counted, seconds, open_count = rows[0] if rows else (0, 0, 0)
    scans = ctx.warehouse.query(
        """
        SELECT count() FROM checkins FINAL
        WHERE member_id = %(m)s AND scanned_at >= %(a)s AND scanned_at < %(b)s
        """,
        params,
    )
    return WeekOut(
        member_id=m.id,
        week=iso_week(now),
        week_start=start,
        served=int(counted or 0) > 0,
        sessions=int(counted or 0),
        hours=round(int(seconds or 0) / 3600, 2),
        open_session=int(open_count or 0) > 0,
        scans=int(scans[0][0]) if scans else 0,
    )
