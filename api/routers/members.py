"""What a member's record shows, to those entitled to it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import Caller, Ctx, readable_member
from api.schemas import HoursOut

router = APIRouter(prefix="/v1/members", tags=["members"])


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
    y = year or datetime.now(UTC).year
    rows = ctx.warehouse.query(
        """
        SELECT formatDateTime(toMonday(toDate(start, 'Asia/Shanghai')), '%%G-W%%V') AS week,
               formatDateTime(toDate(start, 'Asia/Shanghai'), '%%Y-%%m') AS month,
               sum(credited_seconds), countIf(counted = 1)
        FROM sessions FINAL
        WHERE member_id = %(m)s
          AND toYear(start, 'Asia/Shanghai') = %(y)s
          AND status NOT IN ('open', 'rejected')
          AND voided = 0
        GROUP BY week, month
        ORDER BY week, month
        """,
        {"m": m.id, "y": y},
    )

    def buckets(index: int) -> list[HoursBucket]:
        acc: dict[str, list[int]] = {}
        for row in rows:
            a = acc.setdefault(row[index], [0, 0])
            a[0] += int(row[2])
            a[1] += int(row[3])
        return [
            HoursBucket(period=k, hours=round(s / 3600, 2), sessions=n)
            for k, (s, n) in sorted(acc.items())
        ]

    total_s = sum(int(r[2]) for r in rows)
    return HoursBreakdown(
        member_id=m.id,
        year=y,
        hours=round(total_s / 3600, 2),
        sessions=sum(int(r[3]) for r in rows),
        by_week=buckets(0),
        by_month=buckets(1),
    )
