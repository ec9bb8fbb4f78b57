"""The organizer dashboard's week in one call: hours and served counts per station and per grid.

Reads one week's rows of `member_weeks` (its key starts with the week) and the community's
registry rows, so it costs the same as `GET /v1/communities/{id}/weekly` and not one call per
station and grid.

- stations: service done at this community's stations by anyone (as the station weekly does).
- grids: the community's registered members by their level-4 grid (a level-5 grid counts in its
  parent; members without a grid under `grid_id: null`), served anywhere and their hours, so the
  grids add up to the community's weekly figures.
"""

from __future__ import annotations

from collections import defaultdict

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import Caller, Ctx, hidden, may_manage_community
from api.routers.weekly import WeekQuery, parse_week

router = APIRouter(prefix="/v1/communities", tags=["weekly"])

# Registered as `GET /v1/communities/{id}/weekly` counts them: active, reported by the week's end.
_REGISTERED = (
    "WHERE community_id = %(c)s AND status = 'active' "
    "AND (reported_on IS NULL OR reported_on <= %(end)s)"
)


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


class Breakdown(BaseModel):
    community_id: str
    week: str
    stations: list[StationWeek]
    grids: list[GridWeek]


@router.get("/{community_id}/weekly/breakdown", response_model=Breakdown)
def community_breakdown(
    community_id: str, caller: Caller, ctx: Ctx, week: WeekQuery = None
) -> Breakdown:
    """The organizer of the community (or the admin): one ISO week by station and by grid."""
    w, end = parse_week(week)
    if not may_manage_community(caller, community_id) or not ctx.registry.exists(
        "community", community_id
    ):
        raise hidden("community", community_id)
    p = {"c": community_id, "w": w, "end": end}

    stations = ctx.warehouse.query(
        "SELECT id, name, kind FROM stations FINAL WHERE community_id = %(c)s ORDER BY name, id", p
    )
    at_station = {
        str(sid): (int(served), int(n), int(secs))
        for sid, served, n, secs in ctx.warehouse.query(
            "SELECT station_id, uniqExactIf(member_id, sessions > 0), sum(sessions), "
            "sum(credited_seconds) FROM member_weeks FINAL "
            "WHERE week = %(w)s AND station_community_id = %(c)s GROUP BY station_id",
            p,
        )
    }

    grids = ctx.warehouse.query(
        "SELECT id, name, level, parent_id FROM grids FINAL WHERE community_id = %(c)s "
        "ORDER BY name, id",
        p,
    )
    level4 = {
        str(g): str(g) if int(lv) == 4 or not parent else str(parent) for g, _, lv, parent in grids
    }
    names = {str(g): str(n) for g, n, _, _ in grids}
    member_grid = {
        str(m): level4.get(str(g), str(g)) if g else None
        for m, g in ctx.warehouse.query(f"SELECT id, grid_id FROM members FINAL {_REGISTERED}", p)
    }
    week_rows = ctx.warehouse.query(
        "SELECT member_id, sum(sessions), sum(credited_seconds) FROM member_weeks FINAL "
        f"WHERE week = %(w)s AND member_id IN (SELECT id FROM members FINAL {_REGISTERED}) "
        "GROUP BY member_id",
        p,
    )
    registered: dict[str | None, int] = defaultdict(int)
    served: dict[str | None, int] = defaultdict(int)
    seconds: dict[str | None, int] = defaultdict(int)
    for grid in member_grid.values():
        registered[grid] += 1
    for m, n, secs in week_rows:
        grid = member_grid.get(str(m))
        served[grid] += int(n) > 0
        seconds[grid] += int(secs)

    grid_ids: list[str | None] = [str(g) for g, _, lv, _ in grids if int(lv) == 4]
    grid_ids += sorted({g for g in registered if g is not None and g not in grid_ids})
    if None in registered:
        grid_ids.append(None)
    return Breakdown(
        community_id=community_id,
        week=w,
        stations=[
            StationWeek(
                station_id=str(sid),
                name=str(name),
                kind=str(kind),
                members_served=at_station.get(str(sid), (0, 0, 0))[0],
                sessions=at_station.get(str(sid), (0, 0, 0))[1],
                hours=round(at_station.get(str(sid), (0, 0, 0))[2] / 3600, 2),
            )
            for sid, name, kind in stations
        ],
        grids=[
            GridWeek(
                grid_id=g,
                name=names.get(g, g) if g else "未划分网格",
                members_registered=registered.get(g, 0),
                members_served=served.get(g, 0),
                hours=round(seconds.get(g, 0) / 3600, 2),
            )
            for g in grid_ids
        ],
    )
