"""Reading one unit's annual assessment out of the warehouse, a page of members at a time.

The assessment year is the ISO week-year (Monday to Sunday weeks, Asia/Shanghai): hours,
sessions and active weeks all count the same 52 or 53 weeks, so the weekly target and the year's
totals agree. Service counts for the unit the member belonged to when it was done (the scan
carries the unit), so a member who moved keeps their earlier hours with the earlier unit.
Everything read here is a small, keyed slice: one unit's rows of one year in `unit_member_weeks`, and
the same page of members in the registry, feedback and wishes tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from services.assessment import (
    BUILTIN_RULES,
    AssessmentRules,
    MemberFacts,
    required_weeks,
    score,
)
from services.timeutil import LOCAL_TZ
from services.warehouse.client import Warehouse


@dataclass(frozen=True)
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


def rules_versions(wh: Warehouse) -> dict[int, AssessmentRules]:
    """Built-in versions plus those the admin added; a version is never changed once it exists."""
    out = dict(BUILTIN_RULES)
    for version, payload in wh.query("SELECT version, rules FROM assessment_rules FINAL"):
        out.setdefault(int(version), AssessmentRules.model_validate_json(payload))
    return dict(sorted(out.items()))


def _week_bounds(year: int) -> tuple[str, str]:
    return f"{year}-W01", f"{year}-W53"


def _today_local() -> date:
    return datetime.now(UTC).astimezone(LOCAL_TZ).date()


_MEMBERS_OF_YEAR = """
    SELECT id FROM members FINAL WHERE unit_id = %(u)s
    UNION DISTINCT
    SELECT DISTINCT member_id AS id FROM unit_member_weeks FINAL
    WHERE week >= %(w0)s AND week <= %(w1)s AND unit_id = %(u)s
"""


def count_members(wh: Warehouse, unit_id: str, year: int) -> int:
    w0, w1 = _week_bounds(year)
    rows = wh.query(f"SELECT count() FROM ({_MEMBERS_OF_YEAR})", {"u": unit_id, "w0": w0, "w1": w1})
    return int(rows[0][0])


def page(
    wh: Warehouse,
    unit_id: str,
    year: int,
    rules: AssessmentRules,
    limit: int,
    offset: int,
    today: date | None = None,
) -> list[AssessmentItem]:
    w0, w1 = _week_bounds(year)
    p: dict[str, Any] = {"u": unit_id, "w0": w0, "w1": w1, "y": year}
    ids = [
        r[0]
        for r in wh.query(
            f"SELECT id FROM ({_MEMBERS_OF_YEAR}) ORDER BY id LIMIT {int(limit)} OFFSET {int(offset)}",
            p,
        )
    ]
    if not ids:
        return []
    p["ids"] = ids
    members = {
        r[0]: r
        for r in wh.query(
            "SELECT id, name, community_id, reported_on FROM members FINAL WHERE id IN %(ids)s", p
        )
    }
    weeks = {
        r[0]: r
        for r in wh.query(
            """
            SELECT member_id, sum(s), sum(c), countIf(s > 0) FROM (
                SELECT member_id, week, sum(sessions) AS s, sum(credited_seconds) AS c
                FROM unit_member_weeks FINAL
                WHERE week >= %(w0)s AND week <= %(w1)s AND unit_id = %(u)s
                  AND member_id IN %(ids)s
                GROUP BY member_id, week)
            GROUP BY member_id
            """,
            p,
        )
    }
    wishes = dict(
        wh.query(
            """
            SELECT fulfilled_by_member_id, count() FROM wishes FINAL
            WHERE status IN ('done', 'confirmed') AND fulfilled_by_member_id IN %(ids)s
              AND toISOYear(toDate(done_at, 'Asia/Shanghai')) = %(y)s
            GROUP BY fulfilled_by_member_id
            """,
            p,
        )
    )
    feedback = dict(
        wh.query(
            """
            SELECT member_id, avg(rating) FROM feedback FINAL
            WHERE kind = 'member_service' AND rating IS NOT NULL AND member_id IN %(ids)s
              AND unit_id = %(u)s AND toISOYear(period_start) = %(y)s
            GROUP BY member_id
            """,
            p,
        )
    )
    summaries: dict[str, list[dict[str, Any]]] = {}
    for member_id, period, grade, comment, community_id in wh.query(
        """
        SELECT member_id, period, grade, comment, community_id FROM feedback FINAL
        WHERE kind = 'unit_summary' AND member_id IN %(ids)s AND unit_id = %(u)s
          AND toISOYear(period_start) = %(y)s
        ORDER BY member_id, period_end, period
        """,
        p,
    ):
        summaries.setdefault(member_id, []).append(
            {"period": period, "grade": grade, "comment": comment, "community_id": community_id}
        )
    last_day = date.fromisocalendar(year, date(year, 12, 28).isocalendar()[1], 7)
    as_of = min(today or _today_local(), last_day)
    items = []
    for mid in ids:
        m = members.get(mid)
        w = weeks.get(mid)
        graded = [s for s in summaries.get(mid, []) if s["grade"]]
        facts = MemberFacts(
            hours=round(int(w[2]) / 3600, 2) if w else 0.0,
            sessions=int(w[1]) if w else 0,
            active_weeks=int(w[3]) if w else 0,
            required_weeks=required_weeks(year, m[3] if m else None, as_of),
            wishes_fulfilled=int(wishes.get(mid, 0)),
            feedback_avg=round(float(feedback[mid]), 2) if mid in feedback else None,
            # The latest summary of the year is the community's verdict on the year.
            evaluation=graded[-1]["grade"] if graded else None,
        )
        s = score(facts, rules)
        items.append(
            AssessmentItem(
                member_id=mid,
                name=m[1] if m else "",
                community_id=m[2] if m else "",
                hours=facts.hours,
                sessions=facts.sessions,
                active_weeks=facts.active_weeks,
                required_weeks=facts.required_weeks,
                wishes_fulfilled=facts.wishes_fulfilled,
                feedback_avg=facts.feedback_avg,
                evaluation=facts.evaluation,
                score=s.score,
                grade=s.grade,
                components=s.components,
                summaries=summaries.get(mid, []),
            )
        )
    return items


def all_items(
    wh: Warehouse, unit_id: str, year: int, rules: AssessmentRules, page_size: int = 5000
) -> Iterator[AssessmentItem]:
    """Every member of the unit's year, fetched a page at a time (for streamed exports)."""
    offset = 0
    while True:
        batch = page(wh, unit_id, year, rules, page_size, offset)
        yield from batch
        if len(batch) < page_size:
            return
        offset += page_size


def rules_json(rules: AssessmentRules) -> str:
    return json.dumps(rules.model_dump(mode="json"), ensure_ascii=False, sort_keys=True)
