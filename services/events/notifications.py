"""Reminders: a notification for a member's (or a community's) inbox, what became of sending it
beyond the inbox, and a member's choice to receive a kind of reminder or not."""

from __future__ import annotations

from typing import Literal

from services.events.base import Event, event_type

# slot_reminder: the day before and the hour before a slot the member has a place in.
ReminderKind = Literal["weekly_nudge", "organizer_digest", "slot_reminder"]
RecipientKind = Literal["member", "community"]
DeliveryStatus = Literal["sent", "failed", "no_address", "opted_out", "expired"]


@event_type
class NotificationCreated(Event):
    event_type: Literal["notification.created"] = "notification.created"
    # Derived from kind, recipient and period (services.reminders.notification_id): deciding
    # the same reminder twice, in two processes or after a restart, is the same notification.
    notification_id: str
    kind: ReminderKind
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
    channel: Literal["sms"]
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
