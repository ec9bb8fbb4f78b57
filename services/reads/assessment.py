"""One unit's annual assessment out of the warehouse: a page, or the whole unit at once.

The year (`services.counting`): hours and sessions are the sessions that began in the calendar
year (local date, Asia/Shanghai), read from `unit_sessions` (one unit's sessions by key and
year partition); active weeks are the ISO weeks of the year (a week belongs to the year of its
Thursday), read from `unit_member_weeks`; wishes and feedback count by the local calendar year
of their date. Service counts for the unit the member belonged to when it was done (the scan
carries the unit onto the session and its weekly row), so a member who moved keeps their
earlier hours with the earlier unit. Everything read here is a keyed slice of one unit's year.
A page names its members; the whole-unit export reads each table once for the unit instead,
because a list of ten thousand ids costs more to send and parse than the rows it selects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.assessment import (
    BUILTIN_RULES,
    AssessmentRules,
    required_weeks,
    score_parts,
)
from services.counting import (
    COUNTED_SQL,
    RECORDED_SQL,
    SECONDS_SQL,
    TZ,
    YEAR_SQL,
    hours,
    iso_year_bounds,
    last_day_of_week_year,
    week_range,
)
from services.excused import approved_weeks_sql, excused_weeks_in_year
from services.privacy import mask_phone
from services.reads._rows import utc
from services.timeutil import LOCAL_TZ, local_midnight
from services.warehouse.client import Warehouse


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which made building
# a whole unit's items several times slower; nothing mutates them.
@dataclass(slots=True)
class AssessmentItem:
    member_id: str
    name: str
    community_id: str
    hours: float
    sessions: int
    active_weeks: int
    required_weeks: int
    wishes_fulfilled: int
    feedback_avg: float | None
    evaluation: str | None
    score: float | None
    grade: str
    components: dict[str, float]
    summaries: list[dict[str, Any]]
    # For the office's files: masked phone, party branch, the date the member reported.
    phone: str | None = None
    party_branch: str | None = None
    reported_on: date | None = None
    # Approved excused weeks (请假) not served, out of `required_weeks` already.
    excused_weeks: int = 0


def rules_versions(wh: Warehouse) -> dict[int, AssessmentRules]:
    """Built-in versions plus those the admin added; a version is never changed once it exists."""
    out = dict(BUILTIN_RULES)
    for version, payload in wh.query("SELECT version, rules FROM assessment_rules FINAL"):
        out.setdefault(int(version), AssessmentRules.model_validate_json(payload))
    return dict(sorted(out.items()))


def _today_local() -> date:
    return datetime.now(UTC).astimezone(LOCAL_TZ).date()


# The members of the unit's year: its members now, and whoever has a session row for the unit
# in the year (a weekly row of an ISO week of the year, or a session on the days of the calendar
# year that fall in another ISO year's weeks: a few days at each edge, so a cheap key range read
# without FINAL, where only the member ids matter).
_MEMBERS_OF_YEAR = f"""
    SELECT id FROM members FINAL WHERE unit_id = %(u)s
    UNION DISTINCT
    SELECT DISTINCT member_id AS id FROM unit_member_weeks FINAL
    WHERE week >= %(w0)s AND week <= %(w1)s AND unit_id = %(u)s
    UNION DISTINCT
    SELECT DISTINCT member_id AS id FROM unit_sessions
    WHERE unit_id = %(u)s AND {YEAR_SQL} = %(y)s AND (start < %(iso0)s OR start >= %(iso1)s)
"""

# Per member: counted sessions and credited seconds of the calendar year.
_SESSIONS = f"""
    SELECT member_id, countIf({COUNTED_SQL}), sum({SECONDS_SQL})
    FROM unit_sessions FINAL
    WHERE unit_id = %(u)s AND {YEAR_SQL} = %(y)s {{ids}}
    GROUP BY member_id
"""

# Per member: the ISO weeks of the year with a counted session. `sessions` is unsigned, so a
# week's total is positive exactly when one of its station rows is. The weeks are bits of a mask
# (week numbers 1..53 of one ISO year, from "YYYY-Www"): twice as fast as a distinct count of
# week names over a 10,000-member unit's year, and the mask says which weeks were served
# (an excused week served is served).
_WEEKS = """
    SELECT member_id,
           groupBitOrIf(bitShiftLeft(toUInt64(1), toUInt8(substring(week, 7, 2))), sessions > 0)
    FROM unit_member_weeks FINAL
    WHERE week >= %(w0)s AND week <= %(w1)s AND unit_id = %(u)s {ids}
    GROUP BY member_id
"""

# Ratings (member_service) and the community's periodic summaries (unit_summary) in one read.
_FEEDBACK = """
    SELECT member_id, kind, rating, period, grade, comment, community_id FROM feedback FINAL
    WHERE unit_id = %(u)s AND toYear(period_start) = %(y)s {ids}
      AND (kind = 'unit_summary' OR (kind = 'member_service' AND rating IS NOT NULL))
    ORDER BY member_id, period_end, period
"""

_WISHES = f"""
    SELECT fulfilled_by_member_id, count() FROM wishes FINAL
    WHERE status IN ('done', 'confirmed') AND ({{ids}})
      AND toYear(done_at, '{TZ}') = %(y)s
    GROUP BY fulfilled_by_member_id
"""

_MEMBERS = (
    "SELECT id, name, community_id, reported_on, phone, party_branch FROM members FINAL "
    "WHERE {where}"
)


def _excused(wh: Warehouse, where: str, p: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    sql = approved_weeks_sql(f"week >= %(w0)s AND week <= %(w1)s AND ({where})")
    for m, w in wh.query(sql, p):
        out.setdefault(str(m), []).append(str(w))
    return out


def count_members(wh: Warehouse, unit_id: str, year: int) -> int:
    rows = wh.query(f"SELECT count() FROM ({_MEMBERS_OF_YEAR})", _params(unit_id, year))
    return int(rows[0][0])


@dataclass
class _Year:
    """What the warehouse holds about some of the unit's members in one year, by member id."""

    members: dict[str, tuple[Any, ...]]
    sessions: dict[str, tuple[Any, ...]]
    weeks: dict[str, int]
    wishes: dict[str, int]
    # Approved excused weeks of the year, by member.
    excused: dict[str, list[str]]
    ratings: dict[str, list[int]]
    summaries: dict[str, list[dict[str, Any]]]


def _params(unit_id: str, year: int) -> dict[str, Any]:
    w0, w1 = week_range(year)
    iso0, iso1 = iso_year_bounds(year)
    return {"u": unit_id, "w0": w0, "w1": w1, "y": year, "iso0": iso0, "iso1": iso1}


def _feedback(wh: Warehouse, sql: str, p: dict[str, Any], year: _Year) -> None:
    for member_id, kind, rating, period, grade, comment, community_id in wh.query(sql, p):
        if kind == "member_service":
            year.ratings.setdefault(member_id, []).append(int(rating))
        else:
            year.summaries.setdefault(member_id, []).append(
                {"period": period, "grade": grade, "comment": comment, "community_id": community_id}
            )


def _read_page(wh: Warehouse, p: dict[str, Any]) -> _Year:
    """The members named in `p["ids"]` (a page: a short list)."""
    ids = "AND member_id IN %(ids)s"
    year = _Year(
        members={r[0]: r for r in wh.query(_MEMBERS.format(where="id IN %(ids)s"), p)},
        sessions={r[0]: r for r in wh.query(_SESSIONS.format(ids=ids), p)},
        weeks={r[0]: int(r[1]) for r in wh.query(_WEEKS.format(ids=ids), p)},
        wishes=dict(wh.query(_WISHES.format(ids="fulfilled_by_member_id IN %(ids)s"), p)),
        excused=_excused(wh, "member_id IN %(ids)s", p),
        ratings={},
        summaries={},
    )
    _feedback(wh, _FEEDBACK.format(ids=ids), p, year)
    return year


def _read_unit(wh: Warehouse, p: dict[str, Any]) -> tuple[list[str], _Year]:
    """Every member of the unit's year, one read of each table, and their ids in order."""
    members = {r[0]: r for r in wh.query(_MEMBERS.format(where="unit_id = %(u)s"), p)}
    sessions = {r[0]: r for r in wh.query(_SESSIONS.format(ids=""), p)}
    weeks = {r[0]: int(r[1]) for r in wh.query(_WEEKS.format(ids=""), p)}
    # Members who served for the unit this year and have moved to another since: usually few.
    moved = sorted((weeks.keys() | sessions.keys()) - members.keys())
    if moved:
        rows = wh.query(_MEMBERS.format(where="id IN %(moved)s"), {**p, "moved": moved})
        members.update((r[0], r) for r in rows)
    in_unit = "fulfilled_by_member_id IN (SELECT id FROM members FINAL WHERE unit_id = %(u)s)"
    if moved:
        in_unit += " OR fulfilled_by_member_id IN %(moved)s"
    year = _Year(
        members=members,
        sessions=sessions,
        weeks=weeks,
        wishes=dict(wh.query(_WISHES.format(ids=in_unit), {**p, "moved": moved})),
        # Every approved week of the year (a few per excused member, county-wide): a member's
        # weeks follow them whatever unit they asked in, as the page's read by ids does.
        excused=_excused(wh, "1", p),
        ratings={},
        summaries={},
    )
    # Feedback rows about members outside this year's set are never looked up.
    _feedback(wh, _FEEDBACK.format(ids=""), p, year)
    return sorted(members.keys() | weeks.keys() | sessions.keys()), year


def _items(
    ids: list[str], year: _Year, y: int, rules: AssessmentRules, today: date | None
) -> Iterator[AssessmentItem]:
    as_of = min(today or _today_local(), last_day_of_week_year(y))
    required: dict[date | None, int] = {}
    for mid in ids:
        m = year.members.get(mid)
        sess = year.sessions.get(mid)
        reported_on = m[3] if m else None
        if reported_on not in required:
            required[reported_on] = required_weeks(y, reported_on, as_of)
        ratings = year.ratings.get(mid)
        summaries = year.summaries.get(mid, [])
        graded = [s["grade"] for s in summaries if s["grade"]]
        year_hours = hours(int(sess[2])) if sess else 0.0
        mask = year.weeks.get(mid, 0)
        active_weeks = mask.bit_count()
        excused_weeks = excused_weeks_in_year(
            y,
            year.excused.get(mid, ()),
            (f"{y}-W{n:02d}" for n in range(1, 54) if mask >> n & 1),
            reported_on,
            as_of,
        )
        required_here = required[reported_on] - excused_weeks
        wishes = int(year.wishes.get(mid, 0))
        feedback_avg = round(sum(ratings) / len(ratings), 2) if ratings else None
        # The latest summary of the year is the community's verdict on the year.
        evaluation = graded[-1] if graded else None
        value, grade, components = score_parts(
            rules,
            hours=year_hours,
            active_weeks=active_weeks,
            required_weeks=required_here,
            wishes_fulfilled=wishes,
            feedback_avg=feedback_avg,
            evaluation=evaluation,
        )
        yield AssessmentItem(
            member_id=mid,
            name=m[1] if m else "",
            community_id=m[2] if m else "",
            hours=year_hours,
            sessions=int(sess[1]) if sess else 0,
            active_weeks=active_weeks,
            required_weeks=required_here,
            wishes_fulfilled=wishes,
            feedback_avg=feedback_avg,
            evaluation=evaluation,
            score=value,
            grade=grade,
            components=components,
            summaries=summaries,
            phone=mask_phone(m[4]) if m else None,
            party_branch=(m[5] or None) if m else None,
            reported_on=reported_on,
            excused_weeks=excused_weeks,
        )


def page(
    wh: Warehouse,
    unit_id: str,
    year: int,
    rules: AssessmentRules,
    limit: int,
    offset: int,
    today: date | None = None,
) -> tuple[list[AssessmentItem], int]:
    """One page of the unit's year in member order, and how many members the year has."""
    p = _params(unit_id, year)
    # The window count rides along with the page's ids: one pass over the member set, not two.
    rows = wh.query(
        f"SELECT id, count() OVER () FROM ({_MEMBERS_OF_YEAR}) "
        f"ORDER BY id LIMIT {int(limit)} OFFSET {int(offset)}",
        p,
    )
    if not rows:
        return [], count_members(wh, unit_id, year)
    ids = [r[0] for r in rows]
    items = list(_items(ids, _read_page(wh, {**p, "ids": ids}), year, rules, today))
    return items, int(rows[0][1])


def all_items(
    wh: Warehouse, unit_id: str, year: int, rules: AssessmentRules, today: date | None = None
) -> Iterator[AssessmentItem]:
    """Every member of the unit's year in member order, as the pages list them (for streamed
    exports). The unit's year is read up front in one pass (a few thousand small tuples); the
    items are built as the export consumes them."""
    return unit_year(wh, unit_id, year, rules, today)[1]


def unit_year(
    wh: Warehouse, unit_id: str, year: int, rules: AssessmentRules, today: date | None = None
) -> tuple[list[str], Iterator[AssessmentItem]]:
    """`all_items`, with the members' ids known before the first item is built (the access log
    names them before the file is answered)."""
    ids, facts = _read_unit(wh, _params(unit_id, year))
    return list(ids), _items(ids, facts, year, rules, today)


def rules_json(rules: AssessmentRules) -> str:
    return json.dumps(rules.model_dump(mode="json"), ensure_ascii=False, sort_keys=True)


# Name first, as an office reads a list; the phone masked (the office identifies, it does not
# call); the member id last, for matching rows against another system, never as the first thing
# a person reads.
EXPORT_HEADERS = [
    "姓名",
    "手机号码",
    "党支部",
    "报到日期",
    "居住社区",
    "服务时长（小时）",
    "服务次数",
    "实际服务周数",
    "应服务周数",
    "请假周数",
    "完成微心愿",
    "服务评价均分",
    "社区鉴定",
    "得分",
    "等次",
    "规则版本",
    "成员编号",
]
# Column widths in characters, in the order of EXPORT_HEADERS.
EXPORT_WIDTHS = [10, 14, 16, 12, 16, 10, 9, 12, 11, 9, 11, 13, 9, 7, 7, 9, 22]


def export_row(i: AssessmentItem, community_names: dict[str, str], version: int) -> list[Any]:
    """One member's row of the CSV/XLSX export (the JSON item's figures, Chinese headers)."""
    return [
        i.name,
        i.phone,
        i.party_branch,
        i.reported_on.isoformat() if i.reported_on else None,
        community_names.get(i.community_id, i.community_id),
        i.hours,
        i.sessions,
        i.active_weeks,
        i.required_weeks,
        i.excused_weeks,
        i.wishes_fulfilled,
        i.feedback_avg,
        i.evaluation,
        i.score,
        i.grade,
        version,
        i.member_id,
    ]


# ---- the quarterly card (季度纪实卡) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CardActivity:
    start: datetime
    station_name: str
    hours: float
    counted: bool


@dataclass(slots=True)
class QuarterCard:
    """One member's quarter for their unit, by the assessment's rules: hours and services by the
    local date a session began, weeks served by ISO week (a week in the quarter of its Thursday,
    so the four quarters' weeks are the ISO year's), wishes by the local date they were done,
    ratings and the community's evaluation whose span lies inside the quarter."""

    member_id: str
    unit_id: str
    quarter: str
    hours: float
    sessions: int
    weeks_served: int
    wishes_fulfilled: int
    feedback_avg: float | None
    feedback_count: int
    evaluation: str | None
    evaluation_comment: str | None
    activities: list[CardActivity]


def quarter_weeks(first_day: date, end: date) -> tuple[str, str]:
    """The first and last ISO week ("YYYY-Www") whose Thursday falls in [first_day, end)."""
    thursday = first_day + timedelta(days=(3 - first_day.weekday()) % 7)
    last = end - timedelta(days=1)
    last_thursday = last - timedelta(days=(last.weekday() - 3) % 7)

    def name(d: date) -> str:
        y, w, _ = d.isocalendar()
        return f"{y}-W{w:02d}"

    return name(thursday), name(last_thursday)


def member_quarter(
    wh: Warehouse, unit_id: str, member_id: str, first_day: date, end: date, label: str
) -> QuarterCard:
    """The member's service for the unit in the local days [first_day, end) (a quarter)."""
    w0, w1 = quarter_weeks(first_day, end)
    p = {
        "u": unit_id,
        "m": member_id,
        "a": local_midnight(first_day),
        "b": local_midnight(end),
        "d0": first_day,
        "d1": end,
        "w0": w0,
        "w1": w1,
    }
    sessions = wh.query(
        f"""
        SELECT s.start, ifNull(st.name, s.station_id), s.secs, s.counted
        FROM (SELECT start, station_id, {SECONDS_SQL} AS secs, {COUNTED_SQL} AS counted
              FROM unit_sessions FINAL
              WHERE unit_id = %(u)s AND member_id = %(m)s AND start >= %(a)s AND start < %(b)s
                AND {RECORDED_SQL}) AS s
        LEFT JOIN (SELECT id, name FROM stations FINAL) AS st ON st.id = s.station_id
        ORDER BY s.start
        """,
        p,
    )
    weeks = wh.query(
        "SELECT uniqExactIf(week, sessions > 0) FROM unit_member_weeks FINAL "
        "WHERE unit_id = %(u)s AND member_id = %(m)s AND week >= %(w0)s AND week <= %(w1)s",
        p,
    )
    wishes = wh.query(
        f"SELECT count() FROM wishes FINAL WHERE status IN ('done', 'confirmed') "
        f"AND fulfilled_by_member_id = %(m)s AND toDate(done_at, '{TZ}') >= %(d0)s "
        f"AND toDate(done_at, '{TZ}') < %(d1)s",
        p,
    )
    feedback = wh.query(
        "SELECT kind, rating, grade, comment FROM feedback FINAL "
        "WHERE unit_id = %(u)s AND member_id = %(m)s AND period_start >= %(d0)s "
        "AND period_end <= %(d1)s "
        "AND (kind = 'unit_summary' OR (kind = 'member_service' AND rating IS NOT NULL)) "
        "ORDER BY period_end, period",
        p,
    )
    ratings = [int(r) for kind, r, _, _ in feedback if kind == "member_service"]
    graded = [(g, c) for kind, _, g, c in feedback if kind == "unit_summary" and g]
    return QuarterCard(
        member_id=member_id,
        unit_id=unit_id,
        quarter=label,
        hours=hours(sum(int(s[2]) for s in sessions)),
        sessions=sum(1 for s in sessions if s[3]),
        weeks_served=int(weeks[0][0]) if weeks else 0,
        wishes_fulfilled=int(wishes[0][0]) if wishes else 0,
        feedback_avg=round(sum(ratings) / len(ratings), 2) if ratings else None,
        feedback_count=len(ratings),
        # The latest summary inside the quarter is the community's verdict on it.
        evaluation=graded[-1][0] if graded else None,
        evaluation_comment=(graded[-1][1] or None) if graded else None,
        activities=[
            CardActivity(utc(st) or st, str(name), hours(int(secs)), bool(counted))
            for st, name, secs, counted in sessions
        ],
    )
