"""The organizer's member roster: everyone reporting to the community, whether their phone is
bound, their week and year, and when they last served.

Served this week is decided by the week's own read (`services.reads.weeks.community_week`,
the counting rule of every weekly figure), so the roster, the not-served list and the KPIs
agree. The year's hours and sessions are the member's own calendar year (`services.counting`,
as `/v1/members/{id}/hours`); the last service is the start of their latest counted session.
Members are listed by name in natural order (`services.natural`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from services.counting import (
    COUNTED_SQL,
    SECONDS_SQL,
    YEAR_SQL,
    current_year,
    hours,
    registered_sql,
    week_cutoff,
)
from services.natural import natural_key
from services.reads.weeks import community_week
from services.warehouse.client import Warehouse

Binding = Literal["bound", "code_issued", "unbound"]


@dataclass(frozen=True)
class RosterRow:
    member_id: str
    name: str
    phone: str | None
    grid_id: str | None
    grid_name: str | None
    status: str
    reported_on: date | None
    binding: Binding
    # None: not registered that week (not active, or reported after it), so not expected.
    served_this_week: bool | None
    week_sessions: int
    week_seconds: int
    year_sessions: int
    year_seconds: int
    last_service: datetime | None
    # An approved excused week in which the member did not serve: not served, and not missed.
    excused_this_week: bool = False

    @property
    def week_hours(self) -> float:
        return hours(self.week_seconds)

    @property
    def year_hours(self) -> float:
        return hours(self.year_seconds)


def _utc(v: datetime | None) -> datetime | None:
    if v is None:
        return None
    return v if v.tzinfo else v.replace(tzinfo=UTC)


def community_roster(
    wh: Warehouse, community_id: str, week: str, last_day: date, now: datetime
) -> list[RosterRow]:
    p = {"c": community_id, "w": week, "y": current_year(now), "now": now}
    members = wh.query(
        "SELECT id, name, phone, grid_id, toString(status), reported_on FROM members FINAL "
        "WHERE community_id = %(c)s",
        p,
    )
    if not members:
        return []
    ids = [str(m[0]) for m in members]
    p["ids"] = ids
    grids = dict(wh.query("SELECT id, name FROM grids FINAL WHERE community_id = %(c)s", p))
    figures = community_week(wh, community_id, week, last_day, now)
    not_served = set(figures.not_served)
    # Registered that week as the week's figures count it; served = registered, not listed as
    # not served.
    cutoff = week_cutoff(last_day, now)
    registered = {
        str(r[0])
        for r in wh.query(
            registered_sql("community_id = %(c)s", cutoff, now),
            {**p, "cutoff": cutoff, "end": last_day},
        )
    }
    excused = set(figures.excused)
    served_ids = registered - not_served - excused
    week_rows = {
        str(m): (int(n), int(s))
        for m, n, s in wh.query(
            "SELECT member_id, sum(sessions), sum(credited_seconds) FROM member_weeks FINAL "
            "WHERE week = %(w)s AND member_id IN %(ids)s AND member_community_id = %(c)s "
            "GROUP BY member_id",
            p,
        )
    }
    year_rows = {
        str(m): (int(n), int(s), last)
        for m, n, s, last in wh.query(
            f"SELECT member_id, countIf({COUNTED_SQL} AND {YEAR_SQL} = %(y)s), "
            f"sumIf({SECONDS_SQL}, {YEAR_SQL} = %(y)s), "
            f"if(countIf({COUNTED_SQL}) > 0, maxIf(start, {COUNTED_SQL}), NULL) "
            "FROM sessions FINAL WHERE member_id IN %(ids)s GROUP BY member_id",
            p,
        )
    }
    bindings: dict[str, Binding] = {
        str(m): ("bound" if bound else "code_issued" if pending else "unbound")
        for m, bound, pending in wh.query(
            "SELECT member_id, max(redeemed_at IS NOT NULL), "
            "max(redeemed_at IS NULL AND expires_at > %(now)s) "
            "FROM activations FINAL WHERE member_id IN %(ids)s GROUP BY member_id",
            p,
        )
    }
    out = []
    for mid, name, phone, grid_id, status, reported_on in members:
        mid = str(mid)
        wk = week_rows.get(mid, (0, 0))
        yr = year_rows.get(mid, (0, 0, None))
        out.append(
            RosterRow(
                member_id=mid,
                name=str(name),
                phone=phone,
                grid_id=grid_id,
                grid_name=grids.get(grid_id) if grid_id else None,
                status=str(status),
                reported_on=reported_on,
                binding=bindings.get(mid, "unbound"),
                served_this_week=(
                    True
                    if mid in served_ids
                    else False
                    if mid in not_served or mid in excused
                    else None
                ),
                excused_this_week=mid in excused,
                week_sessions=wk[0],
                week_seconds=wk[1],
                year_sessions=yr[0],
                year_seconds=yr[1],
                last_service=_utc(yr[2]),
            )
        )
    out.sort(key=lambda r: (natural_key(r.name), natural_key(r.grid_name), r.member_id))
    return out
