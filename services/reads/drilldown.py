"""The county's roll-ups (issue 15): the drill-down county → town → community → grid, and by
unit, and the station-by-hour-of-week heatmap of check-ins.

Every figure comes from a roll-up, never from a scan of the sessions: a week's registered,
served and hours from `member_weeks` (the session agent's latest weekly totals per member and
station, keyed by week first), wishes from `wishes`, the heatmap from `checkin_hours` (m0014:
per week, station and local hour, the set of check-in scan ids). The rules are the one
read layer's: "registered" and its as-of registry (`services.counting.registered_sql`), whose
service a week's row is (the member's unit, community and grid when the session began: a town's
figures are the figures of its communities, and a level-4 grid's include its level-5 grids, as
`services.reads.weeks` counts them), hours once on the total (`services.counting.hours`). So a
community's row here equals `community_week`, and the rows of a level add up to their parent
(registered, served, hours; a member counts in one row per week).

A row (`DrillRow`):
- `registered`, `served`, `rate`, `hours`: the week, as `services.reads.weeks` counts it;
- `active`, `reported`, `reported_rate`: of the members active at the week's cutoff, those with
  a report date (报到日期) on or before the week's last day;
- `wishes_fulfilled`: wishes done in the week (local days), by the wish's community (by town
  and community), the fulfilling member's grid (by grid) or unit (by unit);
- `lapsed`: registered members with no counted service in the lapsed rule's window
  (`services.counting.lapse_window`: the LAPSED_WEEKS full weeks before this one and this one),
  wherever they served;
- `no_shows`: the registered members' no-shows in the week's service slots (a place held in a
  slot that started in the week and is over, not attended: `services.activities.attendance`),
  from the `slot_weeks` roll-up (`services.slot_weeks_job` tallies it with that rule), in the
  member's row as of the week;
- `trend`: the rate and hours of each of the `TREND_WEEKS` weeks ending with this one.

`excused`: registered members with an approved excused week (`services.excused`) who did not
serve it in their own community (served wins), out of the rate's denominator as in
`services.reads.weeks`; each trend point leaves out that week's excused the same way (served in
the row's own key wins), so a community's point equals its `/weekly` rate for that week.

Rows are grouped by a key computed in SQL from the small registry tables mapped in Python
(`transform(column, [from...], [to...], '')`): which town a community lies in *now*, which
level-4 grid a level-5 grid lies in. The empty key is the row of members with no town (a
community not yet placed) or no grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from services.counting import (
    CURRENT_MEMBERS_SQL,
    REGISTERED_SQL,
    hours,
    lapse_window,
    members_as_of,
    registered_sql,
    week_cutoff,
)
from services.excused import approved_weeks_sql
from services.natural import natural_sorted
from services.reads import slot_weeks
from services.timeutil import local_midnight
from services.warehouse.client import Warehouse

ScopeKind = Literal["county", "town", "community"]
By = Literal["town", "community", "grid", "unit"]
TREND_WEEKS = 8
# The heatmap's window: a year of weeks at most (its rollup is per week; the page offers 1-52).
MAX_HEAT_WEEKS = 52
# What each scope drills into (besides units, which every scope offers).
CHILD: dict[ScopeKind, By] = {"county": "town", "town": "community", "community": "grid"}
NO_TOWN, NO_GRID = "未划分镇街", "未划分网格"


@dataclass(frozen=True)
class TrendPoint:
    week: str
    registered: int
    served: int
    seconds: int
    # Registered members excused that week who did not serve it: out of the rate's base, as in
    # the week's own rate (a community's point equals its `/weekly` figure).
    excused: int = 0

    @property
    def rate(self) -> float:
        due = self.registered - self.excused
        return round(self.served / due, 4) if due > 0 else 0.0

    @property
    def hours(self) -> float:
        return hours(self.seconds)


@dataclass
class DrillRow:
    key: str
    name: str
    registered: int = 0
    served: int = 0
    seconds: int = 0
    active: int = 0
    reported: int = 0
    wishes_fulfilled: int = 0
    lapsed: int = 0
    # Registered members excused this week who did not serve (served wins): out of the rate's
    # denominator, as `services.reads.weeks` counts them.
    excused: int = 0
    # Registered members' no-shows this week: places held in slots that started in the week and
    # are over, not attended (`services.activities.attendance`), from the `slot_weeks` roll-up.
    no_shows: int = 0
    trend: list[TrendPoint] = field(default_factory=list)

    @property
    def rate(self) -> float:
        due = self.registered - self.excused
        return round(self.served / due, 4) if due > 0 else 0.0

    @property
    def reported_rate(self) -> float:
        return round(self.reported / self.active, 4) if self.active else 0.0

    @property
    def hours(self) -> float:
        return hours(self.seconds)


@dataclass(frozen=True)
class Grouping:
    """How rows are keyed and confined, as SQL over the three kinds of rows read."""

    reg_key: str  # over registry rows: community_id, grid_id, unit_id
    week_key: str  # over member_weeks rows: member_community_id, member_grid_id, unit_id
    wish_key: str  # over wishes rows (w.) joined with the fulfilling member (fm.)
    reg_scope: str
    week_scope: str
    wish_scope: str
    names: dict[str, str]
    params: dict[str, Any]


def _weeks_back(week: str, n: int) -> list[str]:
    """The `n` ISO weeks ending with `week`, oldest first."""
    y, w = int(week[:4]), int(week[6:])
    monday = date.fromisocalendar(y, w, 1)
    out = []
    for i in range(n - 1, -1, -1):
        iy, iw, _ = (monday - timedelta(weeks=i)).isocalendar()
        out.append(f"{iy}-W{iw:02d}")
    return out


def weeks_between(first: str, last: str) -> int:
    """How many ISO weeks `first`..`last` span (both canonical); ValueError naming the
    parameter when `first` is after `last` or the span is longer than `MAX_HEAT_WEEKS`."""
    days = (_last_day(last) - _last_day(first)).days
    if days < 0:
        raise ValueError(f"from: {first} is after to: {last}")
    n = days // 7 + 1
    if n > MAX_HEAT_WEEKS:
        raise ValueError(f"to: the window spans {n} weeks, at most {MAX_HEAT_WEEKS}")
    return n


def _last_day(week: str) -> date:
    return date.fromisocalendar(int(week[:4]), int(week[6:]), 7)


# ---- the registry's small tables --------------------------------------------------------

COMMUNITIES_SQL = "SELECT id, name, ifNull(town_id, '') FROM communities FINAL"
# Whether any member's registry fields that "registered" reads changed since a cutoff.
CHANGED_SINCE_SQL = """
    SELECT count() > 0 FROM registry_history
    WHERE entity_kind = 'member' AND operation = 'update' AND changed_at >= %(since)s
      AND hasAny(fields, ['community_id', 'unit_id', 'grid_id', 'status', 'reported_on'])
"""
# All of the above a drill-down needs, in one round trip (each query costs the engine its
# overhead, a large part of a drill-down's time on a busy machine): kind, id, name, town or
# parent, level.
LOOKUPS_SQL = f"""
    SELECT 'c', id, name, ifNull(town_id, ''), 0 FROM communities FINAL
    UNION ALL SELECT 't', id, name, '', 0 FROM towns FINAL
    UNION ALL SELECT 'u', id, name, '', 0 FROM units FINAL
    UNION ALL SELECT 'g', id, name, if(level = 5, ifNull(parent_id, ''), id), level
              FROM grids FINAL WHERE community_id = %(c)s
    UNION ALL SELECT 'h', '', '', toString(({CHANGED_SINCE_SQL})), 0
"""


# Which town a community lies in, which level-4 grid a grid is (or lies in), as maps built once
# per query by a scalar subquery (inlined ids would meet the query text's size limit).
_TOWN_OF = (
    "arrayElement((SELECT mapFromArrays(groupArray(id), groupArray(ifNull(town_id, '')))"
    " FROM communities FINAL), {})"
)
_LEVEL4 = (
    "arrayElement((SELECT mapFromArrays(groupArray(id),"
    " groupArray(if(level = 5, ifNull(parent_id, ''), id))) FROM grids FINAL"
    " WHERE community_id = %(c)s), ifNull({}, ''))"
)
_IN_TOWN = "(SELECT id FROM communities FINAL WHERE town_id = %(t)s)"


def town_communities(wh: Warehouse, town_id: str) -> list[str]:
    return [str(c) for c, _, t in wh.query(COMMUNITIES_SQL) if t == town_id]


def grouping(
    wh: Warehouse, scope: ScopeKind, scope_id: str | None, by: By, since: datetime
) -> tuple[Grouping, bool]:
    """The keys and scope of a drill-down, and whether a member's registry fields changed since
    `since`; raises ValueError for a `by` the scope lacks."""
    if by != "unit" and by != CHILD[scope]:
        raise ValueError(f"by: a {scope} drills down by {CHILD[scope]} or unit")
    found: dict[str, list[tuple[str, str, str, int]]] = {k: [] for k in "ctugh"}
    lookups = {"c": scope_id if scope == "community" else "", "since": since}
    for kind, i, n, t, lv in wh.query(LOOKUPS_SQL, lookups):
        found[str(kind)].append((str(i), str(n), str(t), int(lv)))
    changed = found["h"][0][2] in ("1", "true")
    g = _grouping(found, scope, scope_id, by)
    return g, changed


def _grouping(
    found: dict[str, list[tuple[str, str, str, int]]],
    scope: ScopeKind,
    scope_id: str | None,
    by: By,
) -> Grouping:
    comms = [(i, n, t) for i, n, t, _ in found["c"]]
    params: dict[str, Any] = {}
    if scope == "county":
        reg_scope = week_scope = wish_scope = "1"
    elif scope == "town":
        params["cs"] = [c for c, _, t in comms if t == scope_id]
        params["t"] = scope_id
        # A subquery, not the ids inlined: a query's text has a size limit (max_query_size).
        reg_scope = f"community_id IN {_IN_TOWN}"
        week_scope = f"member_community_id IN {_IN_TOWN}"
        wish_scope = f"w.community_id IN {_IN_TOWN}"
    else:
        params["c"] = scope_id
        reg_scope = "community_id = %(c)s"
        week_scope = "member_community_id = %(c)s"
        wish_scope = "w.community_id = %(c)s"
    if by == "town":
        town_of = _TOWN_OF
        names = {i: n for i, n, _, _ in found["t"]}
        names[""] = NO_TOWN
        return Grouping(
            town_of.format("community_id"),
            town_of.format("member_community_id"),
            town_of.format("w.community_id"),
            reg_scope,
            week_scope,
            wish_scope,
            names,
            params,
        )
    if by == "community":
        names = {c: n for c, n, _ in comms}
        return Grouping(
            "community_id",
            "member_community_id",
            "w.community_id",
            reg_scope,
            week_scope,
            wish_scope,
            names,
            params,
        )
    if by == "grid":
        grids = found["g"]
        level4 = _LEVEL4
        names = {g: n for g, n, _, lv in grids if lv == 4}
        names[""] = NO_GRID
        return Grouping(
            level4.format("grid_id"),
            level4.format("member_grid_id"),
            level4.format("fm.grid_id"),
            reg_scope,
            week_scope,
            wish_scope,
            names,
            params,
        )
    names = {i: n for i, n, _, _ in found["u"]}
    return Grouping(
        "unit_id",
        "unit_id",
        "ifNull(w.fulfilled_by_unit_id, '')",
        reg_scope,
        week_scope,
        wish_scope,
        names,
        params,
    )


# ---- the named queries -------------------------------------------------------------------

# A week's service per member and key within the scope: who served (a counted session in rows
# of their own key) and the credited seconds, per week of the trend.
_ACTIVITY = """
    SELECT week, member_id, {week_key} AS k, sum(sessions) AS n
    FROM member_weeks FINAL WHERE week IN %(weeks)s AND {week_scope}
    GROUP BY week, member_id, k
"""
_SECONDS = """
    SELECT week, {week_key} AS k, sum(credited_seconds) AS secs
    FROM member_weeks FINAL WHERE week IN %(weeks)s AND {week_scope}
    GROUP BY week, k
"""

# Every week of the trend in one query, when no member's unit, community, grid, status or
# report date changed since the first week's cutoff: the registry as of each week's end is then
# the current one (`services.counting.members_as_of`), and a week's registered are the current
# active members who had reported by its last day (`REGISTERED_SQL`, with each week's `end`).
TREND_SQL = """
    WITH reg AS (
        SELECT id, {reg_key} AS k, tupleElement(we, 1) AS week
        FROM ({current}) ARRAY JOIN arrayZip(%(weeks)s, %(ends)s) AS we
        WHERE status = 'active'
          AND (reported_on IS NULL OR reported_on <= toDate32(tupleElement(we, 2)))
          AND ({reg_scope})
    )
    SELECT week, k, sum(r), sum(s), sum(secs), sum(e) FROM (
        SELECT reg.week AS week, reg.k AS k, count() AS r, countIf(a.n > 0) AS s,
               toUInt64(0) AS secs, countIf(x.member_id != '' AND a.n = 0) AS e
        FROM reg LEFT JOIN ({activity}) AS a
            ON a.member_id = reg.id AND a.week = reg.week AND a.k = reg.k
        LEFT JOIN ({excused}) AS x ON x.member_id = reg.id AND x.week = reg.week
        GROUP BY week, k
        UNION ALL
        SELECT week, k, toUInt64(0), toUInt64(0), secs, toUInt64(0) FROM ({seconds})
    )
    GROUP BY week, k
"""

# One week, the registry as of its cutoff (`registered_sql`): for a trend across a change.
WEEK_SQL = """
    SELECT week, k, sum(r), sum(s), sum(secs), sum(e) FROM (
        SELECT %(w)s AS week, reg.k AS k, count() AS r, countIf(a.n > 0) AS s,
               toUInt64(0) AS secs, countIf(x.member_id != '' AND a.n = 0) AS e
        FROM (SELECT id, {reg_key} AS k FROM ({registered})) AS reg
        LEFT JOIN ({activity}) AS a ON a.member_id = reg.id AND a.k = reg.k
        LEFT JOIN ({excused}) AS x ON x.member_id = reg.id
        GROUP BY k
        UNION ALL
        SELECT week, k, toUInt64(0), toUInt64(0), secs, toUInt64(0) FROM ({seconds})
    )
    GROUP BY week, k
"""


# The selected week's members as of its cutoff: active, reported by its last day, the
# registered with no counted service anywhere in the lapse window, the registered excused who
# did not serve, and the registered members' no-shows (the `slot_weeks` roll-up's tallies,
# `services.reads.slot_weeks`).
MEMBERS_SQL = """
    SELECT {reg_key} AS k, countIf(status = 'active'),
           countIf(status = 'active' AND reported_on IS NOT NULL AND reported_on <= %(end)s),
           countIf({registered} AND id NOT IN (
               SELECT member_id FROM member_weeks FINAL WHERE week IN %(lapse)s
               GROUP BY member_id HAVING sum(sessions) > 0)),
           countIf({registered} AND id IN (SELECT member_id FROM ({excused}))
               AND (id, community_id) NOT IN (
                   SELECT member_id, member_community_id FROM member_weeks FINAL
                   WHERE week = %(w)s
                   GROUP BY member_id, member_community_id HAVING sum(sessions) > 0)),
           sumIf(ns.n, {registered})
    FROM ({as_of}) AS r LEFT JOIN ({no_shows}) AS ns ON ns.member_id = r.id
    WHERE {reg_scope}
    GROUP BY k
"""

# Wishes done within the week's local days.
WISHES_SQL = """
    SELECT {wish_key} AS k, count() AS n FROM wishes AS w FINAL
    {join}
    WHERE w.status IN ('done', 'confirmed') AND w.done_at >= %(from)s AND w.done_at < %(to)s
      AND {wish_scope}
    GROUP BY k
"""
_FULFILLER = (
    "LEFT JOIN (SELECT id, grid_id FROM members FINAL) AS fm ON fm.id = w.fulfilled_by_member_id"
)


def _week_params(g: Grouping, week: str, now: datetime) -> dict[str, Any]:
    last_day = _last_day(week)
    return {**g.params, "w": week, "end": last_day, "cutoff": week_cutoff(last_day, now)}


def trend_of(
    wh: Warehouse, g: Grouping, weeks: list[str], now: datetime, changed: bool
) -> dict[str, dict[str, TrendPoint]]:
    """Week -> key -> the week's registered, served and seconds, as `services.reads.weeks`
    counts them: in one query when the registry did not change since the first week (the usual
    case), a query a week otherwise."""
    parts = {
        "reg_key": g.reg_key,
        "reg_scope": g.reg_scope,
        "activity": _ACTIVITY.format(week_key=g.week_key, week_scope=g.week_scope),
        "seconds": _SECONDS.format(week_key=g.week_key, week_scope=g.week_scope),
        "excused": approved_weeks_sql("week IN %(weeks)s"),
    }
    if not changed:
        p = {**g.params, "weeks": weeks, "ends": [_last_day(w).isoformat() for w in weeks]}
        rows = wh.query(TREND_SQL.format(current=CURRENT_MEMBERS_SQL, **parts), p)
    else:
        rows = []
        for w in weeks:
            p = {**_week_params(g, w, now), "weeks": [w]}
            registered = registered_sql(g.reg_scope, p["cutoff"], now)
            sql = WEEK_SQL.format(registered=registered, **parts)
            rows += wh.query(sql, p)
    out: dict[str, dict[str, TrendPoint]] = {w: {} for w in weeks}
    for w, k, r, s, secs, e in rows:
        out[str(w)][str(k)] = TrendPoint(str(w), int(r), int(s), int(secs), int(e))
    return out


def drilldown(
    wh: Warehouse,
    scope: ScopeKind,
    scope_id: str | None,
    by: By,
    week: str,
    now: datetime,
    lapse_weeks: int = 4,
) -> list[DrillRow]:
    """One level of the drill-down for a week (see the module docstring), rows in natural order
    of their names, the empty key (no town, no grid) last. Rows of the level with no member
    yet are listed too (a new town, an empty grid)."""
    weeks = _weeks_back(week, TREND_WEEKS)
    since = week_cutoff(_last_day(weeks[0]), now)
    g, changed = grouping(wh, scope, scope_id, by, since)
    rows: dict[str, DrillRow] = {}

    def row(k: str) -> DrillRow:
        if k not in rows:
            rows[k] = DrillRow(k, g.names.get(k, k))
        return rows[k]

    if by in ("town", "grid"):
        for k in g.names:
            if k:
                row(k)
    if by == "community":
        for k in g.params.get("cs", [scope_id] if scope == "community" else []):
            row(k)
    trends = trend_of(wh, g, weeks, now, changed)
    for k, point in trends[week].items():
        r = row(k)
        r.registered, r.served, r.seconds = point.registered, point.served, point.seconds

    p = _week_params(g, week, now)
    # The lapsed rule's own window (services.counting), so the roll-ups and the unit's roster
    # count the same members as lapsed.
    p["lapse"] = lapse_window(_last_day(week), lapse_weeks)
    members = MEMBERS_SQL.format(
        reg_key=g.reg_key,
        registered=REGISTERED_SQL,
        excused=approved_weeks_sql("week = %(w)s"),
        as_of=members_as_of(p["cutoff"], now),
        reg_scope=g.reg_scope,
        no_shows=slot_weeks.NO_SHOWS_SQL,
    )
    monday = _last_day(week) - timedelta(days=6)
    p["from"], p["to"] = local_midnight(monday), local_midnight(monday + timedelta(days=7))
    wishes = WISHES_SQL.format(
        wish_key=g.wish_key, join=_FULFILLER if by == "grid" else "", wish_scope=g.wish_scope
    )
    # One round trip for both (each costs the engine a query's overhead).
    both = f"SELECT 'm', * FROM ({members}) UNION ALL SELECT 'w', k, 0, 0, n, 0, 0 FROM ({wishes})"
    for part, k, active, reported, n, excused, missed in wh.query(both, p):
        r = row(str(k))
        if part == "m":
            r.active, r.reported, r.lapsed = int(active), int(reported), int(n)
            r.excused, r.no_shows = int(excused), int(missed)
        else:
            r.wishes_fulfilled = int(n)

    for r in rows.values():
        r.trend = [trends[w].get(r.key, TrendPoint(w, 0, 0, 0)) for w in weeks]
    named = natural_sorted([r for r in rows.values() if r.key], key=lambda r: r.name)
    return named + [r for r in rows.values() if not r.key]


def total(rows: list[DrillRow]) -> DrillRow:
    """The level's total row: the parent's figures (every count is per member and week, and a
    member is in one row of a level, so the rows add up)."""
    t = DrillRow("", "合计")
    for r in rows:
        t.registered += r.registered
        t.served += r.served
        t.seconds += r.seconds
        t.active += r.active
        t.reported += r.reported
        t.wishes_fulfilled += r.wishes_fulfilled
        t.lapsed += r.lapsed
        t.excused += r.excused
        t.no_shows += r.no_shows
    if rows:
        weeks = [p.week for p in rows[0].trend]
        t.trend = [
            TrendPoint(
                w,
                sum(r.trend[i].registered for r in rows),
                sum(r.trend[i].served for r in rows),
                sum(r.trend[i].seconds for r in rows),
                sum(r.trend[i].excused for r in rows),
            )
            for i, w in enumerate(weeks)
        ]
    return t


# ---- the heatmap -------------------------------------------------------------------------

HEATMAP_SQL = """
    SELECT station_id, hour_of_week, uniqExactMerge(scans) FROM checkin_hours
    WHERE week IN %(weeks)s AND {scope}
    GROUP BY station_id, hour_of_week
"""
STATIONS_SQL = "SELECT id, name, community_id FROM stations FINAL WHERE {scope}"


@dataclass(frozen=True)
class HeatRow:
    station_id: str
    name: str
    community_id: str
    counts: list[int]  # 168 hours of the week, Monday 00:00 (local) first

    @property
    def total(self) -> int:
        return sum(self.counts)


def heatmap(
    wh: Warehouse,
    community_ids: list[str] | None,
    week: str,
    weeks: int = TREND_WEEKS,
    town_id: str | None = None,
) -> tuple[list[str], list[HeatRow]]:
    """Check-ins per station and local hour of the week over the `weeks` weeks ending with
    `week`, for the stations of these communities (None: all); every station listed, busiest
    first. Returns the weeks and the rows."""
    span = _weeks_back(week, weeks)
    if community_ids is not None and not community_ids and town_id is None:
        return span, []
    p: dict[str, Any] = {"weeks": span, "cs": community_ids or [], "t": town_id}
    scope = "1" if community_ids is None else "station_community_id IN %(cs)s"
    st_scope = "1" if community_ids is None else "community_id IN %(cs)s"
    if town_id is not None:  # a town's stations, by subquery (see _IN_TOWN)
        scope = f"station_community_id IN {_IN_TOWN}"
        st_scope = f"community_id IN {_IN_TOWN}"
    counts: dict[str, list[int]] = {}
    for sid, hour, n in wh.query(HEATMAP_SQL.format(scope=scope), p):
        counts.setdefault(str(sid), [0] * 168)[int(hour)] = int(n)
    rows = [
        HeatRow(str(i), str(n), str(c), counts.get(str(i), [0] * 168))
        for i, n, c in wh.query(STATIONS_SQL.format(scope=st_scope), p)
    ]
    rows.sort(key=lambda r: (-r.total, r.name))
    return span, rows
