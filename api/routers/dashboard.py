"""The organizer dashboard's week in one call: hours and served counts per station and per grid.

Counted as `GET /v1/communities/{id}/weekly` counts the week (`services.reads.weeks`): a session
is the week of the community and grid its member had when serving. The stations are the
community's members' service at its stations, `elsewhere` the rest of their service, so
stations + elsewhere = grids = the week's hours; `visitors` is other communities' members'
service at these stations, which counts in their own communities.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import Caller, Ctx, community_desk
from api.weeks import WeekQuery, parse_week
from services.events import utcnow
from services.reads import weeks as week_reads

router = APIRouter(prefix="/v1/communities", tags=["weekly"])


class StationWeek(BaseModel):
    station_id: str
    name: str
    kind: str
    members_served: int
    sessions: int
    hours: float


class GridWeek(BaseModel):
    grid_id: str | None
    name: str
    members_registered: int
    members_served: int
    hours: float


class ServiceWeek(BaseModel):
    members_served: int
    sessions: int
    hours: float


class Breakdown(BaseModel):
    community_id: str
    week: str
    stations: list[StationWeek]
    grids: list[GridWeek]
    elsewhere: ServiceWeek = Field(
        description="the community's members' service at other communities' stations (in the "
        "community's totals: stations + elsewhere = the week's hours, up to rounding: each figure "
        "is rounded from its own seconds)"
    )
    visitors: ServiceWeek = Field(
        description="other communities' members' service at this community's stations (counted "
        "in their own communities' figures, not in this one's)"
    )
    hours: float = Field(description="the week's hours, as GET /v1/communities/{id}/weekly")


@router.get("/{community_id}/weekly/breakdown", response_model=Breakdown)
def community_breakdown(
    community_id: str, caller: Caller, ctx: Ctx, week: WeekQuery = None
) -> Breakdown:
    """The organizer of the community (or the admin): one ISO week by station and by grid."""
    w, end = parse_week(week)
    community_desk(ctx, caller, community_id)
    b = week_reads.community_breakdown(ctx.warehouse, community_id, w, end, utcnow())
    return Breakdown(
        community_id=community_id,
        week=w,
        stations=[
            StationWeek(
                station_id=st.station_id,
                name=st.name,
                kind=st.kind,
                members_served=st.served,
                sessions=st.sessions,
                hours=st.hours,
            )
            for st in b.stations
        ],
        grids=[
            GridWeek(
                grid_id=g.grid_id,
                name=g.name if g.name is not None else "未划分网格",
                members_registered=g.registered,
                members_served=g.served,
                hours=g.hours,
            )
            for g in b.grids
        ],
        elsewhere=ServiceWeek(
            members_served=b.elsewhere.served,
            sessions=b.elsewhere.sessions,
            hours=b.elsewhere.hours,
        ),
        visitors=ServiceWeek(
            members_served=b.visitors.served,
            sessions=b.visitors.sessions,
            hours=b.visitors.hours,
        ),
        hours=b.total.hours,
    )
