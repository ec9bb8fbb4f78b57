"""Synthetic history for the read benchmark, straight into ClickHouse; then the naive baselines.

`python -m bench.gen_reads --sessions N` (run in its own process: chDB allows one process per
data folder, and the API takes the folder over afterwards). Tables and columns are those of
services/warehouse/migrations (migrated first):

- registry: 100 units (`u000` has 10,000 members), 18 communities `c00`..`c17`, 5 stations each,
  max(20,000, N/50) members `m0000000`.. (active, reported on 1 January);
- `sessions`: N closed sessions of this ISO year up to now, 30 to 180 minutes, spread over every
  member, at a station of the member's community; one revision each;
- `member_weeks`: the agent's rollup of those sessions (week, member, station), version 1.

Then, in this process and on the same engine, it times the naive figures over the raw
`sessions` table (no rollup) and the same reads the API makes over the rollup (the export with
its CSV encoding, the county's week through the county endpoint's query), and prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.assessment import BUILTIN_RULES
from services.counting import current_year
from services.exports import csv_chunks
from services.reads.assessment import EXPORT_HEADERS, all_items, export_row, page
from services.reads.registry import community_names
from services.reads.weeks import communities_week, community_week, parse_week
from services.settings import get_settings
from services.timeutil import iso_week
from services.warehouse.client import Warehouse, connect
from services.warehouse.migrate import migrate

BIG_UNIT = "u000"
BIG = 10_000
TZ = "Asia/Shanghai"
MEMBER = "concat('m', leftPad(toString({n}), 7, '0'))"
UNIT = f"if({{n}} < {BIG}, '{BIG_UNIT}', concat('u', leftPad(toString(1 + {{n}} % 99), 3, '0')))"
COMMUNITY = "concat('c', leftPad(toString({n} % 18), 2, '0'))"
WEEK = (
    f"concat(toString(toISOYear(toTimezone(start, '{TZ}'))), '-W', "
    f"leftPad(toString(toISOWeek(toTimezone(start, '{TZ}'))), 2, '0'))"
)


def generate(wh: Warehouse, n_sessions: int, n_members: int, now: datetime) -> None:
    year = now.year if now.isocalendar()[0] == now.year else now.isocalendar()[0]
    y0 = datetime.combine(date.fromisocalendar(year, 1, 1), datetime.min.time(), UTC) - timedelta(
        hours=8
    )
    span = max(3600, int((now - y0).total_seconds()) - 4 * 3600)
    t0 = int(y0.timestamp())
    tables = ("units", "communities", "stations", "members", "sessions", "member_weeks")
    for table in (*tables, "unit_sessions", "unit_member_weeks"):
        wh.command(f"TRUNCATE TABLE IF EXISTS {table}")
    wh.command(
        "INSERT INTO units (id, name, version, updated_at, updated_by) "
        "SELECT concat('u', leftPad(toString(number), 3, '0')), concat('单位', toString(number)), 1, now64(3), 'bench' FROM numbers(100)"
    )
    wh.command(
        "INSERT INTO communities (id, name, version, updated_at, updated_by) "
        "SELECT concat('c', leftPad(toString(number), 2, '0')), concat('社区', toString(number)), 1, now64(3), 'bench' FROM numbers(18)"
    )
    wh.command(
        "INSERT INTO stations (id, community_id, name, kind, version, updated_at, updated_by) "
        "SELECT concat('st', leftPad(toString(number), 3, '0')), concat('c', leftPad(toString(intDiv(number, 5)), 2, '0')), "
        "concat('服务站', toString(number)), 'service_station', 1, now64(3), 'bench' FROM numbers(90)"
    )
    n = "number"
    wh.command(
        "INSERT INTO members (id, name, unit_id, community_id, version, updated_at, updated_by, reported_on, status) "
        f"SELECT {MEMBER.format(n=n)}, concat('成员', toString(number)), {UNIT.format(n=n)}, {COMMUNITY.format(n=n)}, "
        f"1, now64(3), 'bench', toDate32('{year}-01-01'), 'active' FROM numbers({n_members})"
    )
    m = f"(number % {n_members})"
    wh.command(
        "INSERT INTO sessions (session_id, revision, member_id, unit_id, member_community_id, station_id, "
        "station_community_id, start, end, credited_seconds, status, flags, checkin_event_id, "
        "checkout_event_id, member_grid_id, voided, counted) "
        "SELECT concat('s', toString(number)), 1, "
        f"{MEMBER.format(n=m)}, {UNIT.format(n=m)}, {COMMUNITY.format(n=m)}, "
        f"concat('st', leftPad(toString(({m} % 18) * 5 + number % 5), 3, '0')), {COMMUNITY.format(n=m)}, "
        f"toDateTime64({t0} + (cityHash64(number) % {span}), 3, 'UTC') AS start, "
        "start + toIntervalSecond(1800 + cityHash64(number, 1) % 9000), "
        "toUInt32(1800 + cityHash64(number, 1) % 9000), 'closed', [], "
        "concat('ci', toString(number)), concat('co', toString(number)), NULL, 0, 1 "
        f"FROM numbers({n_sessions})",
    )
    wh.command(
        "INSERT INTO member_weeks (week, member_id, station_id, station_community_id, member_community_id, "
        "member_grid_id, unit_id, sessions, credited_seconds, version, as_of) "
        f"SELECT {WEEK} AS week, member_id, station_id, any(station_community_id), any(member_community_id), "
        "NULL, any(unit_id), toUInt32(count()), sum(credited_seconds), 1, max(end) "
        "FROM sessions GROUP BY week, member_id, station_id"
    )


def _time(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of `repeat` runs, in ms (one warm-up run first)."""
    fn()
    xs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        xs.append((time.perf_counter() - t) * 1000)
    return statistics.median(xs)


def naive_assessment(wh: Warehouse, year: int, limit: int | None) -> list[tuple[Any, ...]]:
    lim = f"LIMIT {limit}" if limit else ""
    return wh.query(
        f"""
        SELECT m.id, m.name, m.community_id, s.secs, s.n, s.weeks FROM members AS m FINAL
        LEFT JOIN (
            SELECT member_id, sum(credited_seconds) AS secs, countIf(counted = 1) AS n,
                   uniqExactIf(toStartOfWeek(toTimezone(start, '{TZ}'), 1), counted = 1) AS weeks
            FROM sessions FINAL
            WHERE unit_id = %(u)s AND toYear(toTimezone(start, '{TZ}')) = %(y)s
              AND voided = 0 AND status NOT IN ('open', 'rejected')
            GROUP BY member_id) AS s ON s.member_id = m.id
        WHERE m.unit_id = %(u)s ORDER BY m.id {lim}
        """,
        {"u": BIG_UNIT, "y": year},
    )


def naive_weekly(wh: Warehouse, community: str, week: str) -> list[tuple[Any, ...]]:
    return wh.query(
        f"""
        SELECT count(), countIf(n > 0), sum(secs) FROM (
            SELECT m.id, s.n AS n, s.secs AS secs FROM members AS m FINAL
            LEFT JOIN (
                SELECT member_id, countIf(counted = 1) AS n, sum(credited_seconds) AS secs
                FROM sessions FINAL
                WHERE {WEEK} = %(w)s
                  AND voided = 0 AND status NOT IN ('open', 'rejected')
                GROUP BY member_id) AS s ON s.member_id = m.id
            WHERE m.community_id = %(c)s AND m.status = 'active')
        """,
        {"c": community, "w": week},
    )


def rollup_weekly(wh: Warehouse, community: str, week: str, now: datetime) -> int:
    # The read GET /v1/communities/{id}/weekly makes (services.reads.weeks).
    _, end = parse_week(week)
    return community_week(wh, community, week, end, now).registered


def export_csv(wh: Warehouse, year: int) -> bytes:
    # What GET /v1/units/{id}/assessments?format=csv streams, gathered in memory.
    rules = BUILTIN_RULES[max(BUILTIN_RULES)]
    names = dict(community_names(wh))
    rows = (export_row(i, names, rules.version) for i in all_items(wh, BIG_UNIT, year, rules))
    return b"".join(csv_chunks(EXPORT_HEADERS, rows))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, required=True)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    s = get_settings()
    wh = connect(s)
    migrate(wh)
    now = datetime.now(UTC)
    n_members = max(20_000, a.sessions // 50)
    t = time.perf_counter()
    generate(wh, a.sessions, n_members, now)
    gen_s = time.perf_counter() - t
    # The assessment's hours and sessions are the calendar year's (services.counting).
    year = current_year(now)
    week = iso_week(now)
    _, end = parse_week(week)
    rules = BUILTIN_RULES[max(BUILTIN_RULES)]
    communities = [f"c{i:02d}" for i in range(18)]
    counts = wh.query("SELECT (SELECT count() FROM sessions), (SELECT count() FROM member_weeks)")[
        0
    ]
    out = {
        "sessions": int(counts[0]),
        "member_weeks": int(counts[1]),
        "members": n_members,
        "generate_s": gen_s,
        "naive_ms": {
            "assessment_page": _time(lambda: naive_assessment(wh, year, 100), a.repeat),
            "assessment_csv": _time(lambda: naive_assessment(wh, year, None), a.repeat),
            "weekly_18": _time(lambda: [naive_weekly(wh, c, week) for c in communities], a.repeat),
            "weekly_1": _time(lambda: naive_weekly(wh, "c00", week), a.repeat),
        },
        "rollup_ms": {
            "assessment_page": _time(lambda: page(wh, BIG_UNIT, year, rules, 100, 0), a.repeat),
            "assessment_csv": _time(lambda: export_csv(wh, year), a.repeat),
            "weekly_18": _time(lambda: communities_week(wh, week, end, None, now), a.repeat),
            "weekly_18_one_by_one": _time(
                lambda: [rollup_weekly(wh, c, week, now) for c in communities], a.repeat
            ),
            "weekly_1": _time(lambda: rollup_weekly(wh, "c00", week, now), a.repeat),
        },
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
