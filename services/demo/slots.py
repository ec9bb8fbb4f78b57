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
from collections.abc import Mapping, Set
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
# Of the places held in slots that are over, the share not attended: placed members are picked
# so that each community's no-shows stay at this share of its places (a realistic 8-15%, seen
# on the organizer's roster and the HR page), never zero once a community has held ~5 places.
P_NO_SHOW = 0.11


@dataclass(frozen=True)
class Team:
    """A team (团队) the organizer set up: its leader checks the members in for a slot."""

    leader: str  # member key
    members: tuple[str, ...]  # member keys, the leader not among them


@dataclass(frozen=True)
class TeamCheckin:
    """One team check-in for a slot: the leader, at the station, checks these members in at
    `t_in` and out at `t_out` (the leader scans in and out on their own phone)."""

    activity_id: str
    leader: str
    station: str
    members: tuple[str, ...]
    t_in: datetime
    t_out: datetime


@dataclass
class SlotPlan:
    commands: list[ActivityCommand] = field(default_factory=list)
    scans: list[PlannedScan] = field(default_factory=list)
    team_checkins: list[TeamCheckin] = field(default_factory=list)
    slots: int = 0
    no_shows: int = 0
    # Places held in slots that are over (attended or not): the no-show share's denominator.
    places_over: int = 0


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
    teams: Mapping[str, Team] | None = None,
    without_phone: Set[str] = frozenset(),
) -> SlotPlan:
    """Three weeks back and one ahead of `now`. `ids` maps the county's keys (communities,
    stations, members, units) to server ids; `busy` holds (member key, local day) pairs that
    already have planned scans: such a member serves elsewhere that day and does not sign up
    (one member's scans must pair in order). `teams` (by community key): a community's team
    signs up together for its Saturdays, and when its leader attends, the leader checks the
    attending members in (`team_checkins`) instead of their own scans. Members in
    `without_phone` sign up for nothing (a sign-up is a tap on the phone page)."""
    busy = busy or set()
    teams = teams or {}
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
    for c in county.communities:
        if c.key not in station_of or c.key not in members_of:
            continue
        cid, station = ids[c.key], station_of[c.key]
        people = members_of[c.key]
        team = teams.get(c.key)
        owed = 0.0  # the community's no-shows due at P_NO_SHOW and not yet picked
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
                signing = [
                    k
                    for k in people
                    if rng.random() < p_sign and k not in without_phone and (k, day) not in busy
                ]
                rng.shuffle(signing)
                if team is not None and rec.weekday == 6:
                    # The team signs up together, first (its leader posts it in the group chat).
                    crew = [k for k in (team.leader, *team.members) if (k, day) not in busy]
                    signing = crew + [k for k in signing if k not in crew]
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
                placed = [key_of[s.member_id] for s in state.placed()]
                plan.places_over += len(placed)
                owed += len(placed) * P_NO_SHOW
                missing = set(rng.sample(placed, min(len(placed), int(owed + 0.5))))
                owed -= len(missing)
                came: dict[str, tuple[datetime, datetime]] = {}
                for key in placed:
                    t_in = start + timedelta(minutes=rng.randrange(-10, 15))
                    t_out = end + timedelta(minutes=rng.randrange(-10, 20))
                    if key in missing or (key, day) in busy:
                        plan.no_shows += 1
                        continue
                    came[key] = (t_in, t_out)
                crew_in: tuple[str, ...] = ()
                if team is not None and team.leader in came:
                    crew_in = tuple(k for k in team.members if k in came)
                    if crew_in:
                        lead_in, lead_out = came[team.leader]
                        plan.team_checkins.append(
                            TeamCheckin(
                                activity_id=aid,
                                leader=team.leader,
                                station=station,
                                members=crew_in,
                                t_in=lead_in + timedelta(minutes=2),
                                t_out=lead_out - timedelta(minutes=2),
                            )
                        )
                for key, (t_in, t_out) in came.items():
                    if key in crew_in:
                        continue
                    for action, at in (("in", t_in), ("out", t_out)):
                        ceid = str(uuid.uuid5(_NS, f"{seed}:{aid}:{key}:{action}"))
                        plan.scans.append(
                            PlannedScan(key, station, action, at, at, ceid)  # type: ignore[arg-type]
                        )
    return plan
