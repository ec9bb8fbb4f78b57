"""Reads of feedback, the three lists and campaigns: the aggregates behind the feedback, wishes
and campaign pages and the annual assessment. Every aggregate is computed at read time over
`FINAL` of a table keyed by the record id, restricted to one scope and one period: small, and
immune to duplicates.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from services.access import ListScope
from services.counting import COUNTED_SQL, CREDITS_SQL, SECONDS_SQL, TZ, hours
from services.events import Campaign, GridAssignment, ResourceFields, WishFields
from services.periods import Period
from services.processors.engagement import RESOURCE_COLUMNS, WISH_COLUMNS
from services.warehouse.client import Warehouse

# Sessions that carry credit (`services.counting`): kept under this name for older imports.
CREDITED = CREDITS_SQL


def _utc(row: dict[str, Any]) -> dict[str, Any]:
    # ClickHouse returns naive datetimes for DateTime64(3, 'UTC') columns.
    return {
        k: v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v
        for k, v in row.items()
    }


def _where(filters: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    parts, params = ["1"], {}
    for i, (clause, value) in enumerate(filters.items()):
        if value is None:
            continue
        parts.append(clause.replace("{p}", f"%(p{i})s"))
        params[f"p{i}"] = value
    return " AND ".join(parts), params


# ---- wishes and resources --------------------------------------------------------------


def wish(wh: Warehouse, wish_id: str) -> WishFields | None:
    rows = wh.query_dicts(
        f"SELECT {', '.join(WISH_COLUMNS)} FROM wishes FINAL WHERE wish_id = %(id)s LIMIT 1",
        {"id": wish_id},
    )
    return WishFields.model_validate(_utc(rows[0])) if rows else None


def resource(wh: Warehouse, resource_id: str) -> ResourceFields | None:
    rows = wh.query_dicts(
        f"SELECT {', '.join(RESOURCE_COLUMNS)} FROM resources FINAL "
        "WHERE resource_id = %(id)s LIMIT 1",
        {"id": resource_id},
    )
    return ResourceFields.model_validate(_utc(rows[0])) if rows else None


def list_wishes(
    wh: Warehouse, filters: dict[str, Any], limit: int, offset: int
) -> tuple[list[WishFields], int]:
    """`filters` maps an SQL clause with `{p}` for the value to the value (None: no filter)."""
    where, params = _where(filters)
    total = wh.query(f"SELECT count() FROM wishes FINAL WHERE {where}", params)[0][0]
    rows = wh.query_dicts(
        f"SELECT {', '.join(WISH_COLUMNS)} FROM wishes FINAL WHERE {where} "
        f"ORDER BY created_at DESC, wish_id LIMIT {int(limit)} OFFSET {int(offset)}",
        params,
    )
    return [WishFields.model_validate(_utc(r)) for r in rows], int(total)


def list_resources(
    wh: Warehouse, filters: dict[str, Any], limit: int, offset: int
) -> tuple[list[ResourceFields], int]:
    where, params = _where(filters)
    total = wh.query(f"SELECT count() FROM resources FINAL WHERE {where}", params)[0][0]
    rows = wh.query_dicts(
        f"SELECT {', '.join(RESOURCE_COLUMNS)} FROM resources FINAL WHERE {where} "
        f"ORDER BY created_at DESC, resource_id LIMIT {int(limit)} OFFSET {int(offset)}",
        params,
    )
    return [ResourceFields.model_validate(_utc(r)) for r in rows], int(total)


def rejections(wh: Warehouse, item_id: str) -> list[dict[str, Any]]:
    rows = wh.query_dicts(
        "SELECT command_event_id, action, actor_role, actor_id, code, reason, occurred_at "
        "FROM list_rejections FINAL WHERE item_id = %(id)s ORDER BY occurred_at",
        {"id": item_id},
    )
    return [_utc(r) for r in rows]


def transitions(wh: Warehouse, item_id: str) -> list[dict[str, Any]]:
    """The item's accepted transitions in the order the agent applied them."""
    rows = wh.query_dicts(
        "SELECT command_event_id, action, actor_role, actor_id, revision, status, reason, "
        "occurred_at FROM list_transitions FINAL WHERE item_id = %(id)s ORDER BY revision",
        {"id": item_id},
    )
    return [_utc(r) for r in rows]


def wishes_fulfilled(
    wh: Warehouse, year: int, *, member_id: str | None = None, unit_id: str | None = None
) -> dict[str, int]:
    """Wishes done (and possibly confirmed) in a local calendar year, per fulfilling member.

    This is the `wishes_fulfilled` figure of the annual assessment: a wish counts for the
    member whose session is its evidence, in the year it was done.
    """
    where, params = _where(
        {
            "fulfilled_by_member_id = {p}": member_id,
            "fulfilled_by_unit_id = {p}": unit_id,
        }
    )
    rows = wh.query(
        f"""
        SELECT fulfilled_by_member_id, count()
        FROM wishes FINAL
        WHERE {where} AND status IN ('done', 'confirmed')
          AND toYear(done_at, '{TZ}') = %(year)s
        GROUP BY fulfilled_by_member_id
        """,
        {**params, "year": year},
    )
    return {str(m): int(n) for m, n in rows}


# ---- feedback ----------------------------------------------------------------------------


def _avg(total: float, count: int) -> float | None:
    return round(total / count, 2) if count else None


def feedback_summary(wh: Warehouse, scope: str, scope_id: str, period: Period) -> dict[str, Any]:
    """Ratings and evaluations of one member, community or unit over one period.

    `scope` names the snapshotted column (member_id, community_id, unit_id); wish ratings come
    from confirmed wishes, attributed to the fulfilling member and unit and the wish's
    community, by the local day the resident confirmed.
    """
    column = {"member": "member_id", "community": "community_id", "unit": "unit_id"}[scope]
    wish_column = {
        "member": "fulfilled_by_member_id",
        "community": "community_id",
        "unit": "fulfilled_by_unit_id",
    }[scope]
    params = {"id": scope_id, "s": period.start, "e": period.end}
    rows = wh.query_dicts(
        f"""
        SELECT kind, member_id, community_id, period, rating, grade, comment, recorded_at
        FROM feedback FINAL
        WHERE {column} = %(id)s AND period_start >= %(s)s AND period_end <= %(e)s
        ORDER BY recorded_at
        """,
        params,
    )
    wish_rows = wh.query_dicts(
        f"""
        SELECT fulfilled_by_member_id AS member_id, rating
        FROM wishes FINAL
        WHERE {wish_column} = %(id)s AND status = 'confirmed' AND rating IS NOT NULL
          AND toDate(confirmed_at, 'Asia/Shanghai') >= %(s)s
          AND toDate(confirmed_at, 'Asia/Shanghai') < %(e)s
        """,
        params,
    )
    agg: dict[str, tuple[float, int]] = {}
    per_member: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "service_count": 0,
            "service_total": 0.0,
            "wish_count": 0,
            "wish_total": 0.0,
            "evaluations": [],
        }
    )
    grades: dict[str, int] = defaultdict(int)
    for r in rows:
        if r["rating"] is not None:
            total, count = agg.get(r["kind"], (0.0, 0))
            agg[r["kind"]] = (total + r["rating"], count + 1)
        m = per_member[r["member_id"]]
        if r["kind"] == "member_service" and r["rating"] is not None:
            m["service_count"] += 1
            m["service_total"] += r["rating"]
        if r["kind"] == "unit_summary" and r["grade"] is not None:
            grades[r["grade"]] += 1
            m["evaluations"].append(
                {
                    "period": r["period"],
                    "grade": r["grade"],
                    "comment": r["comment"],
                    "community_id": r["community_id"],
                }
            )
    wish_total, wish_count = 0.0, 0
    for w in wish_rows:
        wish_total += w["rating"]
        wish_count += 1
        if w["member_id"]:
            m = per_member[w["member_id"]]
            m["wish_count"] += 1
            m["wish_total"] += w["rating"]

    def stat(kind: str) -> dict[str, Any]:
        total, count = agg.get(kind, (0.0, 0))
        return {"count": count, "average": _avg(total, count)}

    members = [
        {
            "member_id": mid,
            "service": {
                "count": m["service_count"],
                "average": _avg(m["service_total"], m["service_count"]),
            },
            "wish_ratings": {
                "count": m["wish_count"],
                "average": _avg(m["wish_total"], m["wish_count"]),
            },
            "evaluations": m["evaluations"],
        }
        for mid, m in sorted(per_member.items())
        if mid
    ]
    return {
        "period": period.label,
        "member_service": stat("member_service"),
        "community_arrangement": stat("community_arrangement"),
        "wish_ratings": {"count": wish_count, "average": _avg(wish_total, wish_count)},
        "grades": dict(grades),
        "members": members,
    }


# ---- campaigns ---------------------------------------------------------------------------

CAMPAIGN_READ = (
    "id, version, name, community_id, starts_at, ends_at, count_community_stations, "
    "assignments, updated_at, updated_by"
)


def _campaign(row: dict[str, Any]) -> Campaign:
    row = _utc(row)
    row["assignments"] = [GridAssignment.model_validate(a) for a in json.loads(row["assignments"])]
    return Campaign.model_validate(row)


def campaign(wh: Warehouse, campaign_id: str) -> Campaign | None:
    rows = wh.query_dicts(
        f"SELECT {CAMPAIGN_READ} FROM campaigns FINAL WHERE id = %(id)s LIMIT 1",
        {"id": campaign_id},
    )
    return _campaign(rows[0]) if rows else None


def list_campaigns(
    wh: Warehouse, community_id: str | None, limit: int, offset: int
) -> tuple[list[Campaign], int]:
    where, params = _where({"community_id = {p}": community_id})
    total = wh.query(f"SELECT count() FROM campaigns FINAL WHERE {where}", params)[0][0]
    rows = wh.query_dicts(
        f"SELECT {CAMPAIGN_READ} FROM campaigns FINAL WHERE {where} "
        f"ORDER BY starts_at DESC, id LIMIT {int(limit)} OFFSET {int(offset)}",
        params,
    )
    return [_campaign(r) for r in rows], int(total)


def _members_in(scope: ListScope) -> tuple[str, dict[str, Any]]:
    """A condition on `members FINAL` rows: the members a caller with this scope may read (as
    the registry stands now, as every direct read of a member decides), and its parameters."""
    conds, params = ["1"], {}
    for column, value in (
        ("id", scope.member_id),
        ("community_id", scope.community_id),
        ("unit_id", scope.unit_id),
    ):
        if value is not None:
            conds.append(f"{column} = %(scope_{column})s")
            params[f"scope_{column}"] = value
    return " AND ".join(conds), params


def members_within(wh: Warehouse, member_ids: Iterable[str], scope: ListScope) -> set[str]:
    """Those of `member_ids` that a caller with this scope may read."""
    ids = sorted(set(member_ids))
    if scope.unconfined or not ids:
        return set(ids) if scope.unconfined else set()
    cond, params = _members_in(scope)
    rows = wh.query(
        f"SELECT id FROM members FINAL WHERE has(%(ids)s, id) AND {cond}", {"ids": ids, **params}
    )
    return {str(r[0]) for r in rows}


EVERYONE = ListScope()


def campaign_summary(wh: Warehouse, c: Campaign, scope: ListScope = EVERYONE) -> dict[str, Any]:
    """Who was assigned, who served and the hours credited during the campaign, counting only
    the members a caller with `scope` may read (the admin: everyone).

    A session is the campaign's when it started inside the campaign's period and its member was
    assigned directly, or it was done for a unit sent in (the unit the member had when it began:
    whose service, `services.counting`), or, with `count_community_stations`, it was at a
    station of the campaign's community. Its credited time counts in the hours whether or not it
    is a service; a member served with a counted session. The sessions themselves are untouched: the same hours
    still count in every total, and a later review of a session changes both at once. Members
    outside the scope (another community's, a unit's members elsewhere, visitors at the
    community's stations) are left out of every figure, so the summary tells nobody's hours or
    ids that a direct read would refuse.
    """
    cond, scope_params = _members_in(scope)
    member_grid: dict[str, str] = {}
    unit_grid: dict[str, str] = {}
    for a in c.assignments:
        for m in a.member_ids:
            member_grid.setdefault(m, a.grid_id)
        for u in a.unit_ids:
            unit_grid.setdefault(u, a.grid_id)
    if not scope.unconfined:
        inside = members_within(wh, member_grid, scope)
        member_grid = {m: g for m, g in member_grid.items() if m in inside}
    # A member assigned directly brings all their service in the period; one assigned through
    # their unit only the service done for that unit (whose service: services.counting), not
    # what they did for a unit they left since.
    direct = list(member_grid)
    if unit_grid:
        for mid, uid in wh.query(
            f"SELECT id, unit_id FROM members FINAL WHERE has(%(u)s, unit_id) AND {cond}",
            {"u": list(unit_grid), **scope_params},
        ):
            member_grid.setdefault(str(mid), unit_grid[str(uid)])
    within = (
        "" if scope.unconfined else f"AND member_id IN (SELECT id FROM members FINAL WHERE {cond})"
    )
    rows = wh.query(
        f"""
        SELECT member_id, sum({SECONDS_SQL}), countIf({COUNTED_SQL})
        FROM sessions FINAL
        WHERE start >= %(s)s AND start < %(e)s AND {CREDITS_SQL}
          AND (has(%(m)s, member_id) OR has(%(u)s, unit_id)
               OR (%(cs)s AND station_community_id = %(c)s))
          {within}
        GROUP BY member_id
        """,
        {
            "s": c.starts_at,
            "e": c.ends_at,
            "m": direct,
            "u": list(unit_grid),
            "cs": c.count_community_stations,
            "c": c.community_id,
            **scope_params,
        },
    )
    # Hours are time served (services.counting): a member's credited seconds in the campaign
    # count in its hours whether or not any session of theirs is a service yet (one credited
    # below the weekly minimum keeps its time); serving takes a counted session.
    credited = {str(m): (int(sec), int(n)) for m, sec, n in rows}
    served = {m: v for m, v in credited.items() if v[1] > 0}
    grids: dict[str, dict[str, Any]] = {}
    for a in c.assignments:
        grids.setdefault(
            a.grid_id, {"grid_id": a.grid_id, "assigned": set(), "served": set(), "seconds": 0}
        )
    for mid, gid in member_grid.items():
        grids[gid]["assigned"].add(mid)
        if mid in served:
            grids[gid]["served"].add(mid)
        grids[gid]["seconds"] += credited.get(mid, (0, 0))[0]
    total_seconds = sum(sec for sec, _ in credited.values())
    return {
        "campaign_id": c.id,
        "name": c.name,
        "community_id": c.community_id,
        "starts_at": c.starts_at,
        "ends_at": c.ends_at,
        "members_assigned": len(member_grid),
        "members_served": len(served),
        "assigned_members_served": len(set(served) & set(member_grid)),
        "sessions": sum(n for _, n in served.values()),
        "hours": hours(total_seconds),
        "not_served": sorted(set(member_grid) - set(served)),
        "by_grid": [
            {
                "grid_id": g["grid_id"],
                "members_assigned": len(g["assigned"]),
                "members_served": len(g["served"]),
                "hours": hours(g["seconds"]),
            }
            for g in grids.values()
        ],
    }
