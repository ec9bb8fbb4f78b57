"""The demo county's past month of reminders (提醒): pure and seeded by what the plan holds.

The reminder job (`services.reminder_job`) decides only the moments as they come, so a demo
loaded today would have empty inboxes for the weeks it simulates. This plan decides those past
moments with the job's own rules (`services.reminders`: `weekly_nudges`, `organizer_digest`,
`slot_reminders`, `in_quiet_hours`, `due_moment`), over what the warehouse would have held at
each moment, taken from the plan itself:

- **served**: a member's week is served from the moment a counted session of it reached the
  server (the session rules, `services.sessions.on_scan` and `contributes`, over the scans the
  server accepted, each at its simulated arrival);
- **signed up**: the slots' commands up to the moment, replayed by the activities rules
  (`services.activities.apply`): a place or the waiting list in an open slot of that week;
- **excused**: an excused week whose request was approved by the moment
  (`services.excused.status` over the decisions made by then);
- **registered**: `services.counting.registered` (the demo's members are all active);
- **turned off**: a few members turned a kind of reminder off before the month
  (`plan_opt_outs`, published as the phone page's preference events), and get none of it.

The job runs every few minutes outside the quiet hours; the plan decides at the first instant
each moment is due and awake (a moment in the quiet hours waits for their end, within its
week; a slot reminder whose window is all quiet is dropped, as the job drops it). Ids are the
job's (`services.reminders.notification_id`): a re-run of the simulator, or the job deciding
the current moment itself, is the same notification, which the inbox shows once.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from services import activities, reminders
from services.counting import registered
from services.demo.plan import PlannedScan
from services.events import (
    ActivityCommand,
    ExcusalRecorded,
    NotificationCreated,
    ReminderKind,
    ReminderPreferenceSet,
    SessionRecorded,
    derived_id,
)
from services.excused import DECISIONS, Decision, status
from services.sessions import MemberState, SessionRules, contributes, on_scan
from services.timeutil import iso_week, local, local_midnight

# The job's tick (REMINDERS_INTERVAL_S is 300 s by default): the plan looks for the first awake
# instant on this grid.
STEP = timedelta(minutes=5)
# Of the members, how many turned each kind of reminder off on the phone page.
P_TURNED_OFF: dict[ReminderKind, float] = {"weekly_nudge": 0.04, "slot_reminder": 0.01}


@dataclass(frozen=True)
class Person:
    member_id: str
    name: str
    community_id: str
    reported_on: date | None = None


@dataclass
class NotificationPlan:
    notifications: list[NotificationCreated] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def plan_opt_outs(
    members: Mapping[str, str], seed: int, at: datetime
) -> list[ReminderPreferenceSet]:
    """The members (`members`: key -> server id) who turned a kind off, at `at`: the events
    the phone page's preference route publishes. A member's later choice wins over a re-run
    (the preferences keep the latest `set_at`)."""
    out = []
    for key, member_id in sorted(members.items()):
        for kind in reminders.MEMBER_KINDS:
            if random.Random(f"{seed}:opt-out:{kind}:{key}").random() >= P_TURNED_OFF[kind]:
                continue
            out.append(
                ReminderPreferenceSet(
                    event_id=derived_id("reminder.preference", f"demo:{seed}", key, kind),
                    occurred_at=at,
                    member_id=member_id,
                    kind=kind,
                    enabled=False,
                    set_by=f"member:{member_id}",
                )
            )
    return out


def served_weeks(
    scans: Iterable[tuple[str, PlannedScan]], rules: SessionRules | None = None
) -> dict[tuple[str, str], datetime]:
    """(member id, ISO week) -> when the week became served: the arrival (`send_at`) of the
    scan that made a counted session of that week. `scans`: (member id, scan) accepted by the
    server, in the order they reached it (one member's in the order the phone sent them)."""
    rules = rules or SessionRules()
    states: dict[str, MemberState] = {}
    out: dict[tuple[str, str], datetime] = {}
    for member_id, s in scans:
        ev = s.as_event(member_id, s.send_at)
        state, events = on_scan(states.get(member_id, MemberState()), ev, rules)
        states[member_id] = state
        for rec in events:
            if isinstance(rec, SessionRecorded) and contributes(rec)[0]:
                key = (member_id, iso_week(rec.start))
                out[key] = min(out.get(key, s.send_at), s.send_at)
    return out


def awake_from(t: datetime, quiet: tuple[int, int], until: datetime) -> datetime | None:
    """The first instant from `t`, on the job's tick, outside the quiet hours and before
    `until`; None if there is none."""
    while t < until:
        if not reminders.in_quiet_hours(t, *quiet):
            return t
        t += STEP
    return None


class _Slots:
    """The slots' commands replayed by the activities rules, to read a slot's state at a time."""

    def __init__(self, commands: Iterable[ActivityCommand]) -> None:
        self.commands: dict[str, list[ActivityCommand]] = {}
        for c in commands:
            self.commands.setdefault(c.activity_id, []).append(c)
        for cs in self.commands.values():
            cs.sort(key=lambda c: c.occurred_at)

    def at(self, activity_id: str, t: datetime) -> activities.ActivityState:
        state = activities.ActivityState()
        for c in self.commands[activity_id]:
            if c.occurred_at > t:
                break
            state, _ = activities.apply(state, c)
        return state

    def created(self) -> list[activities.ActivityState]:
        """Every slot as created (its fields: community, start, station, title)."""
        return [self.at(aid, cs[0].occurred_at) for aid, cs in sorted(self.commands.items())]


def _approved_weeks(excusals: Iterable[ExcusalRecorded], t: datetime) -> set[tuple[str, str]]:
    """(member id, week) of the requests approved by `t`."""
    weeks: dict[str, tuple[str, tuple[str, ...]]] = {}
    decisions: dict[str, list[Decision]] = {}
    for e in excusals:
        if e.occurred_at > t:
            continue
        if e.action == "request":
            weeks[e.request_id] = (e.member_id, tuple(e.weeks))
        elif e.action in DECISIONS:
            decisions.setdefault(e.request_id, []).append(
                Decision(e.action, e.occurred_at, e.event_id)
            )
    out: set[tuple[str, str]] = set()
    for rid, (member_id, ws) in weeks.items():
        if status(decisions.get(rid, []))[0] == "approved":
            out.update((member_id, w) for w in ws)
    return out


def plan_notifications(
    *,
    now: datetime,
    since: datetime,
    communities: Sequence[tuple[str, str]],
    people: Sequence[Person],
    served: Mapping[tuple[str, str], datetime],
    commands: Sequence[ActivityCommand],
    excusals: Sequence[ExcusalRecorded],
    station_names: Mapping[str, str],
    quiet: tuple[int, int] = (21, 8),
    turned_off: Mapping[str, Set[str]] | None = None,
) -> NotificationPlan:
    """Every reminder the job would have decided before `now`: the weekly nudges and the
    organizer's digests of the moments from `since` (the span whose scans the server holds),
    and the slot reminders of the planned slots. `communities`: (id, name); `served`: from
    `served_weeks`; `station_names`: station id -> name (the reminder's place); `turned_off`:
    kind -> member ids who turned it off before the month."""
    slots = _Slots(commands)
    off = {k: set(v) for k, v in (turned_off or {}).items()}
    by_id: dict[str, NotificationCreated] = {}

    def keep(ns: Iterable[NotificationCreated]) -> None:
        for n in ns:
            by_id.setdefault(n.notification_id, n)

    # Slot reminders: the day before and the hour before, to the places held at that instant.
    names = {p.member_id: p.name for p in people}
    for created in slots.created():
        a = created.activity
        if a is None:
            continue
        for lead in (reminders.SLOT_DAY_BEFORE, reminders.SLOT_HOUR_BEFORE):
            t = awake_from(a.starts_at - lead, quiet, min(a.starts_at, now))
            if t is None:
                continue
            state = slots.at(a.activity_id, t)
            if state.activity is None or state.activity.status != "open":
                continue
            places = [
                reminders.slot_place(a, s.member_id, names.get(s.member_id, ""), station_names)
                for s in state.placed()
            ]
            keep(reminders.slot_reminders(t, places, off.get("slot_reminder", set())))

    # The weekly nudges and the Sunday digest, week by week from `since`.
    members_of: dict[str, list[Person]] = {}
    for p in people:
        members_of.setdefault(p.community_id, []).append(p)
    first_day = local(since).date()
    monday = first_day - timedelta(days=first_day.weekday())
    while local_midnight(monday) < now:
        sunday = monday + timedelta(days=6)
        week_end = min(local_midnight(sunday + timedelta(days=1)), now)
        week_start = local_midnight(monday)
        for moment in (*reminders.NUDGE_MOMENTS, reminders.DIGEST_MOMENT):
            day = monday + timedelta(days=moment.weekday)
            at = local_midnight(day) + timedelta(hours=moment.hour)
            if at < since:
                continue
            t = awake_from(at, quiet, week_end)
            if t is None:
                continue
            week = iso_week(t)
            approved = _approved_weeks(excusals, t)
            signed = _signed_up(slots, week_start, week_start + timedelta(days=7), t)
            for cid, cname in communities:
                reg = [
                    p
                    for p in members_of.get(cid, [])
                    if registered("active", p.reported_on, sunday)
                ]
                done = {p.member_id for p in reg if served.get((p.member_id, week), now) <= t}
                excused = {p.member_id for p in reg if (p.member_id, week) in approved} - done
                # The job's order: not_served is sorted by id (services.reads.weeks).
                not_served = sorted(
                    (p for p in reg if p.member_id not in done | excused),
                    key=lambda p: p.member_id,
                )
                recipients = [reminders.Recipient(p.member_id, p.name) for p in not_served]
                if moment is reminders.DIGEST_MOMENT:
                    digest = reminders.organizer_digest(
                        t, cid, cname, len(reg), [r.name for r in recipients]
                    )
                    keep([digest] if digest is not None else [])
                else:
                    keep(
                        reminders.weekly_nudges(
                            t,
                            cid,
                            cname,
                            recipients,
                            off.get("weekly_nudge", set()),
                            signed_up=frozenset(signed),
                        )
                    )
        monday += timedelta(days=7)
    out = sorted(by_id.values(), key=lambda n: (n.occurred_at, n.notification_id))
    counts: dict[str, int] = {}
    for n in out:
        counts[n.kind] = counts.get(n.kind, 0) + 1
    return NotificationPlan(out, counts)


def _signed_up(slots: _Slots, since: datetime, until: datetime, t: datetime) -> set[str]:
    """Members with a place or on the waiting list, at `t`, in an open slot starting in
    [since, until) (what `services.reads.activities.signed_up_in` reads at that moment)."""
    out: set[str] = set()
    for aid in slots.commands:
        state = slots.at(aid, t)
        a = state.activity
        if a is None or a.status != "open" or not since <= a.starts_at < until:
            continue
        out.update(s.member_id for s in (*state.placed(), *state.waiting()))
    return out
