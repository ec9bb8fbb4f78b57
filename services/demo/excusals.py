"""The demo county's month of excused weeks (请假): over the three weeks before `now` and the
current one, a few members a week ask to be excused (出差, 培训, 下沉/应急 most often; 病假 and
其他 now and then) a few days before the week or, for a deployment, in the days after it; their
community's organizer approves most the next day, declines a few with a reason, and leaves the
current week's last requests pending.

Pure planning, deterministic in the seed: the events are the ones the API would have published
at those moments (ids derived from the seed, so a re-run publishes the same events and the sink
keeps one row each). Members with a planned scan in a week are not picked for it: served wins
anyway (`services.excused.excused`), and a demo reads better when the excused did not serve.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from services.demo.county import County
from services.events import ExcusalRecorded, derived_id
from services.excused import Reason, week_name
from services.timeutil import LOCAL_TZ

# Of a community's members, how many ask to be excused for a given week.
P_REQUEST = 0.03
REASONS: tuple[tuple[Reason, float, str], ...] = (
    ("business_trip", 0.35, "赴外地出差一周"),
    ("training", 0.25, "参加党校集中培训"),
    ("deployment", 0.2, "下沉防汛一线值守"),
    ("sick", 0.12, "住院治疗"),
    ("other", 0.08, "家中老人需要照顾"),
)
P_DECLINE = 0.1
DECLINE_REASON = "本周社区有集中服务活动，请调整时间"


@dataclass
class ExcusalPlan:
    events: list[ExcusalRecorded] = field(default_factory=list)
    requests: int = 0
    approved: int = 0
    declined: int = 0


def _reason(rng: random.Random) -> tuple[Reason, str]:
    x = rng.random()
    for reason, p, note in REASONS:
        if x < p:
            return reason, note
        x -= p
    return REASONS[-1][0], REASONS[-1][2]


def plan_excusals(
    county: County,
    ids: dict[str, str],
    now: datetime,
    seed: int,
    busy: set[tuple[str, date]] | None = None,
) -> ExcusalPlan:
    """`ids` maps the county's keys (communities, units, members) to server ids; `busy` holds
    (member key, local day) pairs with planned scans."""
    busy = busy or set()
    served_weeks = {(key, week_name(day)) for key, day in busy}
    plan = ExcusalPlan()
    today = now.astimezone(LOCAL_TZ).date()
    this_monday = today - timedelta(days=today.isoweekday() - 1)
    for back in (3, 2, 1, 0):
        monday = this_monday - timedelta(weeks=back)
        week = week_name(monday)
        for m in county.members:
            if (m.key, week) in served_weeks:
                continue
            rng = random.Random(f"{seed}:excusal:{m.key}:{week}")
            if rng.random() >= P_REQUEST:
                continue
            reason, note = _reason(rng)
            # A deployment is often asked for afterwards (up to 7 days late), the rest before.
            ask_day = (
                monday + timedelta(days=7 + rng.randrange(0, 3))
                if reason == "deployment"
                else monday - timedelta(days=rng.randrange(1, 5))
            )
            asked = datetime.combine(ask_day, time(8 + rng.randrange(0, 10)), LOCAL_TZ)
            asked_at = asked.astimezone(UTC)
            if asked_at > now:
                continue
            request_id = "exc_" + derived_id("excusal", f"demo:{seed}", m.key, week)[:16]
            member = {
                "request_id": request_id,
                "member_id": ids[m.key],
                "community_id": ids[m.community_key],
                "unit_id": ids[m.unit_key],
            }
            plan.events.append(
                ExcusalRecorded(
                    event_id=derived_id("excusal.request", request_id),
                    occurred_at=asked_at,
                    action="request",
                    weeks=(week,),
                    reason=reason,
                    note=note,
                    actor_role="member",
                    actor_id=ids[m.key],
                    **member,
                )
            )
            plan.requests += 1
            decided_at = asked_at + timedelta(hours=20 + rng.randrange(0, 8))
            if decided_at > now:
                continue  # still pending: the organizer has not looked yet
            decline = rng.random() < P_DECLINE
            plan.events.append(
                ExcusalRecorded(
                    event_id=derived_id("excusal.decision", request_id, "demo"),
                    occurred_at=decided_at,
                    action="decline" if decline else "approve",
                    note=DECLINE_REASON if decline else "",
                    actor_role="organizer",
                    actor_id=ids[m.community_key],
                    **member,
                )
            )
            if decline:
                plan.declined += 1
            else:
                plan.approved += 1
    return plan
