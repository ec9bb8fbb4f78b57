"""Excused weeks (请假): what an excused week is, when one may be asked for, and how a request
is decided. Pure rules, no I/O; the SQL that states the same rule over the `excusals` table sits
beside it (`APPROVED_WEEKS_SQL`), as `services.counting` keeps its fragments.

- A member asks to be excused for one or more ISO weeks (Asia/Shanghai) with a reason and an
  optional note. A week may be asked for from `LATE_DAYS` after it ended (a member back from a
  deployment asks afterwards) up to `AHEAD_WEEKS` weeks ahead (no open-ended leave).
- The organizer of the member's community (as it was when the request was made) approves or
  declines it; each request and each decision is an event on `excusals`, kept in ClickHouse.
  The first decision in time decides (by `occurred_at`, then event id): a second decision that
  raced the first is kept in the log and changes nothing, on every reader.
- An approved excused week is neither served nor missed: it leaves the week's not-served list
  and its rate's denominator, and the assessment's `required_weeks`.
- **Served wins**: a member who served in an excused week served it. The week counts as served
  (active, required, in the rate) and not as excused, so nobody is better off unexcused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from services.timeutil import LOCAL_TZ

Reason = Literal["business_trip", "sick", "training", "deployment", "other"]
REASONS: tuple[Reason, ...] = ("business_trip", "sick", "training", "deployment", "other")
# What members and organizers read (pages, exports).
REASON_LABELS: dict[str, str] = {
    "business_trip": "出差",
    "sick": "病假",
    "training": "培训",
    "deployment": "下沉/应急",
    "other": "其他",
}
Status = Literal["pending", "approved", "declined"]
STATUS_LABELS: dict[str, str] = {"pending": "待审批", "approved": "已批准", "declined": "未批准"}
Action = Literal["request", "approve", "decline"]
DECISIONS: tuple[Action, ...] = ("approve", "decline")

# A request may come up to this many days after the week's Sunday.
LATE_DAYS = 7
# And for weeks at most this many weeks after the current one.
AHEAD_WEEKS = 8
# Weeks in one request (a long absence is several requests, each decided on its own).
MAX_WEEKS = AHEAD_WEEKS + 2


class ExcusalRefused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _monday(week: str) -> date:
    return date.fromisocalendar(int(week[:4]), int(week[6:8]), 1)


def week_name(d: date) -> str:
    y, w, _ = d.isocalendar()
    return f"{y}-W{w:02d}"


def window(now: datetime) -> tuple[str, str]:
    """The first and last week a request made at `now` may name."""
    today = now.astimezone(LOCAL_TZ).date()
    # The latest week whose Sunday is at most LATE_DAYS ago: the Monday LATE_DAYS+6 days back.
    earliest = today - timedelta(days=LATE_DAYS + 6)
    this_monday = today - timedelta(days=today.weekday())
    latest = this_monday + timedelta(weeks=AHEAD_WEEKS)
    first = earliest + timedelta(days=(7 - earliest.weekday()) % 7)
    return week_name(first), week_name(latest)


def check_weeks(weeks: Iterable[str], now: datetime) -> list[str]:
    """The request's weeks, sorted and without repeats, if each may be asked for at `now`;
    `ExcusalRefused` naming the first that may not. Weeks arrive parsed (`YYYY-Www`, real)."""
    out = sorted(set(weeks))
    if not out:
        raise ExcusalRefused("invalid_weeks", "weeks: name at least one week")
    if len(out) > MAX_WEEKS:
        raise ExcusalRefused("invalid_weeks", f"weeks: at most {MAX_WEEKS} weeks in one request")
    first, last = window(now)
    for w in out:
        if _monday(w) < _monday(first):
            raise ExcusalRefused(
                "week_too_late",
                f"weeks: {w} ended more than {LATE_DAYS} days ago (the earliest is {first})",
            )
        if _monday(w) > _monday(last):
            raise ExcusalRefused(
                "week_too_far",
                f"weeks: {w} is more than {AHEAD_WEEKS} weeks ahead (the latest is {last})",
            )
    return out


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    occurred_at: datetime
    event_id: str


def status(decisions: Iterable[Decision]) -> tuple[Status, Decision | None]:
    """A request's status: the first decision in time decides; none yet, pending."""
    ds = sorted((d for d in decisions if d.action in DECISIONS), key=_order)
    if not ds:
        return "pending", None
    first = ds[0]
    return ("approved" if first.action == "approve" else "declined"), first


def _order(d: Decision) -> tuple[datetime, str]:
    return d.occurred_at, d.event_id


def excused(approved: bool, served: bool) -> bool:
    """Whether a member's week is excused: approved and not served (served wins)."""
    return approved and not served


def overlapping(weeks: Iterable[str], held: Iterable[str]) -> list[str]:
    """Weeks of a new request already covered by a pending or approved one (refused: a week is
    asked for once at a time; a declined week may be asked for again)."""
    return sorted(set(weeks) & set(held))


def excused_weeks_in_year(
    year: int,
    approved: Iterable[str],
    served: Iterable[str],
    reported_on: date | None,
    as_of: date,
) -> int:
    """The approved excused weeks that leave a year's `required_weeks`: weeks of ISO year
    `year` from the member's report week to `as_of`'s week (the weeks that are required at
    all), in which the member did not serve."""
    first = date.fromisocalendar(year, 1, 1)
    lo = max(first, reported_on or first)
    lo -= timedelta(days=lo.weekday())
    hi = as_of - timedelta(days=as_of.weekday())
    done = set(served)
    n = 0
    for w in set(approved):
        if int(w[:4]) != year or w in done:
            continue
        if lo <= _monday(w) <= hi:
            n += 1
    return n


# ---- the same rule in SQL, over the `excusals` table ------------------------------------

# Requests whose first decision in time is an approval.
APPROVED_REQUESTS_SQL = """
    SELECT request_id FROM excusals FINAL
    WHERE action IN ('approve', 'decline')
    GROUP BY request_id
    HAVING argMin(action, (occurred_at, event_id)) = 'approve'
"""


def approved_weeks_sql(where: str = "1") -> str:
    """`(member_id, week)` of every approved excused week (distinct) whose request matches
    `where` (over the request's columns: member_id, community_id, unit_id, and `week`). Served
    wins: the caller leaves out the weeks the member served (`excused`)."""
    return (
        "SELECT DISTINCT member_id, week FROM excusals FINAL ARRAY JOIN weeks AS week "
        f"WHERE action = 'request' AND ({where}) AND request_id IN ({APPROVED_REQUESTS_SQL})"
    )
