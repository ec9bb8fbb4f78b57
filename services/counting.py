"""Each counting rule once: what counts, credited seconds, hours, "registered", the year.

Every read of the warehouse and every pure rule (the session agent's weekly totals, the
`SessionRecorded.counted` property, the simulator's truth) uses these definitions. Each SQL
fragment sits next to the Python rule it mirrors, and `tests/integration/test_counting_sql.py`
evaluates the fragment in chDB over every combination and compares it with the Python rule.

- **Counted** (a service: sessions count, the weekly target): not voided, not open, not
  rejected, not an anomaly (a check-out without a check-in) unless an organizer adjusted it, and
  not credited below the weekly minimum (`below_minimum`, stamped by the pairing rules from
  `WEEK_MIN_CREDITED_MIN`: a check-in and check-out minutes apart, a forgotten check-out credited
  0 h) unless an organizer approved or adjusted it. Its credited time still counts in hours.
- **Credited** (hours): `credited_seconds` of every session that is not voided, not open and not
  rejected; everything else credits 0. A voided revision is a session that re-pairing replaced by
  another (a late offline scan): it neither counts nor keeps its seconds, anywhere.
- **Hours**: seconds / 3600 rounded to two decimals (Python's `round`), once, on the total
  being shown (never a sum of rounded parts). Every figure is rounded from its own exact
  seconds, parts and totals alike, so one thing's figure (a grid's week, a member's week, a
  station's part) reads the same in every read that shows it. Parts shown beside their total
  (a community's stations and `elsewhere`, its grids, a campaign's grids, a member's weeks)
  may therefore differ from the total by rounding, by at most half a hundredth per figure
  (`parts_agree`): 0.02 + 0.02 h beside 0.03 h is two minutes served in two places. Not
  apportioned (largest remainder) so that the parts add up: a part would then differ from the
  same figure in its own read (the grid's week on the breakdown against the grid's weekly).
- **The year**: hours and sessions belong to the calendar year of the local (Asia/Shanghai) date
  of the session's start; weeks are ISO weeks (Asia/Shanghai), and a week belongs to the year of
  its Thursday (the year in its name, `2026-W01`), so active weeks of a year are that ISO year's.
- **Registered** in a community (grid, unit) in a week: the members whose registry record, as it
  stood at the end of that week (or now, for the current week), was active, in that community and
  had reported by the week's last day (or has no report date). Later changes (a member set to
  left today, moved) are undone from `registry_history`, so last week's figures do not move.
- **Whose service**: a session counts for the unit, community and grid the member had when the
  session began (carried by the scan onto the session and its weekly row), never the station's
  community and never the member's current one. A member's service at another community's station
  counts in the member's community; the station's community sees it as visiting service.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from services.timeutil import LOCAL_TZ, local, local_midnight

TZ = "Asia/Shanghai"

# Statuses that never credit: an open session has nothing yet, a rejected one never will.
NOT_CREDITED_STATUSES = ("open", "rejected")
# A check-out without its check-in credits 0 and counts only once an organizer adjusted it.
ANOMALY_FLAG = "checkout_without_checkin"
# Credited less than the weekly minimum when paired (services.sessions stamps it, so every copy
# of the session and every process agrees on it whatever its own settings): not a service until
# an organizer approved or adjusted it. A gesture (in and out minutes apart) meets no target.
BELOW_MINIMUM_FLAG = "below_minimum"
APPROVED_FLAG = "approved"


# ---- counted and credited ------------------------------------------------------------------


def credits(status: str, voided: bool) -> bool:
    """Whether a session's `credited_seconds` are hours anywhere."""
    return not voided and status not in NOT_CREDITED_STATUSES


def counted(status: str, flags: Iterable[str], voided: bool) -> bool:
    """Whether a session counts as a service (sessions count, the weekly target)."""
    if not credits(status, voided):
        return False
    if status == "adjusted":
        return True
    flags = tuple(flags)
    if ANOMALY_FLAG in flags:
        return False
    return BELOW_MINIMUM_FLAG not in flags or APPROVED_FLAG in flags


def below_minimum(status: str, flags: Iterable[str], voided: bool) -> bool:
    """Whether a session credits its time but is no service yet because it was credited below
    the weekly minimum and nobody approved it: what the member's week says still awaits."""
    flags = tuple(flags)
    return (
        credits(status, voided)
        and BELOW_MINIMUM_FLAG in flags
        and not counted(status, flags, voided)
    )


def present(status: str, voided: bool) -> bool:
    """Whether a session shows the member was there (a slot's attendance): any session not voided
    and not rejected, an open one too (the member is on site). Presence credits nothing by
    itself: hours and services stay the rules above."""
    return not voided and status != "rejected"


def recorded(status: str, flags: Iterable[str], voided: bool, seconds: int) -> bool:
    """Whether a session is a line of a record of service: every service, and a session
    credited below the minimum with some time (its time is in the year's hours, which the
    record equals; it is listed as such and not counted among the services)."""
    flags = tuple(flags)
    return counted(status, flags, voided) or (credits(status, voided) and seconds > 0)


def credited_seconds(status: str, voided: bool, seconds: int) -> int:
    return seconds if credits(status, voided) else 0


def contribution(status: str, flags: Iterable[str], voided: bool, seconds: int) -> tuple[int, int]:
    """(sessions, seconds) one session adds to any total."""
    return int(counted(status, flags, voided)), credited_seconds(status, voided, seconds)


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


# Over a `sessions` row (or any table with status, flags, voided, credited_seconds).
CREDITS_SQL = f"(voided = 0 AND status NOT IN ({_in(NOT_CREDITED_STATUSES)}))"
COUNTED_SQL = (
    f"({CREDITS_SQL} AND (status = 'adjusted' OR (NOT has(flags, '{ANOMALY_FLAG}')"
    f" AND (NOT has(flags, '{BELOW_MINIMUM_FLAG}') OR has(flags, '{APPROVED_FLAG}')))))"
)
PRESENT_SQL = "(voided = 0 AND status != 'rejected')"
SECONDS_SQL = f"if({CREDITS_SQL}, credited_seconds, 0)"
RECORDED_SQL = f"({COUNTED_SQL} OR ({CREDITS_SQL} AND credited_seconds > 0))"
BELOW_MINIMUM_SQL = f"({CREDITS_SQL} AND has(flags, '{BELOW_MINIMUM_FLAG}') AND NOT {COUNTED_SQL})"


def still_needed_seconds(
    served: bool, open_since: datetime | None, now: datetime, minimum_s: float
) -> int:
    """What a member still has to serve for the week's target: nothing once served; with a
    session open, the rest of the minimum in that session; otherwise one whole service of the
    minimum (short services do not add up: each one is a gesture until approved)."""
    if served:
        return 0
    done = (now - open_since).total_seconds() if open_since is not None else 0.0
    return max(0, int(-(-(minimum_s - max(0.0, done)) // 1)))


# ---- hours -----------------------------------------------------------------------------


def hours(seconds: int | float) -> float:
    """Credited seconds as hours: the one rounding used by every read, record and export."""
    return round(float(seconds) / 3600, 2)


def parts_agree(parts: Iterable[float], total: float) -> bool:
    """Whether hours shown as parts of a total agree with it: each part and the total rounded
    from exact seconds (`hours`), their difference is at most half a hundredth per figure, so
    (n + 1) / 2 hundredths for n parts, in whole hundredths."""
    shown = [round(p * 100) for p in parts]
    return abs(sum(shown) - round(total * 100)) <= (len(shown) + 1) // 2


def seconds_of_hours(h: float) -> int:
    """Hours an organizer typed (an adjustment) as whole seconds."""
    return round(h * 3600)


# ---- the year --------------------------------------------------------------------------


def session_year(start: datetime) -> int:
    """The year a session's hours and count belong to: its start's local calendar year."""
    return local(start).year


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """[Jan 1 00:00, next Jan 1 00:00) local, as UTC instants: the sessions of `year`."""
    return local_midnight(date(year, 1, 1)), local_midnight(date(year + 1, 1, 1))


# Over a `start` column: the same rule in SQL.
YEAR_SQL = f"toYear(start, '{TZ}')"

# The year rule as the member page, the record of service and the HR assessment state it.
YEAR_RULE = (
    "服务时长、服务次数、完成微心愿与评价按服务开始（完成）时间的北京时间日期所在自然年计入年度；"
    "服务周按ISO周（周一至周日）计，一周属于其周四所在的年度。"
)


def week_year(week: str) -> int:
    """The year an ISO week (`2026-W01`) belongs to: the year of its Thursday, as named."""
    return int(week[:4])


def week_range(year: int) -> tuple[str, str]:
    """First and last ISO week names of a year, for a range over `week` columns."""
    return f"{year}-W01", f"{year}-W53"


def weeks_in_year(year: int) -> int:
    return date(year, 12, 28).isocalendar()[1]


def iso_year_bounds(year: int) -> tuple[datetime, datetime]:
    """[Monday of week 1, Monday of the next year's week 1) local, as UTC instants."""
    return (
        local_midnight(date.fromisocalendar(year, 1, 1)),
        local_midnight(date.fromisocalendar(year + 1, 1, 1)),
    )


def last_day_of_week_year(year: int) -> date:
    return date.fromisocalendar(year, weeks_in_year(year), 7)


def current_year(now: datetime | None = None) -> int:
    return local(now or datetime.now(UTC)).year


# ---- registered ------------------------------------------------------------------------


def week_cutoff(last_day: date, now: datetime) -> datetime:
    """The instant whose registry state a week's "registered" uses: the end of the week's last
    local day, or now for a week not over yet."""
    return min(local_midnight(last_day + timedelta(days=1)), now)


def registered(status: str, reported_on: date | None, last_day: date) -> bool:
    """Whether a member record (as it stood at the week's cutoff) is registered that week."""
    return status == "active" and (reported_on is None or reported_on <= last_day)


# Over a member record (`status`, `reported_on`), with the week's last day as `%(end)s`.
REGISTERED_SQL = "(status = 'active' AND (reported_on IS NULL OR reported_on <= %(end)s))"

# The members' registry rows as they stood at `%(cutoff)s`: the current row with every field a
# later update changed put back to its value before the earliest such update. Creations after
# the cutoff are kept as created: a member entered today may have reported long ago, and
# `reported_on` (the business date) decides for them.
_LATER = """
    SELECT entity_id AS id,
           argMinIf(b, v, f = 'community_id') AS c_b, countIf(f = 'community_id') > 0 AS c_ch,
           argMinIf(b, v, f = 'unit_id') AS u_b, countIf(f = 'unit_id') > 0 AS u_ch,
           argMinIf(b, v, f = 'grid_id') AS g_b, countIf(f = 'grid_id') > 0 AS g_ch,
           argMinIf(b, v, f = 'status') AS s_b, countIf(f = 'status') > 0 AS s_ch,
           argMinIf(b, v, f = 'reported_on') AS r_b, countIf(f = 'reported_on') > 0 AS r_ch
    FROM (
        SELECT entity_id, version AS v, tupleElement(x, 1) AS f, tupleElement(x, 2) AS b
        FROM registry_history FINAL
        ARRAY JOIN arrayZip(fields, before) AS x
        WHERE entity_kind = 'member' AND operation = 'update' AND changed_at >= %(cutoff)s
          AND tupleElement(x, 1) IN ('community_id', 'unit_id', 'grid_id', 'status', 'reported_on')
    )
    GROUP BY entity_id
"""

MEMBERS_AS_OF_SQL = f"""
    SELECT m.id AS id,
           if(l.c_ch, JSONExtractString(ifNull(l.c_b, '""')), m.community_id) AS community_id,
           if(l.u_ch, JSONExtractString(ifNull(l.u_b, '""')), m.unit_id) AS unit_id,
           if(l.g_ch, if(ifNull(l.g_b, 'null') = 'null', NULL,
                         JSONExtractString(ifNull(l.g_b, '""'))), m.grid_id) AS grid_id,
           if(l.s_ch, JSONExtractString(ifNull(l.s_b, '""')), toString(m.status)) AS status,
           if(l.r_ch, if(ifNull(l.r_b, 'null') = 'null', NULL,
                         toDate32OrNull(JSONExtractString(ifNull(l.r_b, '""')))),
              m.reported_on) AS reported_on
    FROM (SELECT id, community_id, unit_id, grid_id, status, reported_on FROM members FINAL) AS m
    LEFT JOIN ({_LATER}) AS l ON l.id = m.id
"""

CURRENT_MEMBERS_SQL = (
    "SELECT id, community_id, unit_id, grid_id, toString(status) AS status, reported_on "
    "FROM members FINAL"
)


def members_as_of(cutoff: datetime, now: datetime) -> str:
    """The members' registry rows (id, community_id, unit_id, grid_id, status, reported_on) as
    they stood at `%(cutoff)s`; the plain current rows when nothing can have changed since."""
    return CURRENT_MEMBERS_SQL if cutoff >= now else MEMBERS_AS_OF_SQL


def registered_sql(where: str, cutoff: datetime, now: datetime) -> str:
    """Ids (and community, grid) of the members registered at the cutoff matching `where` (over
    the as-of columns). Parameters: `%(cutoff)s`, `%(end)s` (the week's last local day)."""
    return (
        f"SELECT id, community_id, grid_id, unit_id FROM ({members_as_of(cutoff, now)}) "
        f"WHERE {REGISTERED_SQL} AND ({where})"
    )


def local_week_start(now: datetime) -> date:
    today = now.astimezone(LOCAL_TZ).date()
    return today - timedelta(days=today.weekday())


# ---- lapsed ------------------------------------------------------------------------------


def lapsed_cutoff(today: date, weeks: int) -> date:
    """The first day of the `weeks` full ISO weeks before the current one (`LAPSED_WEEKS`):
    a member with no counted service since this day, and reported by it, has lapsed."""
    return today - timedelta(days=today.weekday() + 7 * weeks)


def lapse_window(day: date, weeks: int) -> list[str]:
    """The ISO weeks (`YYYY-Www`, oldest first) the lapsed rule looks at from `day`'s week: the
    `weeks` full weeks before it and that week itself, from `lapsed_cutoff` on; for the reads
    that count lapsed members week by week (the roll-ups) rather than from a last service."""
    first = lapsed_cutoff(day, weeks)
    out = []
    for i in range(weeks + 1):
        y, w, _ = (first + timedelta(weeks=i)).isocalendar()
        out.append(f"{y}-W{w:02d}")
    return out


def lapsed(reported_on: date | None, last_service_day: date | None, cutoff: date) -> bool:
    """Whether a member who reported has gone `weeks` full weeks (and the current one so far)
    without a counted service; `last_service_day` is the local day their latest counted session
    began. A member who has not reported is not lapsed but unreported, and one who reported
    after the cutoff has not had the weeks yet."""
    if reported_on is None or reported_on > cutoff:
        return False
    return last_service_day is None or last_service_day < cutoff


# Over `reported_on` (Date, nullable) and `last_service` (the latest counted session's start,
# UTC, nullable), with `%(lapsed_cutoff)s` from `lapsed_cutoff`.
LAPSED_SQL = (
    "(reported_on IS NOT NULL AND reported_on <= %(lapsed_cutoff)s"
    f" AND (last_service IS NULL OR toDate(last_service, '{TZ}') < %(lapsed_cutoff)s))"
)
# Each member's latest counted session start (member_id, last_service), for LAPSED_SQL.
LAST_SERVICE_SQL = (
    f"SELECT member_id, max(start) AS last_service FROM sessions FINAL WHERE {COUNTED_SQL}"
    " AND member_id IN %(members)s GROUP BY member_id"
)
