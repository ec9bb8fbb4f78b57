"""A member's own figures: the year's hours, their breakdown, the sessions list, this week.

Every figure here reads `sessions FINAL` (a session's latest revision) through the rules of
`services.counting`: a voided, open or rejected session credits nothing, an unadjusted anomaly
is not a service, and a session belongs to the calendar year of its local start date. The ISO
week read (`week_stations`) reads the session agent's weekly rows, which apply the same rule in
the agent (`contributes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from services.counting import (
    BELOW_MINIMUM_SQL,
    COUNTED_SQL,
    CREDITS_SQL,
    SECONDS_SQL,
    TZ,
    YEAR_SQL,
    hours,
    local_week_start,
)
from services.reads._rows import utc
from services.timeutil import local_midnight
from services.warehouse.client import Warehouse


@dataclass(frozen=True)
class Totals:
    sessions: int
    seconds: int

    @property
    def hours(self) -> float:
        return hours(self.seconds)


def year_totals(wh: Warehouse, member_id: str, year: int) -> Totals:
    """Counted sessions and credited seconds of the sessions that began in the local `year`."""
    rows = wh.query(
        f"""
        SELECT sum({SECONDS_SQL}), countIf({COUNTED_SQL})
        FROM sessions FINAL
        WHERE member_id = %(m)s AND {YEAR_SQL} = %(y)s
        """,
        {"m": member_id, "y": year},
    )
    seconds, count = rows[0] if rows else (0, 0)
    return Totals(int(count or 0), int(seconds or 0))


@dataclass(frozen=True)
class Bucket:
    period: str
    sessions: int
    seconds: int

    @property
    def hours(self) -> float:
        return hours(self.seconds)


@dataclass(frozen=True)
class Breakdown:
    total: Totals
    by_week: list[Bucket]
    by_month: list[Bucket]


def year_breakdown(wh: Warehouse, member_id: str, year: int) -> Breakdown:
    """The year's sessions (as `year_totals` counts them) by ISO week and by local month; the
    weeks at the year's edges hold only the days of the year (periods with no service left
    out)."""
    rows = wh.query(
        f"""
        SELECT formatDateTime(toMonday(toDate(start, '{TZ}')), '%%G-W%%V') AS week,
               formatDateTime(toDate(start, '{TZ}'), '%%Y-%%m') AS month,
               sum({SECONDS_SQL}), countIf({COUNTED_SQL})
        FROM sessions FINAL
        WHERE member_id = %(m)s AND {YEAR_SQL} = %(y)s AND {CREDITS_SQL}
        GROUP BY week, month
        ORDER BY week, month
        """,
        {"m": member_id, "y": year},
    )

    def buckets(index: int) -> list[Bucket]:
        acc: dict[str, list[int]] = {}
        for row in rows:
            a = acc.setdefault(str(row[index]), [0, 0])
            a[0] += int(row[2])
            a[1] += int(row[3])
        # A period whose only sessions do not count (an anomaly not yet adjusted) had no service.
        return [Bucket(k, n, s) for k, (s, n) in sorted(acc.items()) if n or s]

    total = Totals(sum(int(r[3]) for r in rows), sum(int(r[2]) for r in rows))
    return Breakdown(total, buckets(0), buckets(1))


SESSION_COLUMNS = "session_id, station_id, start, end, credited_seconds, status, flags"


def session_item(r: dict[str, Any]) -> dict[str, Any]:
    """A session row as the API lists it (hours by the one rounding)."""
    return {
        "id": r["session_id"],
        "station_id": r["station_id"],
        "start": utc(r["start"]),
        "end": utc(r["end"]),
        "hours": hours(int(r["credited_seconds"])),
        "status": r["status"],
        "flags": list(r["flags"]),
    }


def sessions_page(
    wh: Warehouse,
    member_id: str,
    first_day: date | None,
    last_day: date | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """The member's sessions (not voided: a voided revision no longer exists) that began
    between two local days, newest first, and how many there are."""
    params: dict[str, Any] = {"m": member_id}
    where = "member_id = %(m)s AND voided = 0"
    if first_day is not None:
        where += " AND start >= %(a)s"
        params["a"] = local_midnight(first_day)
    if last_day is not None:
        where += " AND start < %(b)s"
        params["b"] = local_midnight(last_day + timedelta(days=1))
    rows = wh.query_dicts(
        f"SELECT {SESSION_COLUMNS} FROM sessions FINAL WHERE {where} "
        f"ORDER BY start DESC, session_id LIMIT {int(limit)} OFFSET {int(offset)}",
        params,
    )
    total = wh.query(f"SELECT count() FROM sessions FINAL WHERE {where}", params)
    return [session_item(r) for r in rows], int(total[0][0])


def week_bounds(now: datetime) -> tuple[datetime, datetime]:
    """Monday 00:00 to the next Monday 00:00 in Asia/Shanghai, as UTC instants."""
    monday = local_week_start(now)
    return local_midnight(monday), local_midnight(monday + timedelta(days=7))


@dataclass(frozen=True)
class ThisWeek:
    start: datetime
    totals: Totals
    open_sessions: int
    scans: int
    # Sessions credited below the weekly minimum that no organizer approved yet.
    below_minimum: int = 0
    # When the earliest open session began: the phone shows how long it has run.
    open_since: datetime | None = None


def this_week(wh: Warehouse, member_id: str, now: datetime) -> ThisWeek:
    """The current ISO week's counted sessions, credited seconds, open sessions and scans."""
    start, end = week_bounds(now)
    params = {"m": member_id, "a": start, "b": end}
    rows = wh.query(
        f"""
        SELECT countIf({COUNTED_SQL}), sum({SECONDS_SQL}), countIf(status = 'open' AND voided = 0),
               countIf({BELOW_MINIMUM_SQL}), minIf(start, status = 'open' AND voided = 0)
        FROM sessions FINAL
        WHERE member_id = %(m)s AND start >= %(a)s AND start < %(b)s
        """,
        params,
    )
    counted, seconds, open_count, short, open_since = rows[0] if rows else (0, 0, 0, 0, None)
    scans = wh.query(
        """
        SELECT count() FROM checkins FINAL
        WHERE member_id = %(m)s AND scanned_at >= %(a)s AND scanned_at < %(b)s
        """,
        params,
    )
    return ThisWeek(
        start=start,
        totals=Totals(int(counted or 0), int(seconds or 0)),
        open_sessions=int(open_count or 0),
        scans=int(scans[0][0]) if scans else 0,
        below_minimum=int(short or 0),
        open_since=utc(open_since) if open_count else None,
    )


@dataclass(frozen=True)
class StationTotals:
    station_id: str
    sessions: int
    seconds: int

    @property
    def hours(self) -> float:
        return hours(self.seconds)


def week_stations(wh: Warehouse, member_id: str, week: str) -> list[StationTotals]:
    """One member's ISO week by station, from the agent's weekly rows."""
    rows = wh.query(
        # One row per station: a member who moved that week has a row per unit at a station.
        "SELECT station_id, sum(sessions), sum(credited_seconds) FROM member_weeks FINAL "
        "WHERE week = %(w)s AND member_id = %(m)s GROUP BY station_id ORDER BY station_id",
        {"w": week, "m": member_id},
    )
    return [StationTotals(str(s), int(n), int(secs)) for s, n, secs in rows]
