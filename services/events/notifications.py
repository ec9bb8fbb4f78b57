"""Reminders: a notification for a member's (or a community's) inbox, what became of sending it
beyond the inbox, and a member's choice to receive a kind of reminder or not."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.events.base import Event, event_type

# slot_reminder: the day before and the hour before a slot the member has a place in.
ReminderKind = Literal["weekly_nudge", "organizer_digest", "slot_reminder"]
# Service notices (issue 14) about a slot the member signed up for: the slot was cancelled
# (slot_cancelled), or a place came free and the member was promoted from the waiting list
# (slot_promoted). Not reminders: they tell the member something changed that they must know to
# act on, so they cannot be turned off (services.activities.notices).
ServiceNoticeKind = Literal["slot_cancelled", "slot_promoted"]
NotificationKind = ReminderKind | ServiceNoticeKind
RecipientKind = Literal["member", "community"]
# Where a reminder goes beyond the inbox: an SMS gateway, or a WeChat subscription message.
DeliveryChannel = Literal["sms", "wechat"]
DeliveryStatus = Literal["sent", "failed", "no_address", "opted_out", "expired"]


@event_type
class NotificationCreated(Event):
    event_type: Literal["notification.created"] = "notification.created"
    # Derived from kind, recipient and period (services.reminders.notification_id): deciding
    # the same reminder twice, in two processes or after a restart, is the same notification.
    notification_id: str
    kind: NotificationKind
    recipient_kind: RecipientKind
    recipient_id: str
    community_id: str
    week: str
    title: str
    body: str


@event_type
class NotificationDelivered(Event):
    event_type: Literal["notification.delivered"] = "notification.delivered"
    notification_id: str
    recipient_id: str
    channel: DeliveryChannel
    status: DeliveryStatus
    attempts: int
    error: str = ""


@event_type
class ReminderPreferenceSet(Event):
    event_type: Literal["reminder.preference"] = "reminder.preference"
    member_id: str
    kind: ReminderKind
    enabled: bool
    set_by: str


@event_type
class WechatBound(Event):
    """A member's WeChat openid (for this mini-program's subscription messages), set when the
    member binds through WeChat; an empty openid unbinds. The latest per member wins."""

    event_type: Literal["wechat.bound"] = "wechat.bound"
    member_id: str
    openid: str = Field(max_length=64)
