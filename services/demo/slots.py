"""The demo county's month of service slots (活动): every community's Saturday fixed service day
(固定服务日, 09:00-11:00 at its first station) and a smaller Wednesday afternoon slot, over the
month around now; members sign up (some Saturdays fill up and keep a waiting list), a few give
their place back (the first waiting is promoted), and of the slots already over most placed
members came and scanned in and out, the others are no-shows.

Pure planning, deterministic in the seed: the commands are the ones the API would have published
at those moments (their ids derive from the seed, so a re-run publishes the same commands and the
activities agent drops them as duplicates); the attendees' scans join the simulator's scans.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from services import activities as rules
from services.demo.county import County
from services.demo.plan import PlannedScan
from services.events import ActivityCommand, ActivitySpec
from services.timeutil import LOCAL_TZ

_NS = uuid.UUID("8f3b2a1c-6d5e-4f70-9a8b-7c6d5e4f3a2b")

SATURDAY = (
    "every saturday 09:00-11:00",
    "固定服务日：小区环境整治",
    "清理楼道杂物、整治小区环境，请自带手套",
)
WEDNESDAY = (
    "every wednesday 15:00-17:00",
    "敬老助残：陪伴独居老人",
    "到独居老人家中陪伴聊天、打扫卫生",
)
# Of the members who serve regularly, how many sign up for a given Saturday / Wednesday.
P_SIGN_UP = (0.35, 0.08)
P_WITHDRAW = 0.08
P_NO_SHOW = 0.15


@dataclass
class SlotPlan:
    commands: list[ActivityCommand] = field(default_factory=list)
    scans: list[PlannedScan] = field(default_factory=list)
    slots: int = 0
    no_shows: int = 0


def _days(weekday: int, first: date, last: date) -> list[date]:
    d = first + timedelta(days=(weekday - first.isoweekday()) % 7)
    out = []
    while d <= last:
        out.append(d)
        d += timedelta(days=7)
    return out


def plan_slots(
    county: County,
    ids: dict[str, str],
    now: datetime,
    seed: int,
    busy: set[tuple[str, date]] | None = None,
) -> SlotPlan:
    """Three weeks back and one ahead of `now`. `ids` maps the county's keys (communities,
    stations, members, units) to server ids; `busy` holds (member key, local day) pairs that
    already have planned scans, where no attendance scan is added (one member's scans must pair
    in order)."""
    busy = busy or set()
    plan = SlotPlan()
    today = now.astimezone(LOCAL_TZ).date()
    first, last = today - timedelta(days=21), today + timedelta(days=7)
    members_of: dict[str, list[str]] = {}
    for m in county.members:
        members_of.setdefault(m.community_key, []).append(m.key)
    unit_of = {m.key: m.unit_key for m in county.members}
    station_of: dict[str, str] = {}
    for st in county.stations:
        station_of.setdefault(st.community_key, st.key)
    created_at = datetime.combine(first - timedelta(days=7), time(9), LOCAL_TZ).astimezone(UTC)
    n_scan = 0
    for c in county.communities:
        if c.key not in station_of or c.key not in members_of:
            continue
        cid, station = ids[c.key], station_of[c.key]
        people = members_of[c.key]
        for (text, title, description), p_sign in zip(
            (SATURDAY, WEDNESDAY), P_SIGN_UP, strict=True
        ):
            rec = rules.parse_rule(text)
            rule = rules.rule_id(cid, text, f"demo:{seed}")
            capacity = max(4, round(len(people) * (0.12 if rec.weekday == 6 else 0.04)))
            for day in _days(rec.weekday, first, last):
                start = datetime.combine(day, rec.start, LOCAL_TZ).astimezone(UTC)
                end = datetime.combine(day, rec.end, LOCAL_TZ).astimezone(UTC)
                aid = rules.slot_id(rule, day)
                rng = random.Random(f"{seed}:slot:{aid}")
                spec = ActivitySpec(
                    community_id=cid,
                    title=title,
                    description=description,
                    station_id=ids[station],
                    starts_at=start,
                    ends_at=end,
                    capacity=capacity,
                    signup_deadline=start - timedelta(hours=1),
                    cancel_deadline=start - timedelta(hours=2),
                    rule_id=rule,
                )
                organizer = {"actor_role": "organizer", "actor_id": cid}
                plan.commands.append(
                    rules.command(
                        activity_id=aid,
                        action="create",
                        at=created_at,
                        basis=f"demo:{seed}",
                        spec=spec,
                        **organizer,
                    )
                )
                plan.slots += 1
                state = rules.ActivityState()
                state, _ = rules.apply(state, plan.commands[-1])
                signing = [k for k in people if rng.random() < p_sign]
                rng.shuffle(signing)
                opened = start - timedelta(days=6)
                for i, key in enumerate(signing):
                    at = min(opened + timedelta(minutes=7 * i + rng.randrange(0, 5)), now)
                    if at > spec.signup_deadline:
                        break
                    mid = ids[key]
                    cmd = rules.command(
                        activity_id=aid,
                        action="sign_up",
                        at=at,
                        basis=f"demo:{seed}:{key}",
                        actor_role="member",
                        actor_id=mid,
                        member_id=mid,
                        member_unit_id=ids[unit_of[key]],
                        member_community_id=cid,
                    )
                    plan.commands.append(cmd)
                    state, _ = rules.apply(state, cmd)
                for s in list(state.placed()):
                    if rng.random() >= P_WITHDRAW:
                        continue
                    at = min(s.signed_up_at + timedelta(days=1), spec.cancel_deadline, now)
                    cmd = rules.command(
                        activity_id=aid,
                        action="withdraw",
                        at=at,
                        basis=f"demo:{seed}:withdraw",
                        actor_role="member",
                        actor_id=s.member_id,
                        member_id=s.member_id,
                    )
                    plan.commands.append(cmd)
                    state, _ = rules.apply(state, cmd)
                if end > now:
                    continue
                key_of = {ids[k]: k for k in people}
                for s in state.placed():
                    key = key_of[s.member_id]
                    if rng.random() < P_NO_SHOW or (key, day) in busy:
                        plan.no_shows += 1
                        continue
                    t_in = start + timedelta(minutes=rng.randrange(-10, 15))
                    t_out = end + timedelta(minutes=rng.randrange(-10, 20))
                    for action, at in (("in", t_in), ("out", t_out)):
                        n_scan += 1
                        ceid = str(uuid.uuid5(_NS, f"{seed}:{aid}:{key}:{action}"))
                        plan.scans.append(
                            PlannedScan(key, station, action, at, at, ceid)  # type: ignore[arg-type]
                        )
    return plan
