"""Inboxes, reminder preferences and what the reminder job needs to decide and to send."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.events import NotificationKind
from services.reads._rows import utc
from services.reads.registry import member_names
from services.reminders import MEMBER_KINDS, Recipient
from services.warehouse.client import Warehouse


@dataclass(frozen=True)
class InboxItem:
    notification_id: str
    kind: str
    week: str
    title: str
    body: str
    created_at: datetime


def inbox(wh: Warehouse, recipient_id: str, limit: int) -> list[InboxItem]:
    """A member's (or a community's) notifications, newest first."""
    rows = wh.query(
        """
        SELECT notification_id, kind, week, title, body, created_at
        FROM notifications FINAL WHERE recipient_id = %(r)s
        ORDER BY created_at DESC, notification_id LIMIT %(n)s
        """,
        {"r": recipient_id, "n": limit},
    )
    return [
        InboxItem(str(i), str(k), str(w), str(t), str(b), utc(c) or c) for i, k, w, t, b, c in rows
    ]


def preferences(wh: Warehouse, member_id: str) -> dict[str, bool]:
    """Each kind a member may turn off -> on or off (on unless the member turned it off)."""
    rows = wh.query(
        "SELECT kind, enabled FROM reminder_preferences FINAL WHERE member_id = %(m)s",
        {"m": member_id},
    )
    chosen = {str(k): bool(e) for k, e in rows}
    return {k: chosen.get(k, True) for k in MEMBER_KINDS}


def turned_off(wh: Warehouse, kind: NotificationKind, member_ids: list[str]) -> set[str]:
    """Of `member_ids`, those who turned `kind` off."""
    if not member_ids:
        return set()
    rows = wh.query(
        "SELECT member_id FROM reminder_preferences FINAL "
        "WHERE kind = %(k)s AND NOT enabled AND member_id IN %(ms)s",
        {"k": kind, "ms": member_ids},
    )
    return {str(r[0]) for r in rows}


def existing(wh: Warehouse, ids: list[str]) -> set[str]:
    """Of these notification ids, the ones already in an inbox."""
    if not ids:
        return set()
    rows = wh.query(
        "SELECT DISTINCT notification_id FROM notifications WHERE notification_id IN %(ids)s",
        {"ids": ids},
    )
    return {str(r[0]) for r in rows}


def recipients(wh: Warehouse, member_ids: list[str]) -> list[Recipient]:
    """Names of these members, in the order given (unknown ids left out)."""
    names = member_names(wh, member_ids)
    return [Recipient(m, names[m]) for m in member_ids if m in names]


def phone(wh: Warehouse, member_id: str) -> str | None:
    """The member's phone, to send an SMS to (never shown by this read's callers)."""
    rows = wh.query("SELECT phone FROM members FINAL WHERE id = %(m)s", {"m": member_id})
    return str(rows[0][0]) if rows and rows[0][0] else None


def sent(wh: Warehouse, notification_id: str, channel: str) -> bool:
    """Whether this notification was already sent on this channel."""
    rows = wh.query(
        "SELECT count() FROM notification_deliveries FINAL "
        "WHERE notification_id = %(n)s AND channel = %(c)s AND status = 'sent'",
        {"n": notification_id, "c": channel},
    )
    return bool(rows and int(rows[0][0]))


def deliveries(wh: Warehouse, notification_id: str) -> list[tuple[str, str, int, str]]:
    """(channel, status, attempts, error) of a notification's sends."""
    rows = wh.query(
        "SELECT channel, status, attempts, error FROM notification_deliveries FINAL "
        "WHERE notification_id = %(n)s ORDER BY channel",
        {"n": notification_id},
    )
    return [(str(c), str(s), int(a), str(e)) for c, s, a, e in rows]
