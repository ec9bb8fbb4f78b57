"""A week's figures (每周1次): a community's, a grid's, a unit's, a station's, the county's, and
the organizer's breakdown by station and grid.

Every figure reads one ISO week's rows of `member_weeks` (its key starts with the week): the
session agent's latest totals per member and station, counted by `services.counting`.

Whose week a session is (defined once, `services.counting`): the community, grid and unit the
member had when the session began, carried on each weekly row (`member_community_id`,
`member_grid_id`, `unit_id`), never the station's community. Why the member's and not the
station's: the program asks every in-service member to serve *their* residential community
once a week, the community is answerable for its reported members (the weekly target, the red
flag ranking, the unit's assessment all count people), and a member who helps out at a
neighbouring community's station has still met their own week. So a community's hours are its
members' hours wherever they served; the organizer's breakdown shows the part served at other
communities' stations (`elsewhere`) and, apart, the service others did at this community's
stations (`visitors`, not in this community's totals), and every figure of the week adds up:
the KPI = the stations + elsewhere = the grids, in seconds; in hours up to rounding, each figure
rounded from its own seconds (`services.counting.hours`, `parts_agree`).

"Registered" is the registry as it stood at the end of the week (`services.counting`): members
set to left or moved after the week do not change it. Served = registered members with at least
one counted session in the scope's rows. Excused (`services.excused`) = registered members with
an approved excused week who did not serve (served wins); they are neither served nor in the
not-served list, and the rate is served / (registered - excused). A station's own week
(`station_week`) is the one station-centred read: who served at this station, from anywhere.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from services.counting import hours, registered_sql, week_cutoff
from services.excused import approved_weeks_sql
from services.natural import natural_sorted
from services.warehouse.client import Warehouse

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


class InvalidWeek(ValueError):
    pass


def parse_week(week: str) -> tuple[str, date]:
    """The canonical ISO week and its last local day (Sunday)."""
    m = _WEEK.match(week)
    if not m:
        raise InvalidWeek(f"week: expected YYYY-Www, got {week!r}")
    if not 2000 <= int(m.group(1)) <= 2100:
        # As every `year` parameter: the warehouse's date types hold nothing far outside.
        raise InvalidWeek(f"week: {week!r} lies outside the years 2000-2100")
    try:
        monday = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError as exc:
        raise InvalidWeek(f"week: {week!r} does not exist ({exc})") from exc
    return week, monday + timedelta(days=6)


@dataclass(frozen=True)
class WeekFigures:
    registered: int
    served: int
    seconds: int
    not_served: list[str] = field(default_factory=list)
    # Of the served, those registered in the scope (a station's figures also count visitors
    # from other communities among the served); None: every served member is registered.
    served_registered: int | None = None
    # Registered members excused this week who did not serve: in neither `served` nor
    # `not_served`, and out of the rate's denominator.
    excused: list[str] = field(default_factory=list)
    excused_count: int | None = None

    @property
    def hours(self) -> float:
        return hours(self.seconds)

    @property
    def n_excused(self) -> int:
        return len(self.excused) if self.excused_count is None else self.excused_count

    @property
    def rate(self) -> float:
        """The share of the registered members not excused who served."""
        n = self.served if self.served_registered is None else self.served_registered
        due = self.registered - self.n_excused
        return round(n / due, 4) if due > 0 else 0.0


def _params(week: str, last_day: date, now: datetime, **extra: Any) -> dict[str, Any]:
    return {"w": week, "end": last_day, "cutoff": week_cutoff(last_day, now), **extra}


def _scope_week(
    wh: Warehouse, registered_where: str, rows_where: str, p: dict[str, Any], now: datetime
) -> WeekFigures:
    registered = {
        str(r[0]) for r in wh.query(registered_sql(registered_where, p["cutoff"], now), p)
    }
    rows = wh.query(
        "SELECT member_id, sum(sessions), sum(credited_seconds) FROM member_weeks FINAL "
        f"WHERE week = %(w)s AND {rows_where} GROUP BY member_id",
        p,
    )
    served = {str(m) for m, n, _ in rows if int(n) > 0} & registered
    excused = excused_members(wh, p) & registered - served
    return WeekFigures(
        registered=len(registered),
        served=len(served),
        seconds=sum(int(s) for _, _, s in rows),
        not_served=sorted(registered - served - excused),
        excused=sorted(excused),
    )


def excused_members(wh: Warehouse, p: dict[str, Any]) -> set[str]:
    """Members with an approved excused week `%(w)s` (served or not: the caller applies
    "served wins")."""
    return {str(m) for m, _ in wh.query(approved_weeks_sql("week = %(w)s"), p)}


def community_week(
    wh: Warehouse, community_id: str, week: str, last_day: date, now: datetime
) -> WeekFigures:
    """The community's registered members, who of them served, and its members' hours."""
    p = _params(week, last_day, now, c=community_id)
    return _scope_week(wh, "community_id = %(c)s", "member_community_id = %(c)s", p, now)


_SUBGRIDS = "(SELECT id FROM grids FINAL WHERE parent_id = %(g)s)"


def grid_week(
    wh: Warehouse, grid_id: str, community_id: str, week: str, last_day: date, now: datetime
) -> WeekFigures:
    """A level-4 grid with its level-5 grids, as `community_week` counts the community."""
    p = _params(week, last_day, now, g=grid_id, c=community_id)
    return _scope_week(
        wh,
        f"grid_id = %(g)s OR grid_id IN {_SUBGRIDS}",
        f"member_community_id = %(c)s AND (member_grid_id = %(g)s OR member_grid_id IN {_SUBGRIDS})",
        p,
        now,
    )


def unit_week(wh: Warehouse, unit_id: str, week: str, last_day: date, now: datetime) -> WeekFigures:
    """The unit's registered members and their service for the unit that week."""
    p = _params(week, last_day, now, u=unit_id)
    return _scope_week(wh, "unit_id = %(u)s", "unit_id = %(u)s", p, now)


def station_week(
    wh: Warehouse, station_id: str, community_id: str, week: str, last_day: date, now: datetime
) -> WeekFigures:
    """Who served at this station (from any community) and the hours done there; registered
    are the station's community's members, and the rate counts those among the served."""
    p = _params(week, last_day, now, c=community_id, s=station_id)
    registered = {
        str(r[0]) for r in wh.query(registered_sql("community_id = %(c)s", p["cutoff"], now), p)
    }
    rows = wh.query(
        "SELECT member_id, sum(sessions), sum(credited_seconds) FROM member_weeks FINAL "
        "WHERE week = %(w)s AND station_id = %(s)s GROUP BY member_id",
        p,
    )
    served = {str(m) for m, n, _ in rows if int(n) > 0}
    n = len(registered)
    return WeekFigures(
        registered=n,
        served=len(served),
        seconds=sum(int(s) for _, _, s in rows),
        not_served=sorted(registered - served),
        served_registered=len(served & registered),
    )


def communities_week(
    wh: Warehouse, week: str, last_day: date, community_ids: list[str] | None, now: datetime
) -> dict[str, WeekFigures]:
    """Community -> its week, counted as `community_week` counts it, for the given communities
    (None: all), in one grouped query: the registered members per community, the week's rows
    per member's community, and the registered members served in their own community's rows.
    """
    if community_ids is not None and not community_ids:
        return {}
    p = _params(week, last_day, now, cs=community_ids or [])
    reg_where = "1" if community_ids is None else "community_id IN %(cs)s"
    rows_in = "" if community_ids is None else "AND member_community_id IN %(cs)s"
    reg = registered_sql(reg_where, p["cutoff"], now)
    # The registered members excused that week who did not serve in their own community's rows
    # (served wins), counted as `community_week` counts them.
    excused = approved_weeks_sql("week = %(w)s")
    rows = wh.query(
        f"""
        WITH reg AS ({reg})
        SELECT c, sum(r), sum(s), sum(secs), sum(e) FROM (
            SELECT community_id AS c, count() AS r, toUInt64(0) AS s, toUInt64(0) AS secs,
                   toUInt64(0) AS e
            FROM reg GROUP BY community_id
            UNION ALL
            SELECT member_community_id AS c, toUInt64(0) AS r, toUInt64(0) AS s,
                   sum(credited_seconds) AS secs, toUInt64(0) AS e
            FROM member_weeks FINAL WHERE week = %(w)s {rows_in}
            GROUP BY member_community_id
            UNION ALL
            SELECT w.c AS c, toUInt64(0) AS r, count() AS s, toUInt64(0) AS secs,
                   toUInt64(0) AS e
            FROM (
                SELECT member_id, member_community_id AS c FROM member_weeks FINAL
                WHERE week = %(w)s {rows_in}
                GROUP BY member_id, member_community_id HAVING sum(sessions) > 0
            ) AS w
            INNER JOIN reg ON reg.id = w.member_id AND reg.community_id = w.c
            GROUP BY w.c
            UNION ALL
            SELECT reg.community_id AS c, toUInt64(0) AS r, toUInt64(0) AS s,
                   toUInt64(0) AS secs, count() AS e
            FROM reg INNER JOIN ({excused}) AS x ON x.member_id = reg.id
            WHERE (reg.id, reg.community_id) NOT IN (
                SELECT member_id, member_community_id FROM member_weeks FINAL
                WHERE week = %(w)s {rows_in}
                GROUP BY member_id, member_community_id HAVING sum(sessions) > 0
            )
            GROUP BY reg.community_id
        )
        GROUP BY c
        """,
        p,
    )
    return {
        str(c): WeekFigures(int(r), int(s), int(secs), excused_count=int(e))
        for c, r, s, secs, e in rows
    }


@dataclass(frozen=True)
class StationFigures:
    station_id: str
    name: str
    kind: str
    served: int
    sessions: int
    seconds: int

    @property
    def hours(self) -> float:
        return hours(self.seconds)


@dataclass(frozen=True)
class GridFigures:
    grid_id: str | None
    name: str | None
    registered: int
    served: int
    seconds: int

    @property
    def hours(self) -> float:
        return hours(self.seconds)


@dataclass(frozen=True)
class Service:
    """Service outside the stations list: members and counted sessions and seconds."""

    served: int
    sessions: int
    seconds: int

    @property
    def hours(self) -> float:
        return hours(self.seconds)


@dataclass(frozen=True)
class Breakdown:
    stations: list[StationFigures]
    grids: list[GridFigures]
    elsewhere: Service
    visitors: Service
    total: WeekFigures


def community_breakdown(
    wh: Warehouse, community_id: str, week: str, last_day: date, now: datetime
) -> Breakdown:
    """The community's week by station and by level-4 grid (a level-5 grid counts in its
    parent; members without a grid under None), adding up to `community_week`'s figures.

    Stations: the community's members' service at each of its stations; the rest of their
    service is `elsewhere`. Grids: the registered members by their grid at the week's end, and
    the hours by the grid a session was done under. `visitors`: other communities' members'
    service at this community's stations (theirs, not this community's).
    """
    p = _params(week, last_day, now, c=community_id)
    # Natural order (第2网格 before 第10网格), as every list of names a person reads.
    stations = natural_sorted(
        wh.query(
            "SELECT id, name, kind FROM stations FINAL WHERE community_id = %(c)s ORDER BY id", p
        ),
        key=lambda r: str(r[1]),
    )
    grids = natural_sorted(
        wh.query(
            "SELECT id, name, level, parent_id FROM grids FINAL WHERE community_id = %(c)s "
            "ORDER BY id",
            p,
        ),
        key=lambda r: str(r[1]),
    )
    level4 = {
        str(g): str(g) if int(lv) == 4 or not parent else str(parent) for g, _, lv, parent in grids
    }
    names = {str(g): str(n) for g, n, _, _ in grids}
    member_grid = {
        str(m): level4.get(str(g), str(g)) if g else None
        for m, _, g, _ in wh.query(registered_sql("community_id = %(c)s", p["cutoff"], now), p)
    }
    rows = wh.query(
        "SELECT member_id, station_id, member_community_id = %(c)s, member_grid_id, sessions, "
        "credited_seconds FROM member_weeks FINAL "
        "WHERE week = %(w)s AND (member_community_id = %(c)s OR station_community_id = %(c)s)",
        p,
    )
    own_station_ids = {str(s) for s, _, _ in stations}
    at_station: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    at_station_served: dict[str, set[str]] = defaultdict(set)
    elsewhere, visitors = [0, 0], [0, 0]
    elsewhere_served: set[str] = set()
    visitors_served: set[str] = set()
    member_sessions: dict[str, int] = defaultdict(int)
    grid_seconds: dict[str | None, int] = defaultdict(int)
    total_seconds = 0
    for mid, sid, own, gid, n, secs in rows:
        mid, sid, n, secs = str(mid), str(sid), int(n), int(secs)
        if not own:
            visitors[0] += n
            visitors[1] += secs
            if n > 0:
                visitors_served.add(mid)
            continue
        total_seconds += secs
        member_sessions[mid] += n
        grid_seconds[level4.get(str(gid), str(gid)) if gid else None] += secs
        if sid in own_station_ids:
            at_station[sid][0] += n
            at_station[sid][1] += secs
            if n > 0:
                at_station_served[sid].add(mid)
        else:
            elsewhere[0] += n
            elsewhere[1] += secs
            if n > 0:
                elsewhere_served.add(mid)

    served_ids = {m for m, n in member_sessions.items() if n > 0} & member_grid.keys()
    registered: dict[str | None, int] = defaultdict(int)
    served: dict[str | None, int] = defaultdict(int)
    for mid, grid in member_grid.items():
        registered[grid] += 1
        served[grid] += mid in served_ids

    grid_ids: list[str | None] = [str(g) for g, _, lv, _ in grids if int(lv) == 4]
    extra = {g for g in (*registered, *grid_seconds) if g is not None and g not in grid_ids}
    grid_ids += sorted(extra)
    if None in registered or None in grid_seconds:
        grid_ids.append(None)
    excused = excused_members(wh, p) & member_grid.keys() - served_ids
    total = WeekFigures(
        registered=len(member_grid),
        served=len(served_ids),
        seconds=total_seconds,
        not_served=sorted(member_grid.keys() - served_ids - excused),
        excused=sorted(excused),
    )
    return Breakdown(
        stations=[
            StationFigures(
                station_id=str(sid),
                name=str(name),
                kind=str(kind),
                served=len(at_station_served.get(str(sid), ())),
                sessions=at_station[str(sid)][0] if str(sid) in at_station else 0,
                seconds=at_station[str(sid)][1] if str(sid) in at_station else 0,
            )
            for sid, name, kind in stations
        ],
        grids=[
            GridFigures(
                grid_id=g,
                name=names.get(g, g) if g else None,
                registered=registered.get(g, 0),
                served=served.get(g, 0),
                seconds=grid_seconds.get(g, 0),
            )
            for g in grid_ids
        ],
        elsewhere=Service(len(elsewhere_served), elsewhere[0], elsewhere[1]),
        visitors=Service(len(visitors_served), visitors[0], visitors[1]),
        total=total,
    )
