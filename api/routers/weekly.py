"""Weekly activity (每周1次): who served an ISO week (Asia/Shanghai), the rate and the hours.

The figures are read by `services.reads.weeks` (one week's rows of `member_weeks`, never a scan
of the sessions history), which also defines whose week a session is (the community, grid and
unit the member had when they served) and "registered" (the registry as it stood at the week's
end). The county (`GET /v1/weekly/communities`) is one grouped read however many communities.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import (
    Caller,
    Ctx,
    community_desk,
    managed_grid,
    managed_station,
    readable_member,
    readable_unit,
    scope_of_list,
)
from api.weeks import WeekQuery, parse_week
from services.counting import hours
from services.events import utcnow
from services.excused import excused
from services.reads import weeks
from services.reads.excusals import approved_weeks
from services.reads.member_hours import week_stations
from services.reads.registry import community_names
from services.reads.weeks import WeekFigures

router = APIRouter(prefix="/v1", tags=["weekly"])


class WeeklyOut(BaseModel):
    week: str
    members_registered: int
    members_served: int
    excused: int = Field(
        description="registered members with an approved excused week (请假) who did not serve:"
        " neither served nor in `not_served`, and out of the rate's denominator"
    )
    rate: float = Field(description="members_served / (members_registered - excused)")
    hours: float
    not_served: list[str]


class CommunityWeek(BaseModel):
    community_id: str
    name: str
    members_registered: int
    members_served: int
    excused: int = 0
    rate: float
    hours: float


class CommunitiesWeekOut(BaseModel):
    week: str
    items: list[CommunityWeek]
    total: int
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "week": "2026-W48",
                    "items": [
                        {
                            "community_id": "comm_0a1b2c3d4e5f6071",
                            "name": "北关社区",
                            "members_registered": 126,
                            "members_served": 97,
                            "excused": 3,
                            "rate": 0.7886,
                            "hours": 241.5,
                        }
                    ],
                    "total": 1,
                }
            ]
        }
    )


class MemberWeekStation(BaseModel):
    station_id: str
    sessions: int
    hours: float


class MemberWeekOut(BaseModel):
    member_id: str
    week: str
    sessions: int
    hours: float
    target_met: bool
    excused: bool = Field(
        description="an approved excused week (请假) not served (served wins: false once served)"
    )
    stations: list[MemberWeekStation]


def _out(week: str, f: WeekFigures) -> WeeklyOut:
    return WeeklyOut(
        week=week,
        members_registered=f.registered,
        members_served=f.served,
        excused=f.n_excused,
        rate=f.rate,
        hours=f.hours,
        not_served=f.not_served,
    )


@router.get("/communities/{community_id}/weekly", response_model=WeeklyOut)
def community_weekly(
    community_id: str, caller: Caller, ctx: Ctx, week: WeekQuery = None
) -> WeeklyOut:
    """Registered members of the community, who served this week, the rate and their hours."""
    w, end = parse_week(week)
    community_desk(ctx, caller, community_id)
    return _out(w, weeks.community_week(ctx.warehouse, community_id, w, end, utcnow()))


@router.get("/weekly/communities", response_model=CommunitiesWeekOut)
def communities_weekly(caller: Caller, ctx: Ctx, week: WeekQuery = None) -> CommunitiesWeekOut:
    """The county's week, community by community, with the figures of
    `GET /v1/communities/{id}/weekly` (without the list of who has not served): the admin sees
    every community, an organizer their own."""
    confined = scope_of_list(caller, "community_desk").community_id
    w, end = parse_week(week)
    scope = None if confined is None else [confined]
    communities = [(c, n) for c, n in community_names(ctx.warehouse, scope)]
    ids = None if scope is None else [c for c, _ in communities]
    figures = weeks.communities_week(ctx.warehouse, w, end, ids, utcnow())
    items = []
    for cid, name in communities:
        f = figures.get(cid, WeekFigures(0, 0, 0))
        items.append(
            CommunityWeek(
                community_id=cid,
                name=name,
                members_registered=f.registered,
                members_served=f.served,
                excused=f.n_excused,
                rate=f.rate,
                hours=f.hours,
            )
        )
    return CommunitiesWeekOut(week=w, items=items, total=len(items))


@router.get("/grids/{grid_id}/weekly", response_model=WeeklyOut)
def grid_weekly(grid_id: str, caller: Caller, ctx: Ctx, week: WeekQuery = None) -> WeeklyOut:
    """A level-4 grid (with its level-5 grids): the organizer of its community, or the admin."""
    w, end = parse_week(week)
    g = managed_grid(ctx, caller, grid_id)
    return _out(w, weeks.grid_week(ctx.warehouse, grid_id, g.community_id, w, end, utcnow()))


@router.get("/units/{unit_id}/weekly", response_model=WeeklyOut)
def unit_weekly(unit_id: str, caller: Caller, ctx: Ctx, week: WeekQuery = None) -> WeeklyOut:
    """A unit's members: the unit's HR, or the admin."""
    w, end = parse_week(week)
    readable_unit(ctx, caller, unit_id)
    return _out(w, weeks.unit_week(ctx.warehouse, unit_id, w, end, utcnow()))


@router.get("/stations/{station_id}/weekly", response_model=WeeklyOut)
def station_weekly(station_id: str, caller: Caller, ctx: Ctx, week: WeekQuery = None) -> WeeklyOut:
    """Who served at this station: the organizer of its community, or the admin."""
    w, end = parse_week(week)
    st = managed_station(ctx, caller, station_id)
    return _out(w, weeks.station_week(ctx.warehouse, station_id, st.community_id, w, end, utcnow()))


@router.get("/members/{member_id}/weekly", response_model=MemberWeekOut)
def member_weekly(
    member_id: str, caller: Caller, ctx: Ctx, week: WeekQuery = None
) -> MemberWeekOut:
    """One member's week: sessions, hours, whether the weekly target (one service) is met."""
    w, _ = parse_week(week)
    m = readable_member(ctx, caller, member_id)
    rows = week_stations(ctx.warehouse, m.id, w)
    stations = [
        MemberWeekStation(station_id=r.station_id, sessions=r.sessions, hours=r.hours)
        for r in rows
        if r.sessions or r.seconds
    ]
    sessions = sum(r.sessions for r in rows)
    return MemberWeekOut(
        member_id=m.id,
        week=w,
        sessions=sessions,
        hours=hours(sum(r.seconds for r in rows)),
        target_met=sessions >= 1,
        excused=excused(bool(approved_weeks(ctx.warehouse, m.id, [w])), sessions >= 1),
        stations=stations,
    )
