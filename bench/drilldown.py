"""Benchmark 4b: the county's drill-down and heatmap (issue 15) against hand-written queries.

`python -m bench.drilldown --sessions 10000000 --members 200000` (defaults: 1 M and 20,000, for
a loaded machine). A fresh chDB folder (under `--work`, removed afterwards unless `--keep`),
migrated, then filled straight with `INSERT … SELECT FROM numbers()` following the migrations'
schemas: 2 towns, 18 communities (11 and 7), ~27 level-4 grids a community, 100 units, the
members (active, reported, each in a grid), N closed sessions of the last 10 weeks spread over
the members, `member_weeks` as the agent's rollup of them, `slot_weeks` as the slot-attendance job's tallies
(the no-shows), and a check-in scan per session (so `checkin_hours`, the heatmap's rollup, is
filled by its materialised view as the sink would).

Then, in this process and on the same engine, each drill-down the API answers (county by town,
a town by community, a community by grid, the county by unit, the county's heatmap) is timed
through `services.reads.drilldown` and against one hand-written query giving the same figures
from the same tables: a single statement, the registry as it stands (no as-of history), every
week of the trend in one scan. Goal: the read within 2x the hand-written query. Both sides are
checked to agree on the week's registered, served and seconds before timing. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from services.reads.drilldown import By, ScopeKind, _weeks_back, drilldown, heatmap
from services.settings import Settings
from services.timeutil import iso_week
from services.warehouse.client import Warehouse, connect
from services.warehouse.migrate import migrate

TZ = "Asia/Shanghai"
N_COMMUNITIES, GRIDS_PER, N_UNITS = 18, 27, 100
MEMBER = "concat('m', leftPad(toString({n}), 7, '0'))"
COMMUNITY = "concat('c', leftPad(toString({n} % 18), 2, '0'))"
GRID = "concat('g', leftPad(toString({n} % 18), 2, '0'), '_', toString(intDiv({n}, 18) % 27))"
UNIT = "concat('u', leftPad(toString({n} % 100), 3, '0'))"
WEEK = (
    f"concat(toString(toISOYear(toTimezone(start, '{TZ}'))), '-W', "
    f"leftPad(toString(toISOWeek(toTimezone(start, '{TZ}'))), 2, '0'))"
)


def generate(wh: Warehouse, n_sessions: int, n_members: int, now: datetime) -> None:
    t0 = int((now - timedelta(weeks=10)).timestamp())
    span = 10 * 7 * 86400 - 4 * 3600
    stamp = "1, now64(3), 'bench'"
    wh.command(
        "INSERT INTO towns (id, name, version, updated_at, updated_by) "
        f"VALUES ('t1', '巩昌镇', {stamp}), ('t2', '文峰镇', {stamp})"
    )
    wh.command(
        "INSERT INTO communities (id, name, town_id, version, updated_at, updated_by) "
        "SELECT concat('c', leftPad(toString(number), 2, '0')), concat('社区', toString(number)),"
        f" if(number < 11, 't1', 't2'), {stamp} FROM numbers({N_COMMUNITIES})"
    )
    wh.command(
        "INSERT INTO grids (id, community_id, name, level, parent_id, version, updated_at,"
        " updated_by) "
        f"SELECT {GRID.format(n='number')}, {COMMUNITY.format(n='number')},"
        f" concat('第', toString(intDiv(number, 18)), '网格'), 4, NULL, {stamp}"
        f" FROM numbers({N_COMMUNITIES * GRIDS_PER})"
    )
    wh.command(
        "INSERT INTO units (id, name, version, updated_at, updated_by) "
        f"SELECT {UNIT.format(n='number')}, concat('单位', toString(number)), {stamp}"
        f" FROM numbers({N_UNITS})"
    )
    wh.command(
        "INSERT INTO stations (id, community_id, name, kind, version, updated_at, updated_by) "
        "SELECT concat('st', leftPad(toString(number), 3, '0')),"
        " concat('c', leftPad(toString(intDiv(number, 5)), 2, '0')),"
        f" concat('服务站', toString(number)), 'service_station', {stamp} FROM numbers(90)"
    )
    n = "number"
    wh.command(
        "INSERT INTO members (id, name, unit_id, community_id, grid_id, version, updated_at,"
        " updated_by, reported_on, status) "
        f"SELECT {MEMBER.format(n=n)}, concat('成员', toString(number)), {UNIT.format(n=n)},"
        f" {COMMUNITY.format(n=n)}, {GRID.format(n=n)}, {stamp},"
        f" toDate32('{(now - timedelta(weeks=20)).date()}'), 'active' FROM numbers({n_members})"
    )
    # A member serves in two of every three weeks or so: spread sessions unevenly, so some
    # members lapse (the 3 in 10 with no session at all, and those whose sessions are older).
    m = f"(cityHash64(number, 7) % {(n_members * 7) // 10})"
    wh.command(
        "INSERT INTO sessions (session_id, revision, member_id, unit_id, member_community_id,"
        " station_id, station_community_id, start, end, credited_seconds, status, flags,"
        " checkin_event_id, checkout_event_id, member_grid_id, voided, counted) "
        "SELECT concat('s', toString(number)), 1, "
        f"{MEMBER.format(n=m)}, {UNIT.format(n=m)}, {COMMUNITY.format(n=m)}, "
        f"concat('st', leftPad(toString(({m} % 18) * 5 + number % 5), 3, '0')),"
        f" {COMMUNITY.format(n=m)}, "
        f"toDateTime64({t0} + (cityHash64(number) % {span}), 3, 'UTC') AS start, "
        "start + toIntervalSecond(1800 + cityHash64(number, 1) % 9000), "
        "toUInt32(1800 + cityHash64(number, 1) % 9000), 'closed', [], "
        f"concat('ci', toString(number)), concat('co', toString(number)), {GRID.format(n=m)},"
        f" 0, 1 FROM numbers({n_sessions})",
    )
    wh.command(
        "INSERT INTO member_weeks (week, member_id, station_id, station_community_id,"
        " member_community_id, member_grid_id, unit_id, sessions, credited_seconds, version,"
        " as_of) "
        f"SELECT {WEEK} AS week, member_id, station_id, any(station_community_id),"
        " any(member_community_id), any(member_grid_id), any(unit_id), toUInt32(count()),"
        " sum(credited_seconds), 1, max(end) FROM sessions GROUP BY week, member_id, station_id"
    )
    # The slot-attendance roll-up as its job tallies it: a member in five holds a place or two
    # in a week's slots, and misses one in three of those weeks.
    wh.command(
        "INSERT INTO slot_weeks (week, member_id, placed, attended, no_shows, event_id,"
        " decided_at) "
        f"SELECT week, {MEMBER.format(n='number')}, toUInt32(1 + cityHash64(number, week) % 2)"
        " AS p, toUInt32(p - n), toUInt32(cityHash64(number, week, 1) % 3 = 0) AS n, '',"
        " now64(3) FROM (SELECT DISTINCT week FROM member_weeks) AS w"
        f" CROSS JOIN numbers({n_members}) AS nums WHERE cityHash64(number, week, 2) % 5 = 0"
    )
    wh.command(
        "INSERT INTO checkins (event_id, member_id, station_id, station_community_id, unit_id,"
        " member_community_id, action, client_event_id, scanned_at, received_at) "
        "SELECT checkin_event_id, member_id, station_id, station_community_id, unit_id,"
        " member_community_id, 'in', checkin_event_id, start, start FROM sessions"
    )


# ---- the hand-written queries ---------------------------------------------------------------

# One statement per drill-down: the week's registered (current registry), served and seconds
# for every week of the trend in one scan of member_weeks, the lapsed and the reported. `{key}`
# over a member row (m.), `{wkey}` over a member_weeks row; communities as `c`.
HAND_SQL = """
WITH c AS (SELECT id, ifNull(town_id, '') AS town_id FROM communities FINAL),
m AS (
    SELECT id, community_id, grid_id, unit_id, reported_on, status FROM members FINAL
),
reg AS (
    SELECT m.id AS id, {key} AS k FROM m LEFT JOIN c ON c.id = m.community_id
    WHERE m.status = 'active' AND (m.reported_on IS NULL OR m.reported_on <= %(end)s) {scope}
),
w AS (
    SELECT week, member_id, {wkey} AS k, sum(sessions) AS n, sum(credited_seconds) AS secs
    FROM member_weeks AS mw FINAL LEFT JOIN c ON c.id = mw.member_community_id
    WHERE week IN %(weeks)s {wscope}
    GROUP BY week, member_id, k
),
served AS (
    SELECT DISTINCT member_id FROM w WHERE week IN %(lapse)s AND n > 0
)
SELECT 'week' AS part, w.week, w.k, uniqExactIf(w.member_id, w.n > 0 AND reg.id != ''),
       sum(w.secs), 0
FROM w LEFT JOIN reg ON reg.id = w.member_id AND reg.k = w.k
GROUP BY w.week, w.k
UNION ALL
SELECT 'reg', '', k, count(), countIf(id NOT IN (SELECT member_id FROM served)), 0
FROM reg GROUP BY k
UNION ALL
SELECT 'reported', '', {key}, count(), countIf(m.reported_on <= %(end)s), 0
FROM m LEFT JOIN c ON c.id = m.community_id WHERE m.status = 'active' {scope}
GROUP BY {key}
UNION ALL
SELECT 'noshow', '', reg.k, sum(ns.no_shows), 0, 0
FROM reg INNER JOIN (
    SELECT member_id, no_shows FROM slot_weeks FINAL WHERE week = %(w)s AND no_shows > 0
) AS ns ON ns.member_id = reg.id
GROUP BY reg.k
"""

HAND_HEATMAP_SQL = f"""
SELECT station_id,
       toUInt8((toDayOfWeek(toTimeZone(scanned_at, '{TZ}')) - 1) * 24
               + toHour(toTimeZone(scanned_at, '{TZ}'))) AS h,
       uniqExact(event_id)
FROM checkins
WHERE action = 'in' AND scanned_at >= %(from)s AND scanned_at < %(to)s
GROUP BY station_id, h
"""

SHAPES: dict[str, dict[str, str]] = {
    "county by town": {"key": "c.town_id", "wkey": "c.town_id", "scope": "", "wscope": ""},
    "town by community": {
        "key": "m.community_id",
        "wkey": "mw.member_community_id",
        "scope": "AND c.town_id = 't1'",
        "wscope": "AND c.town_id = 't1'",
    },
    "community by grid": {
        "key": "ifNull(m.grid_id, '')",
        "wkey": "ifNull(mw.member_grid_id, '')",
        "scope": "AND m.community_id = 'c00'",
        "wscope": "AND mw.member_community_id = 'c00'",
    },
    "county by unit": {"key": "m.unit_id", "wkey": "mw.unit_id", "scope": "", "wscope": ""},
}
READS: dict[str, tuple[ScopeKind, str | None, By]] = {
    "county by town": ("county", None, "town"),
    "town by community": ("town", "t1", "community"),
    "community by grid": ("community", "c00", "grid"),
    "county by unit": ("county", None, "unit"),
}


def hand(wh: Warehouse, shape: str, week: str, end: date) -> list[tuple[Any, ...]]:
    weeks = _weeks_back(week, 8)
    return wh.query(
        HAND_SQL.format(**SHAPES[shape]),
        {"weeks": weeks, "lapse": weeks[-4:], "end": end, "w": week},
    )


def _time(fn: Callable[[], object], repeat: int) -> float:
    fn()
    xs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        xs.append((time.perf_counter() - t) * 1000)
    return statistics.median(xs)


def _agree(ours: list[Any], theirs: list[tuple[Any, ...]], week: str) -> None:
    """The week's served and seconds per key, and registered, must be the same figures."""
    mine = {r.key: (r.served, r.seconds) for r in ours if r.served or r.seconds}
    hand_week = {
        str(k): (int(s), int(secs))
        for part, w, k, s, secs, _ in theirs
        if part == "week" and w == week and (int(s) or int(secs))
    }
    assert mine == hand_week, ("served/seconds differ", list(mine.items())[:3])
    reg = {str(k): int(n) for part, _, k, n, _, _ in theirs if part == "reg"}
    assert {r.key: r.registered for r in ours if r.registered} == reg, "registered differs"
    missed = {str(k): int(n) for part, _, k, n, _, _ in theirs if part == "noshow"}
    assert {r.key: r.no_shows for r in ours if r.no_shows} == missed, "no-shows differ"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=1_000_000)
    ap.add_argument("--members", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="drilldown-", dir=a.work))
    try:
        wh = connect(Settings(data_dir=root))
        migrate(wh)
        now = datetime.now(UTC)
        t = time.perf_counter()
        generate(wh, a.sessions, a.members, now)
        gen_s = time.perf_counter() - t
        week = iso_week(now - timedelta(weeks=1))
        _, wn, _ = (now - timedelta(weeks=1)).isocalendar()
        end = date.fromisocalendar(int(week[:4]), wn, 7)
        out: dict[str, Any] = {
            "sessions": a.sessions,
            "members": a.members,
            "member_weeks": int(wh.query("SELECT count() FROM member_weeks")[0][0]),
            "generate_s": round(gen_s, 1),
            "week": week,
            "reads": {},
        }
        for name, (scope, scope_id, by) in READS.items():

            def read(scope: ScopeKind = scope, scope_id: str | None = scope_id, by: By = by) -> Any:
                return drilldown(wh, scope, scope_id, by, week, now)

            def written(name: str = name) -> Any:
                return hand(wh, name, week, end)

            _agree(read(), written(), week)
            ms, hand_ms = _time(read, a.repeat), _time(written, a.repeat)
            out["reads"][name] = {"read_ms": ms, "hand_ms": hand_ms, "ratio": ms / hand_ms}
        monday = end - timedelta(days=6 + 7 * 7)
        span = {
            "from": datetime.combine(monday, datetime.min.time(), UTC) - timedelta(hours=8),
            "to": datetime.combine(end, datetime.min.time(), UTC) + timedelta(hours=16),
        }
        _, rows = heatmap(wh, None, week)
        total = sum(int(n) for *_, n in wh.query(HAND_HEATMAP_SQL, span))
        assert sum(r.total for r in rows) == total, "heatmap totals differ"
        ms = _time(lambda: heatmap(wh, None, week), a.repeat)
        hand_ms = _time(lambda: wh.query(HAND_HEATMAP_SQL, span), a.repeat)
        out["reads"]["county heatmap"] = {"read_ms": ms, "hand_ms": hand_ms, "ratio": ms / hand_ms}
        print(json.dumps(out))
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
