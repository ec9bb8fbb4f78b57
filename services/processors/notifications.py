"""Notifications, their deliveries and members' reminder preferences into their tables."""

from __future__ import annotations

from services import topics
from services.events import (
    NotificationCreated,
    NotificationDelivered,
    ReminderPreferenceSet,
    WechatBound,
)
from services.processors.base import Route, route

NOTIFICATIONS = route(
    Route(
        topics.NOTIFICATIONS,
        "notifications",
        (
            "notification_id",
            "kind",
            "recipient_kind",
            "recipient_id",
            "community_id",
            "week",
            "title",
            "body",
            "created_at",
        ),
        (NotificationCreated,),
        lambda e: (
            e.notification_id,
            e.kind,
            e.recipient_kind,
            e.recipient_id,
            e.community_id,
            e.week,
            e.title,
            e.body,
            e.occurred_at,
        ),
    )
)

DELIVERIES = route(
    Route(
        topics.NOTIFICATION_DELIVERIES,
        "notification_deliveries",
        ("notification_id", "recipient_id", "channel", "status", "attempts", "error", "at"),
        (NotificationDelivered,),
        lambda e: (
            e.notification_id,
            e.recipient_id,
            e.channel,
            e.status,
            e.attempts,
            e.error,
            e.occurred_at,
        ),
    )
)

PREFERENCES = route(
    Route(
        topics.REMINDER_PREFERENCES,
        "reminder_preferences",
        ("member_id", "kind", "enabled", "set_by", "set_at"),
        (ReminderPreferenceSet,),
        lambda e: (e.member_id, e.kind, e.enabled, e.set_by, e.occurred_at),
    )
)

WECHAT_BINDINGS = route(
    Route(
        topics.WECHAT_BINDINGS,
        "wechat_bindings",
        ("member_id", "openid", "bound_at"),
        (WechatBound,),
        lambda e: (e.member_id, e.openid, e.occurred_at),
    )
)
