"""services.reminders: the moments, quiet hours, who is nudged, the digest, the ids."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from services import reminders
from services.reminders import Recipient

LOCAL = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A local time in ISO week 2026-W48 (Monday 23 November = day 0), in UTC."""
    return datetime(2026, 11, 23 + day, hour, minute, tzinfo=LOCAL).astimezone(UTC)


def test_quiet_hours_wrap_midnight() -> None:
    quiet = [h for h in range(24) if reminders.in_quiet_hours(at(2, h), 21, 8)]
    assert quiet == [0, 1, 2, 3, 4, 5, 6, 7, 21, 22, 23]
    assert [h for h in range(24) if reminders.in_quiet_hours(at(2, h), 12, 14)] == [12, 13]
    assert not any(reminders.in_quiet_hours(at(2, h), 9, 9) for h in range(24))


def test_the_latest_moment_that_has_come_is_the_one_decided() -> None:
    moments = reminders.NUDGE_MOMENTS
    assert reminders.due_moment(at(0, 12), moments) is None
    assert reminders.due_moment(at(3, 17, 59), moments) is None
    assert reminders.due_moment(at(3, 18), moments) == moments[0]
    assert reminders.due_moment(at(5, 9), moments) == moments[0]
    # Saturday morning: the second moment, never the missed Thursday again as well.
    assert reminders.due_moment(at(5, 10), moments) == moments[1]
    assert reminders.due_moment(at(6, 23), moments) == moments[1]


def test_nudges_skip_those_who_turned_them_off_and_ids_are_stable() -> None:
    people = [Recipient("m1", "张三"), Recipient("m2", "李四")]
    first = reminders.weekly_nudges(at(3, 19), "c1", "东关社区", people, {"m2"})
    assert [n.recipient_id for n in first] == ["m1"]
    n = first[0]
    assert n.week == "2026-W48" and n.kind == "weekly_nudge" and n.recipient_kind == "member"
    assert "张三同志" in n.body and "东关社区" in n.body and "2026年第48周" in n.body
    assert "本周日前" in n.body and "提醒设置" in n.body
    # Deciding again later the same evening is the same notification.
    again = reminders.weekly_nudges(at(3, 20, 45), "c1", "东关社区", people, {"m2"})
    assert again[0].notification_id == n.notification_id == n.event_id
    saturday = reminders.weekly_nudges(at(5, 10), "c1", "东关社区", people, set())
    assert len(saturday) == 2 and saturday[0].notification_id != n.notification_id
    assert "今明两天" in saturday[0].body
    assert reminders.weekly_nudges(at(1, 19), "c1", "东关社区", people, set()) == []


def test_the_digest_lists_the_not_served_on_sunday_evening() -> None:
    assert reminders.organizer_digest(at(6, 17), "c1", "东关社区", 3, ["甲"]) is None
    d = reminders.organizer_digest(at(6, 18), "c1", "东关社区", 3, ["甲", "乙"])
    assert d is not None and d.recipient_kind == "community" and d.recipient_id == "c1"
    assert "已报到党员3人" in d.body and "尚有2人" in d.body and "甲、乙" in d.body
    names = [f"人{i}" for i in range(40)]
    long = reminders.organizer_digest(at(6, 19), "c1", "东关社区", 50, names)
    assert long is not None and "人29等40人" in long.body and "人30" not in long.body
    none_left = reminders.organizer_digest(at(6, 19), "c1", "东关社区", 3, [])
    assert none_left is not None and "全部参加" in none_left.body


def test_week_label() -> None:
    assert reminders.week_label("2026-W05") == "2026年第5周"
