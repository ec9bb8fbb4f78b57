"""Rankings for the rotating red flag (流动红旗): communities and units, by month or quarter.

The rule, shown with every ranking: a score out of 100 from the participation rate (60), the
hours per member against one hour a week (25) and the average rating (15, a missing rating counts
as a neutral 3). The weeks of a period are the ISO weeks whose Thursday lies in it (the ISO rule
that gives every week to exactly one month), so weekly figures are never split or counted twice.
Ties are ranked equal (competition ranking: 1, 2, 2, 4), listed by name in natural order.
The flag goes to the first place, shared by a tie, and only when it was earned: an average
participation of at least `RED_FLAG_MIN_RATE` (a community where most members did not serve in
a typical week does not hold the county's award, however the others did).

A ranking without a period is the latest month whose weeks have all ended (`default_period`):
on Monday 30 November 2026 that is November (its weeks W45-W48 ended on Sunday the 29th),
before that October; a month still under way would rank part-weeks against whole ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from services.counting import registered_sql, week_cutoff
from services.natural import natural_key
from services.periods import Period, parse_period
from services.timeutil import local
from services.warehouse.client import Warehouse

Kind = Literal["communities", "units"]

W_RATE, W_HOURS, W_FEEDBACK = 60.0, 25.0, 15.0
HOURS_TARGET_PER_WEEK = 1.0
FEEDBACK_DEFAULT = 3.0
RED_FLAG_MIN_RATE = 0.5
RULE = {
    "version": 1,
    "weights": {"participation_rate": W_RATE, "hours_per_member": W_HOURS, "feedback": W_FEEDBACK},
    "hours_target_per_week": HOURS_TARGET_PER_WEEK,
    "feedback_default": FEEDBACK_DEFAULT,
    "red_flag_min_rate": RED_FLAG_MIN_RATE,
    "text": (
        "得分（满分100分）= 参与率×60 + min(人均服务时长÷(周数×1小时), 1)×25 + (平均评价−1)÷4×15；"
        "参与率为期内各周“已服务人数÷报到人数”的平均；无评价按3分计；"
        "期内的周为周四落在该期内的ISO周；得分相同名次相同；"
        "得分第一且平均参与率不低于50%者获得本期流动红旗（并列第一者共同获得）。"
    ),
}


def default_period(now: datetime) -> Period:
    """The latest month all of whose weeks (as `period_weeks` assigns them) have ended by
    `now` (local time): the month a ranking opens on."""
    today = local(now).date()
    month = parse_period(f"{today.year}-{today.month:02d}")
    for _ in range(3):
        weeks = period_weeks(month)
        last_sunday = date.fromisocalendar(int(weeks[-1][:4]), int(weeks[-1][6:]), 7)
        if last_sunday < today:
            return month
        first = month.start - timedelta(days=1)
        month = parse_period(f"{first.year}-{first.month:02d}")
    return month


def period_weeks(period: Period) -> list[str]:
    """ISO weeks (YYYY-Www) whose Thursday lies in [period.start, period.end)."""
    d = period.start
    # The first Thursday on or after the start.
    d += timedelta(days=(3 - d.weekday()) % 7)
    out = []
    while d < period.end:
        y, w, _ = d.isocalendar()
        out.append(f"{y}-W{w:02d}")
        d += timedelta(days=7)
    return out


@dataclass(frozen=True)
class Entry:
    id: str
    name: str
    members_registered: int
    participation_rate: float
    hours_per_member: float
    feedback_avg: float | None
    score: float


@dataclass(frozen=True)
class Placed:
    """An entry with its place: equal scores share a rank; the flag as `ranked` awards it."""

    rank: int
    red_flag: bool
    entry: Entry


def ranked(entries: list[Entry]) -> list[Placed]:
    """Competition ranking (1, 2, 2, 4) by score; a tie listed by name in natural order."""
    ordered = sorted(entries, key=lambda e: (-e.score, natural_key(e.name), e.id))
    out: list[Placed] = []
    for i, e in enumerate(ordered, 1):
        place = out[-1].rank if out and out[-1].entry.score == e.score else i
        flag = place == 1 and e.score > 0 and e.participation_rate >= RED_FLAG_MIN_RATE
        out.append(Placed(place, flag, e))
    return out


def score_entry(
    weekly_served: list[int], registered: int, hours: float, feedback: float | None, weeks: int
) -> tuple[float, float, float]:
    """(participation rate, hours per member, score) for one community or unit."""
    if registered <= 0 or weeks <= 0:
        return 0.0, 0.0, 0.0
    rate = sum(min(s, registered) / registered for s in weekly_served) / weeks
    per_member = hours / registered
    fb = feedback if feedback is not None else FEEDBACK_DEFAULT
    target = weeks * HOURS_TARGET_PER_WEEK
    s = W_RATE * rate + W_HOURS * min(per_member / target, 1.0) + W_FEEDBACK * (fb - 1) / 4
    return round(rate, 4), round(per_member, 2), round(s, 2)


def rank(wh: Warehouse, kind: Kind, period: Period) -> list[Placed]:
    weeks = period_weeks(period)
    key = "member_community_id" if kind == "communities" else "unit_id"
    member_key = "community_id" if kind == "communities" else "unit_id"
    table = "communities" if kind == "communities" else "units"
    p = {"weeks": weeks or [""], "end": period.end, "start": period.start}
    names = dict(wh.query(f"SELECT id, name FROM {table} FINAL"))
    # Registered as every weekly figure counts it (services.counting), as of the period's end.
    now = datetime.now(UTC)
    last_day = period.end - timedelta(days=1)
    cutoff = week_cutoff(last_day, now)
    registered = dict(
        wh.query(
            f"SELECT {member_key}, count() FROM ({registered_sql('1', cutoff, now)}) "
            f"GROUP BY {member_key}",
            {"end": last_day, "cutoff": cutoff},
        )
    )
    served: dict[str, list[int]] = {}
    hours: dict[str, float] = {}
    for entity, _week, n_served, seconds in wh.query(
        f"""
        SELECT {key}, week, uniqExactIf(member_id, s > 0), sum(c) FROM (
            SELECT {key}, week, member_id, sum(sessions) AS s, sum(credited_seconds) AS c
            FROM member_weeks FINAL WHERE week IN %(weeks)s
            GROUP BY {key}, week, member_id)
        GROUP BY {key}, week
        """,
        p,
    ):
        served.setdefault(entity, []).append(int(n_served))
        hours[entity] = hours.get(entity, 0.0) + int(seconds) / 3600
    feedback_kind = "community_arrangement" if kind == "communities" else "member_service"
    feedback_key = "community_id" if kind == "communities" else "unit_id"
    feedback = dict(
        wh.query(
            f"""
            SELECT {feedback_key}, avg(rating) FROM feedback FINAL
            WHERE kind = %(k)s AND rating IS NOT NULL
              AND period_start >= %(start)s AND period_end <= %(end)s
            GROUP BY {feedback_key}
            """,
            {**p, "k": feedback_kind},
        )
    )
    entries = []
    for entity_id, name in names.items():
        reg = int(registered.get(entity_id, 0))
        fb = round(float(feedback[entity_id]), 2) if entity_id in feedback else None
        rate, per_member, s = score_entry(
            served.get(entity_id, []), reg, hours.get(entity_id, 0.0), fb, len(weeks)
        )
        entries.append(Entry(entity_id, name, reg, rate, per_member, fb, s))
    return ranked(entries)
