"""What reminds whom, and when (提醒): the rules, pure; `services.reminder_job` applies them.

Reminders inform, they never nag (the government-app rules forbid mandatory clock-in):

- **A weekly nudge** to a registered member who has not served this week: on Thursday evening
  (time to plan the weekend) and on Saturday morning (the usual service day). Two moments, so
  at most two nudges a member a week; none once the member has served (who is nudged is decided
  at each moment from the week's figures); none to a member who turned them off. A moment missed
  while the job was down is not made up later: only the latest moment that has come is decided.
- **The organizer's digest** on Sunday evening: the community's members still not served this
  week, in its inbox on the organizer's page (a community has no phone of its own).
- **Slot reminders** (活动提醒) to a member with a place in a slot: the day before (from 24 h
  before its start) and an hour before; each once per member and slot; none to a member who
  turned them off, none for a cancelled slot or a place given back. A reminder whose window
  falls in the quiet hours waits for their end, and is dropped once the slot has started.
- A member with a place (or on the waiting list) in a slot this week is not nudged: they have
  planned their service.
- **Quiet hours** (21:00-08:00 local by default): nothing is decided in them; a moment that
  falls in them waits for their end, within the same week.

A notification's id is derived from its kind, recipient, week and moment, so a decision made
twice (two sink processes, a restart, the next run of the job) is the same notification: the
inbox shows it once and it is sent once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.events import (
    ActivityFields,
    NotificationCreated,
    NotificationKind,
    ReminderKind,
    derived_id,
)
from services.timeutil import iso_week, local

KINDS: tuple[ReminderKind, ...] = ("weekly_nudge", "organizer_digest", "slot_reminder")
# Which kinds a member may turn off (the digest goes to the community, not to a member). The
# service notices about a slot (cancelled, promoted from the waiting list) are not reminders and
# cannot be turned off: services.activities.notices.
MEMBER_KINDS: tuple[ReminderKind, ...] = ("weekly_nudge", "slot_reminder")


@dataclass(frozen=True)
class Moment:
    name: str
    weekday: int  # Monday = 0, as date.weekday()
    hour: int  # local


NUDGE_MOMENTS = (Moment("thu", 3, 18), Moment("sat", 5, 10))
DIGEST_MOMENT = Moment("sun", 6, 18)


def in_quiet_hours(now: datetime, start_h: int, end_h: int) -> bool:
    """Whether local `now` lies in [start_h, end_h) (the range may wrap midnight)."""
    h = local(now).hour
    if start_h == end_h:
        return False
    if start_h < end_h:
        return start_h <= h < end_h
    return h >= start_h or h < end_h


def due_moment(now: datetime, moments: tuple[Moment, ...]) -> Moment | None:
    """The latest of this ISO week's `moments` that has come by `now` (local), if any."""
    t = local(now)
    due = None
    for m in moments:
        if (t.weekday(), t.hour) >= (m.weekday, m.hour):
            due = m
    return due


def notification_id(kind: NotificationKind, recipient_id: str, week: str, moment: str) -> str:
    return derived_id("notification", kind, recipient_id, week, moment)


@dataclass(frozen=True)
class Recipient:
    member_id: str
    name: str


def weekly_nudges(
    now: datetime,
    community_id: str,
    community_name: str,
    not_served: list[Recipient],
    turned_off: set[str],
    signed_up: frozenset[str] = frozenset(),
) -> list[NotificationCreated]:
    """This moment's nudges to the community's members not served this week (empty outside a
    moment: before Thursday evening); not to those signed up for a slot this week."""
    moment = due_moment(now, NUDGE_MOMENTS)
    if moment is None:
        return []
    week = iso_week(now)
    last_call = moment is NUDGE_MOMENTS[-1]
    out = []
    for r in not_served:
        if r.member_id in turned_off or r.member_id in signed_up:
            continue
        body = (
            f"{r.name}同志，您好！本周（{week_label(week)}）您还没有到{community_name}参加志愿服务。"
            + ("本周日前" if not last_call else "今明两天")
            + "到社区任一服务站扫码签到即可。如因出差、培训、病假等不能参加，请与社区联系说明。"
            "（不想再收到此类提醒，可在手机页面的「提醒设置」中关闭。）"
        )
        out.append(
            NotificationCreated(
                event_id=notification_id("weekly_nudge", r.member_id, week, moment.name),
                occurred_at=now,
                notification_id=notification_id("weekly_nudge", r.member_id, week, moment.name),
                kind="weekly_nudge",
                recipient_kind="member",
                recipient_id=r.member_id,
                community_id=community_id,
                week=week,
                title="本周志愿服务提醒",
                body=body,
            )
        )
    return out


# A digest names at most this many members; the organizer's page lists them all.
DIGEST_NAMES = 30


def organizer_digest(
    now: datetime,
    community_id: str,
    community_name: str,
    registered: int,
    not_served_names: list[str],
) -> NotificationCreated | None:
    """Sunday evening's list for the community's organizer (None before the moment)."""
    if due_moment(now, (DIGEST_MOMENT,)) is None:
        return None
    week = iso_week(now)
    n = len(not_served_names)
    if n:
        shown = "、".join(not_served_names[:DIGEST_NAMES])
        more = f"等{n}人" if n > DIGEST_NAMES else ""
        body = (
            f"{community_name}{week_label(week)}：已报到党员{registered}人，"
            f"尚有{n}人本周未参加志愿服务：{shown}{more}。完整名单见组织者页面「本周未服务」。"
        )
    else:
        body = f"{community_name}{week_label(week)}：已报到党员{registered}人，本周全部参加了志愿服务。"
    nid = notification_id("organizer_digest", community_id, week, DIGEST_MOMENT.name)
    return NotificationCreated(
        event_id=nid,
        occurred_at=now,
        notification_id=nid,
        kind="organizer_digest",
        recipient_kind="community",
        recipient_id=community_id,
        community_id=community_id,
        week=week,
        title="本周未服务名单",
        body=body,
    )


def week_label(week: str) -> str:
    """「2026年第48周」 for "2026-W48"."""
    year, w = week.split("-W")
    return f"{year}年第{int(w)}周"


# ---- slot reminders (活动提醒) ---------------------------------------------------------------

SLOT_DAY_BEFORE = timedelta(hours=24)
SLOT_HOUR_BEFORE = timedelta(hours=1)


@dataclass(frozen=True)
class SlotPlace:
    """A member's place in a slot, as the reminders need it."""

    activity_id: str
    title: str
    place: str
    starts_at: datetime
    community_id: str
    member_id: str
    name: str


# A slot at a grid (courtyard work) has no station to name.
GRID_PLACE = "社区指定网格"


def slot_place(
    a: ActivityFields, member_id: str, name: str, station_names: Mapping[str, str]
) -> SlotPlace:
    """A member's place in slot `a`, named by its station (`station_names`: id -> name)."""
    return SlotPlace(
        activity_id=a.activity_id,
        title=a.title,
        place=station_names.get(a.station_id or "", "") or GRID_PLACE,
        starts_at=a.starts_at,
        community_id=a.community_id,
        member_id=member_id,
        name=name,
    )


def slot_moment(now: datetime, starts_at: datetime) -> str | None:
    """Which slot reminder is due at `now`: "day" from 24 h to 1 h before the start, "hour" in
    the last hour; None otherwise (too early, or started)."""
    if starts_at - SLOT_HOUR_BEFORE <= now < starts_at:
        return "hour"
    if starts_at - SLOT_DAY_BEFORE <= now < starts_at - SLOT_HOUR_BEFORE:
        return "day"
    return None


def slot_reminders(
    now: datetime, places: list[SlotPlace], turned_off: set[str]
) -> list[NotificationCreated]:
    """The slot reminders due at `now` (the job skips the quiet hours before calling this)."""
    out = []
    for p in places:
        moment = slot_moment(now, p.starts_at)
        if moment is None or p.member_id in turned_off:
            continue
        t = local(p.starts_at)
        when = (
            f"{t.month}月{t.day}日（周{'一二三四五六日'[t.weekday()]}）{t.hour:02d}:{t.minute:02d}"
        )
        lead = "明天" if local(now).date() < t.date() else "今天"
        title = "活动即将开始" if moment == "hour" else f"活动提醒：{lead}有服务"
        body = (
            f"{p.name}同志，您报名的「{p.title}」将于{when}开始，地点：{p.place}。"
            "到达后请扫码签到；如不能参加，请尽早在手机页面取消报名，把名额留给候补的同志。"
            "（不想再收到此类提醒，可在手机页面的「提醒设置」中关闭。）"
        )
        key = f"{p.activity_id}|{moment}"
        nid = notification_id("slot_reminder", p.member_id, iso_week(p.starts_at), key)
        out.append(
            NotificationCreated(
                event_id=nid,
                occurred_at=now,
                notification_id=nid,
                kind="slot_reminder",
                recipient_kind="member",
                recipient_id=p.member_id,
                community_id=p.community_id,
                week=iso_week(p.starts_at),
                title=title,
                body=body,
            )
        )
    return out
