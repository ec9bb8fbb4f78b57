"""Service slots (活动) and sign-up (报名): pure rules, no I/O.

An activity is a slot a community publishes: where (a station, or a level-5 grid for work in
the courtyards), when (stored UTC, shown in Asia/Shanghai), how many places, until when members
may sign up and cancel, optionally only for some units. A recurring rule (固定服务日, "every
saturday 09:00-11:00") generates the coming weeks' slots with ids derived from the rule id and
the date, so generating again makes the same slots.

The activities agent keeps each activity's state and calls `apply` for every command in log
order; the API calls the same function against its (possibly lagging) copy to answer a clear
4xx at once, and the agent's verdict is the authority. A full slot is not a refusal: the member
goes on the waiting list (候补), promoted in sign-up order when a placed member cancels.

Attendance is decided from sessions (services/reads/activities.py reads them; `attendance` here),
with the one presence rule; a sign-up credits nothing.

Service notices (`notices`): a member with a place or on the waiting list of a slot that is
cancelled, and a member promoted from the waiting list, get a notification in their inbox (and
by SMS/WeChat where a sender is configured), written by the activities agent from the very
judgement that changed the sign-up, with ids derived from the slot, the member and the sign-up's
version: a redelivered or retried cancel is the same notification, never a second one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from services.access import Facts, actor_may
from services.counting import present
from services.events import (
    ActivityCommand,
    ActivityCommandRejected,
    ActivityFields,
    ActivitySpec,
    NotificationCreated,
    NotificationKind,
    SignupFields,
    derived_id,
)
from services.reminders import notification_id
from services.timeutil import LOCAL_TZ, iso_week, local

# How many applied command ids an activity remembers, to drop a redelivered command silently.
RECENT_IDS = 64

OutcomeKind = Literal[
    "created", "cancelled", "placed", "waiting", "promoted", "withdrawn", "refused"
]


class ActivityState(BaseModel):
    model_config = ConfigDict(frozen=True)

    activity: ActivityFields | None = None
    # Every member's latest sign-up, in sign-up order (seq).
    signups: tuple[SignupFields, ...] = ()
    next_seq: int = 1
    recent_event_ids: tuple[str, ...] = ()

    def placed(self) -> list[SignupFields]:
        return [s for s in self.signups if s.status == "placed"]

    def waiting(self) -> list[SignupFields]:
        return [s for s in self.signups if s.status == "waiting"]

    def signup_of(self, member_id: str) -> SignupFields | None:
        for s in self.signups:
            if s.member_id == member_id:
                return s
        return None

    def position(self, member_id: str) -> int | None:
        """1-based place on the waiting list, None if not waiting."""
        for i, s in enumerate(self.waiting(), start=1):
            if s.member_id == member_id:
                return i
        return None


@dataclass(frozen=True)
class Outcome:
    """What one command did: for the member it concerns (a sign-up, a promotion), or the
    activity (created, cancelled), or a refusal with its code."""

    kind: OutcomeKind
    member_id: str | None = None
    # On the waiting list: the 1-based position at the time.
    position: int | None = None
    code: str | None = None
    reason: str | None = None
    signup: SignupFields | None = None


class _Refused(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def refusal(outcomes: list[Outcome]) -> Outcome | None:
    return next((o for o in outcomes if o.kind == "refused"), None)


def changed_signups(outcomes: list[Outcome]) -> list[SignupFields]:
    return [o.signup for o in outcomes if o.signup is not None]


def rejection(cmd: ActivityCommand, outcomes: list[Outcome]) -> ActivityCommandRejected | None:
    r = refusal(outcomes)
    if r is None:
        return None
    return ActivityCommandRejected(
        event_id=derived_id("activities.rejected", cmd.event_id),
        occurred_at=cmd.occurred_at,
        command_event_id=cmd.event_id,
        activity_id=cmd.activity_id,
        action=cmd.action,
        actor_role=cmd.actor_role,
        actor_id=cmd.actor_id,
        member_id=cmd.member_id,
        code=r.code or "refused",
        reason=r.reason or "",
    )


def validate_spec(spec: ActivitySpec) -> None:
    """The spec's own consistency; raises ValueError naming the field (the API answers 422)."""
    if (spec.station_id is None) == (spec.grid_id is None):
        raise ValueError("station_id or grid_id: exactly one of them")
    if spec.ends_at <= spec.starts_at:
        raise ValueError("ends_at: must be after starts_at")
    if spec.ends_at - spec.starts_at > timedelta(hours=12):
        raise ValueError("ends_at: a slot lasts at most 12 hours")
    if spec.signup_deadline > spec.ends_at:
        raise ValueError("signup_deadline: must not be after the slot ends")
    if spec.cancel_deadline > spec.starts_at:
        raise ValueError("cancel_deadline: must not be after the slot starts")


# ---- attendance (from sessions) -------------------------------------------------------------

# A member who checks in a little early for a slot attends it.
EARLY = timedelta(minutes=30)
Attendance = Literal["attended", "no_show", "pending"]


@dataclass(frozen=True)
class Presence:
    """A session, as attendance sees it."""

    station_id: str
    station_community_id: str
    start: datetime
    end: datetime | None
    status: str
    voided: bool


def at_place(a: ActivityFields, p: Presence) -> bool:
    """Whether a session is at the slot's place. A grid's slot (courtyard work, 院落) has no QR
    code of its own and stations belong to communities, not grids: the members of a grid's slot
    scan in at a station of the slot's community (the grid's: `_place` in the API checks it),
    any of them, as the counting rules credit service at any station."""
    if a.station_id is not None:
        return p.station_id == a.station_id
    return p.station_community_id == a.community_id


def proof(a: ActivityFields, s: SignupFields, sessions: list[Presence]) -> Presence | None:
    """The first session (by start) that shows a placed member attended: at the place, present
    (`counting.present`: not voided, not rejected), overlapping the slot (from EARLY before
    its start; an open one counts from its start). None: no such session (yet)."""
    if s.status != "placed" or a.status != "open":
        return None
    for p in sorted(sessions, key=lambda p: p.start):
        if not present(p.status, p.voided) or not at_place(a, p):
            continue
        last = p.end or p.start
        if p.start < a.ends_at and max(p.start, last) >= a.starts_at - EARLY:
            return p
    return None


def attendance(
    a: ActivityFields, s: SignupFields, sessions: list[Presence], now: datetime
) -> Attendance | None:
    """A placed member attended if a session of theirs proves it (`proof`); no such session by
    the end is a no-show. None: not placed (waiting, withdrawn, or the activity cancelled), so
    neither."""
    if s.status != "placed" or a.status != "open":
        return None
    if proof(a, s, sessions) is not None:
        return "attended"
    return "no_show" if now >= a.ends_at else "pending"


# ---- service notices (通知) ------------------------------------------------------------------

# A cancellation's reason, as quoted to the members (an SMS stays short).
REASON_CHARS = 60


def when_label(start: datetime, end: datetime) -> str:
    """「12月5日（周六）09:00-11:00」, local time."""
    s, e = local(start), local(end)
    return (
        f"{s.month}月{s.day}日（周{'一二三四五六日'[s.weekday()]}）"
        f"{s.hour:02d}:{s.minute:02d}-{e.hour:02d}:{e.minute:02d}"
    )


def _notice(
    kind: NotificationKind, a: ActivityFields, s: SignupFields, at: datetime, title: str, body: str
) -> NotificationCreated:
    # One per member and slot for a cancellation (a slot is cancelled once); one per sign-up
    # version for a promotion (a member may come back, wait and be promoted again).
    moment = a.activity_id if kind == "slot_cancelled" else f"{a.activity_id}|{s.version}"
    week = iso_week(a.starts_at)
    nid = notification_id(kind, s.member_id, week, moment)
    return NotificationCreated(
        event_id=nid,
        occurred_at=at,
        notification_id=nid,
        kind=kind,
        recipient_kind="member",
        recipient_id=s.member_id,
        community_id=a.community_id,
        week=week,
        title=title,
        body=body,
    )


def notices(
    before: ActivityState, after: ActivityState, cmd: ActivityCommand, outcomes: list[Outcome]
) -> list[NotificationCreated]:
    """The notifications one judged command owes its members: every member placed or waiting
    when the slot was cancelled, and a member promoted from the waiting list. Service notices,
    not reminders: sent whatever the member's reminder switches say (they concern a slot the
    member chose, and would otherwise go to in vain or miss)."""
    a = after.activity
    if a is None:
        return []
    when = when_label(a.starts_at, a.ends_at)
    out = []
    for o in outcomes:
        if o.signup is None or o.member_id is None:
            continue
        if o.kind == "cancelled":
            was = before.signup_of(o.member_id)
            how = "候补" if was is not None and was.status == "waiting" else "报名"
            reason = (cmd.reason or "").strip()[:REASON_CHARS]
            body = (
                f"您{how}的「{a.title}」（{when}）已由社区取消"
                + (f"，原因：{reason}" if reason else "")
                + "。无需前往，感谢您的支持，欢迎报名社区的其他活动。"
            )
            out.append(
                _notice("slot_cancelled", a, o.signup, cmd.occurred_at, "活动取消通知", body)
            )
        elif o.kind == "promoted":
            # A place is given back only until the cancel deadline, so a promotion comes before
            # it and the promoted member has the same chance to give the place back.
            d = local(a.cancel_deadline)
            after_text = (
                f"如不能参加，请在{d.month}月{d.day}日 {d.hour:02d}:{d.minute:02d}前"
                "在手机页面取消报名，把名额留给其他同志。"
            )
            body = (
                f"您候补的「{a.title}」（{when}）有同志取消报名，您已由候补转为正式报名。"
                "请按时到场扫码签到。" + after_text
            )
            out.append(_notice("slot_promoted", a, o.signup, cmd.occurred_at, "候补转正通知", body))
    return out


def _organizes(cmd: ActivityCommand, community_id: str) -> bool:
    return actor_may(cmd.actor_role, cmd.actor_id, "activity", Facts(community_id=community_id))


def apply(state: ActivityState, cmd: ActivityCommand) -> tuple[ActivityState, list[Outcome]]:
    """Judge one command against the activity's state: the new state and what it did. A command
    already applied (same event id) changes nothing and does nothing."""
    if cmd.event_id in state.recent_event_ids:
        return state, []
    try:
        new, outcomes = _apply(state, cmd)
    except _Refused as r:
        # A refusal is remembered too: a redelivered refused command is not refused twice.
        remembered = state.model_copy(update={"recent_event_ids": _remember(state, cmd)})
        return remembered, [Outcome("refused", cmd.member_id, code=r.code, reason=r.reason)]
    return new.model_copy(update={"recent_event_ids": _remember(state, cmd)}), outcomes


def _remember(state: ActivityState, cmd: ActivityCommand) -> tuple[str, ...]:
    return (*state.recent_event_ids, cmd.event_id)[-RECENT_IDS:]


def _apply(state: ActivityState, cmd: ActivityCommand) -> tuple[ActivityState, list[Outcome]]:
    at = cmd.occurred_at
    a = state.activity
    if cmd.action == "create":
        if a is not None:
            raise _Refused("already_exists", f"activity {cmd.activity_id} already exists")
        if cmd.spec is None:
            raise _Refused("missing_field", "create needs the activity's spec")
        if not _organizes(cmd, cmd.spec.community_id):
            raise _Refused("forbidden", "only the community's organizer publishes its activities")
        try:
            validate_spec(cmd.spec)
        except ValueError as exc:
            raise _Refused("invalid_activity", str(exc)) from None
        created = ActivityFields(
            **cmd.spec.model_dump(),
            activity_id=cmd.activity_id,
            revision=1,
            status="open",
            created_by=cmd.actor_id,
            created_at=at,
            updated_at=at,
            last_event_id=cmd.event_id,
        )
        return state.model_copy(update={"activity": created}), [Outcome("created")]
    if a is None:
        raise _Refused("activity_not_found", f"activity {cmd.activity_id} does not exist")
    if a.status == "cancelled":
        raise _Refused("activity_cancelled", f"activity {a.activity_id} was cancelled")

    if cmd.action == "cancel":
        if not _organizes(cmd, a.community_id):
            raise _Refused("forbidden", "only the community's organizer cancels its activities")
        if at >= a.ends_at:
            raise _Refused("activity_over", f"activity {a.activity_id} is over")
        outcomes: list[Outcome] = []
        signups = []
        for s in state.signups:
            if s.status in ("placed", "waiting"):
                s = _step(s, cmd, "cancelled")
                outcomes.append(Outcome("cancelled", s.member_id, signup=s))
            signups.append(s)
        new_state = state.model_copy(update={"signups": tuple(signups)})
        activity = _bump(a, cmd, new_state, status="cancelled")
        return new_state.model_copy(update={"activity": activity}), [
            Outcome("cancelled"),
            *outcomes,
        ]

    member_id = cmd.member_id
    if member_id is None:
        raise _Refused("missing_field", f"{cmd.action} needs member_id")
    # Only the member themself signs up or cancels a sign-up (not on anyone's behalf).
    if cmd.actor_role != "member" or cmd.actor_id != member_id:
        raise _Refused("forbidden", "only the member themself signs up or cancels a sign-up")
    current = state.signup_of(member_id)

    if cmd.action == "sign_up":
        if current is not None and current.status in ("placed", "waiting"):
            raise _Refused("already_signed_up", f"member {member_id} is already signed up")
        if at > a.signup_deadline:
            raise _Refused("signup_closed", "the sign-up deadline has passed")
        if cmd.member_community_id != a.community_id:
            raise _Refused(
                "activity_not_in_community", "the activity is not in the member's community"
            )
        if a.unit_ids and cmd.member_unit_id not in a.unit_ids:
            raise _Refused("unit_not_allowed", "the activity is open to other units only")
        full = len(state.placed()) >= a.capacity
        status: Literal["placed", "waiting"] = "waiting" if full else "placed"
        s = SignupFields(
            activity_id=a.activity_id,
            member_id=member_id,
            unit_id=cmd.member_unit_id or "",
            community_id=cmd.member_community_id or "",
            version=(current.version + 1) if current else 1,
            status=status,
            # A member who comes back joins at the end of the line.
            seq=state.next_seq,
            signed_up_at=at,
            updated_at=at,
            last_event_id=cmd.event_id,
            signup_event_id=cmd.event_id,
        )
        others = tuple(x for x in state.signups if x.member_id != member_id)
        new_state = state.model_copy(update={"signups": (*others, s), "next_seq": s.seq + 1})
        new_state = new_state.model_copy(update={"activity": _bump(a, cmd, new_state)})
        pos = new_state.position(member_id)
        return new_state, [Outcome(status, member_id, position=pos, signup=s)]

    # withdraw (取消报名)
    if current is None or current.status not in ("placed", "waiting"):
        raise _Refused("not_signed_up", f"member {member_id} is not signed up")
    if current.status == "placed" and at > a.cancel_deadline:
        # Leaving the waiting list costs nobody a place: allowed until the slot ends.
        raise _Refused("cancel_closed", "the cancellation deadline has passed")
    gone = _step(current, cmd, "withdrawn")
    signups = [gone if x.member_id == member_id else x for x in state.signups]
    outcomes = [Outcome("withdrawn", member_id, signup=gone)]
    if current.status == "placed" and at < a.starts_at:
        # The first waiting, in sign-up order, takes the freed place.
        first = next((x for x in signups if x.status == "waiting"), None)
        if first is not None:
            up = _step(first, cmd, "placed")
            signups = [up if x.member_id == first.member_id else x for x in signups]
            outcomes.append(Outcome("promoted", first.member_id, signup=up))
    new_state = state.model_copy(update={"signups": tuple(signups)})
    return new_state.model_copy(update={"activity": _bump(a, cmd, new_state)}), outcomes


def _step(s: SignupFields, cmd: ActivityCommand, status: str) -> SignupFields:
    return s.model_copy(
        update={
            "status": status,
            "version": s.version + 1,
            "updated_at": cmd.occurred_at,
            "last_event_id": cmd.event_id,
        }
    )


def _bump(
    a: ActivityFields, cmd: ActivityCommand, state: ActivityState, status: str | None = None
) -> ActivityFields:
    return a.model_copy(
        update={
            "revision": a.revision + 1,
            "status": status or a.status,
            "placed": len(state.placed()),
            "waiting": len(state.waiting()),
            "updated_at": cmd.occurred_at,
            "last_event_id": cmd.event_id,
        }
    )


def command(
    *,
    activity_id: str,
    action: str,
    at: datetime,
    basis: str,
    actor_role: str,
    actor_id: str,
    **fields: object,
) -> ActivityCommand:
    """A command with an id derived from what it is and what it acted on (`basis`: the client's
    id, or a per-request nonce), so a re-sent request is the same command."""
    return ActivityCommand.model_validate(
        {
            "event_id": derived_id("activities.command", activity_id, action, actor_id, basis),
            "occurred_at": at,
            "activity_id": activity_id,
            "action": action,
            "actor_role": actor_role,
            "actor_id": actor_id,
            **fields,
        }
    )


# ---- recurring slots (固定服务日) ---------------------------------------------------------

WEEKDAYS = {
    "monday": 1,
    "tuesday": 2,
    "wednesday": 3,
    "thursday": 4,
    "friday": 5,
    "saturday": 6,
    "sunday": 7,
}
_RULE = re.compile(r"^\s*every\s+([a-z]+)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$", re.I)


@dataclass(frozen=True)
class Recurrence:
    weekday: int  # ISO: Monday 1 .. Sunday 7
    start: time
    end: time


def parse_rule(text: str) -> Recurrence:
    """ "every <weekday> HH:MM-HH:MM" (local time); raises ValueError naming what is wrong."""
    m = _RULE.match(text)
    if m is None:
        raise ValueError('recurrence: expected "every <weekday> HH:MM-HH:MM"')
    day = WEEKDAYS.get(m.group(1).lower())
    if day is None:
        raise ValueError(f"recurrence: unknown weekday {m.group(1)!r}")
    h1, m1, h2, m2 = (int(m.group(i)) for i in (2, 3, 4, 5))
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError("recurrence: not a time of day")
    start, end = time(h1, m1), time(h2, m2)
    if end <= start:
        raise ValueError("recurrence: the slot must end after it starts, on the same day")
    return Recurrence(day, start, end)


def rule_id(community_id: str, text: str, client_id: str) -> str:
    return "rule_" + derived_id("activity.rule", community_id, text.lower(), client_id)[:16]


def slot_id(rule: str, day: date) -> str:
    """A generated slot's id: the rule's id and the date, so a re-run makes the same slots."""
    return "act_" + derived_id("activity.slot", rule, day.isoformat())[:16]


def occurrences(rec: Recurrence, after: datetime, weeks: int) -> list[tuple[datetime, datetime]]:
    """The next `weeks` slots of the rule starting after `after`, as UTC (start, end)."""
    local_now = after.astimezone(LOCAL_TZ)
    day = local_now.date() + timedelta(days=(rec.weekday - local_now.isoweekday()) % 7)
    out: list[tuple[datetime, datetime]] = []
    while len(out) < weeks:
        start = datetime.combine(day, rec.start, LOCAL_TZ)
        if start > after:
            end = datetime.combine(day, rec.end, LOCAL_TZ)
            out.append((start.astimezone(UTC), end.astimezone(UTC)))
        day += timedelta(days=7)
    return out


def generate(
    rule: str,
    rec: Recurrence,
    template: ActivitySpec,
    after: datetime,
    weeks: int,
    signup_lead: timedelta,
    cancel_lead: timedelta,
) -> list[tuple[str, ActivitySpec]]:
    """The rule's slots for the coming weeks: (activity id, spec), deterministic in the rule id
    and the dates. Deadlines are the slot's start minus the leads."""
    out = []
    for start, end in occurrences(rec, after, weeks):
        spec = template.model_copy(
            update={
                "starts_at": start,
                "ends_at": end,
                "signup_deadline": start - signup_lead,
                "cancel_deadline": start - cancel_lead,
                "rule_id": rule,
            }
        )
        out.append((slot_id(rule, start.astimezone(LOCAL_TZ).date()), spec))
    return out
