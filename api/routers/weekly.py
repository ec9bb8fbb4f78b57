"""Weekly activity (每周1次): who served this ISO week (Asia/Shanghai), the rate and the hours.

Reads only one week's rows of `member_weeks` (its key starts with the week), which the session
agent keeps as each member's latest totals per station; never a scan of the sessions history.
"Registered" comes from the registry: active members who had reported by the end of the week.

- community, grid, unit: the registered members of that community / level-4 grid (with its
  level-5 grids) / unit; served = those with at least one counted session that week anywhere;
  hours = their hours that week.
- station: registered = the members of the station's community; served = everyone with a
  counted session at this station; hours = the hours earned at this station. The rate counts
  the registered members among them.
- the county (`GET /v1/weekly/communities`): every community the caller may manage with the
  community's figures, from one grouped query (one read of the registry and of the week's rows,
  however many communities), instead of one request per community.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from api.deps import (
    Caller,
    Ctx,
    hidden,
    may_manage_community,
    readable_member,
    readable_unit,
    require,
)
from api.errors import ApiError
from services.events import utcnow
from services.registry import NotFound
from services.timeutil import iso_week
from services.warehouse.client import Warehouse

router = APIRouter(prefix="/v1", tags=["weekly"])

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


class WeeklyOut(BaseModel):
    week: str
    members_registered: int
    members_served: int
    rate: float
    hours: float
    not_served: list[str]


class CommunityWeek(BaseModel):
    community_id: str
    name: str
    members_registered: int
    members_served: int
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
                            "rate": 0.7698,
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
    stations: list[MemberWeekStation]


WeekQuery = Annotated[
    str | None, Query(description="ISO week in Asia/Shanghai, e.g. 2026-W48; default this week")
]


def parse_week(week: str | None) -> tuple[str, date]:
    """The canonical week and its last local day; 422 naming the parameter otherwise."""
    if week is None:
        week = iso_week(utcnow())
    m = _WEEK.match(week)
    if not m:
        raise ApiError(422, "invalid_week", f"week: expected YYYY-Www, got {week!r}")
    try:
        monday = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError as exc:
        raise ApiError(422, "invalid_week", f"week: {week!r} does not exist ({exc})") from exc
    return week, monday + timedelta(days=6)


@dataclass(frozen=True)
class _Scope:
    registered_where: str  # on `members FINAL`
    rows_where: str  # on `member_weeks FINAL`, besides the week
    served_any: bool  # served: anyone in the rows (station) or registered members only


def _registered_sql(where: str) -> str:
    return (
        f"SELECT id FROM members FINAL WHERE {where} AND status = 'active' "
        "AND (reported_on IS NULL OR reported_on <= %(end)s)"
    )


def _weekly(ctx: Ctx, scope: _Scope, params: dict[str, Any], week: str, end: date) -> WeeklyOut:
    p = {**params, "w": week, "end": end}
    registered = {
        str(r[0]) for r in ctx.warehouse.query(_registered_sql(scope.registered_where), p)
    }
    rows = ctx.warehouse.query(
        "SELECT member_id, sum(sessions), sum(credited_seconds) FROM member_weeks FINAL "
        f"WHERE week = %(w)s AND {scope.rows_where} GROUP BY member_id",
        p,
    )
    served_all = {str(m) for m, n, _ in rows if int(n) > 0}
    served = served_all if scope.served_any else served_all & registered
    seconds = sum(int(s) for _, _, s in rows)
    n = len(registered)
    return WeeklyOut(
        week=week,
        members_registered=n,
        members_served=len(served),
        rate=round(len(served & registered) / n, 4) if n else 0.0,
        hours=round(seconds / 3600, 2),
        not_served=sorted(registered - served),
    )


@router.get("/communities/{community_id}/weekly", response_model=WeeklyOut)
def community_weekly(
    community_id: str, caller: Caller, ctx: Ctx, week: WeekQuery = None
) -> WeeklyOut:
    """Registered members of the community, who served this week, the rate and their hours."""
    w, end = parse_week(week)
    if not may_manage_community(caller, community_id) or not ctx.registry.exists(
        "community", community_id
    ):
        raise hidden("community", community_id)
    reg = "community_id = %(c)s"
    scope = _Scope(reg, f"member_id IN ({_registered_sql(reg)})", served_any=False)
    return _weekly(ctx, scope, {"c": community_id}, w, end)


def communities_week(
    wh: Warehouse, week: str, end: date, community_ids: list[str] | None
) -> dict[str, tuple[int, int, int]]:
    """Community -> (registered, served, credited seconds) in `week`, counted as
    `GET /v1/communities/{id}/weekly` counts them, for the given communities (None: all).

    One grouped query: the registered members (one read of `members`) left-joined on the member
    id to their totals of the week, several times cheaper than answering community by
    community. When the caller names communities, the week's rows are first narrowed to their
    members, so an organizer's request does not aggregate the whole county's week.
    """
    if community_ids is not None and not community_ids:
        return {}
    p: dict[str, Any] = {"w": week, "end": end, "cs": community_ids or []}
    in_scope = "" if community_ids is None else "AND community_id IN %(cs)s"
    narrow = (
        ""
        if community_ids is None
        else "AND member_id IN (SELECT id FROM members FINAL WHERE community_id IN %(cs)s)"
    )
    rows = wh.query(
        f"""
        SELECT m.community_id, count(), countIf(w.s > 0), sum(w.c)
        FROM (
            SELECT id, community_id FROM members FINAL
            WHERE status = 'active' AND (reported_on IS NULL OR reported_on <= %(end)s)
              {in_scope}
        ) AS m
        LEFT JOIN (
            SELECT member_id, sum(sessions) AS s, sum(credited_seconds) AS c
            FROM member_weeks FINAL WHERE week = %(w)s {narrow}
            GROUP BY member_id
        ) AS w ON w.member_id = m.id
        GROUP BY m.community_id
        """,
        p,
    )
    return {str(c): (int(n), int(served), int(secs)) for c, n, served, secs in rows}


@router.get("/weekly/communities", response_model=CommunitiesWeekOut)
def communities_weekly(caller: Caller, ctx: Ctx, week: WeekQuery = None) -> CommunitiesWeekOut:
    """The county's week, community by community, with the figures of
    `GET /v1/communities/{id}/weekly` (without the list of who has not served): the admin sees
    every community, an organizer their own."""
    require(caller, "admin", "organizer")
    w, end = parse_week(week)
    scope = None if caller.role == "admin" else [caller.subject_id]
    where = "" if scope is None else "WHERE id IN %(cs)s"
    communities = [
        (str(c), str(n))
        for c, n in ctx.warehouse.query(
            f"SELECT id, name FROM communities FINAL {where} ORDER BY name, id", {"cs": scope or []}
        )
        if may_manage_community(caller, str(c))
    ]
    ids = None if scope is None else [c for c, _ in communities]
    figures = communities_week(ctx.warehouse, w, end, ids)
    items = []
    for cid, name in communities:
        n, served, seconds = figures.get(cid, (0, 0, 0))
        items.append(
            CommunityWeek(
                community_id=cid,
                name=name,
                members_registered=n,
                members_served=served,
                rate=round(served / n, 4) if n else 0.0,
                hours=round(seconds / 3600, 2),
            )
        )
    return CommunitiesWeekOut(week=w, items=items, total=len(items))


@router.get("/grids/{grid_id}/weekly", response_model=WeeklyOut)
def grid_weekly(grid_id: str, caller: Caller, ctx: Ctx, week: WeekQuery = None) -> WeeklyOut:
    """A level-4 grid (with its level-5 grids): the organizer of its community, or the admin."""
    w, end = parse_week(week)
    try:
        g = ctx.registry.grid(grid_id)
    except NotFound:
        raise hidden("grid", grid_id) from None
    if not may_manage_community(caller, g.community_id):
        raise hidden("grid", grid_id)
    reg = "(grid_id = %(g)s OR grid_id IN (SELECT id FROM grids FINAL WHERE parent_id = %(g)s))"
    scope = _Scope(reg, f"member_id IN ({_registered_sql(reg)})", served_any=False)
    return _weekly(ctx, scope, {"g": grid_id}, w, end)


@router.get("/units/{unit_id}/weekly", response_model=WeeklyOut)
def unit_weekly(unit_id: str, caller: Caller, ctx: Ctx, week: WeekQuery = None) -> WeeklyOut:
    """A unit's members: the unit's HR, or the admin."""
    w, end = parse_week(week)
    readable_unit(ctx, caller, unit_id)
    reg = "unit_id = %(u)s"
    scope = _Scope(reg, f"member_id IN ({_registered_sql(reg)})", served_any=False)
    return _weekly(ctx, scope, {"u": unit_id}, w, end)


@router.get("/stations/{station_id}/weekly", response_model=WeeklyOut)
def station_weekly(station_id: str, caller: Caller, ctx: Ctx, week: WeekQuery = None) -> WeeklyOut:
    """Who served at this station: the organizer of its community, or the admin."""
    w, end = parse_week(week)
    try:
        st = ctx.registry.station(station_id)
    except NotFound:
        raise hidden("station", station_id) from None
    if not may_manage_community(caller, st.community_id):
        raise hidden("station", station_id)
    scope = _Scope("community_id = %(c)s", "station_id = %(s)s", served_any=True)
    return _weekly(ctx, scope, {"c": st.community_id, "s": station_id}, w, end)


@router.get("/members/{member_id}/weekly", response_model=MemberWeekOut)
def member_weekly(
    member_id: str, caller: Caller, ctx: Ctx, week: WeekQuery = None
) -> MemberWeekOut:
    """One member's week: sessions, hours, whether the weekly target (one service) is met."""
    w, _ = parse_week(week)
    m = readable_member(ctx, caller, member_id)
    rows = ctx.warehouse.query(
        "SELECT station_id, sessions, credited_seconds FROM member_weeks FINAL "
        "WHERE week = %(w)s AND member_id = %(m)s ORDER BY station_id",
        {"w": w, "m": m.id},
    )
    stations = [
        MemberWeekStation(station_id=str(s), sessions=int(n), hours=round(int(secs) / 3600, 2))
        for s, n, secs in rows
        if int(n) or int(secs)
    ]
    sessions = sum(int(n) for _, n, _ in rows)
    seconds = sum(int(s) for _, _, s in rows)
    return MemberWeekOut(
        member_id=m.id,
        week=w,
        sessions=sessions,
        hours=round(seconds / 3600, 2),
        target_met=sessions >= 1,
        stations=stations,
    )
