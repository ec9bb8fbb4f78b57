"""The reminder job, run where the sink runs (it reads the warehouse): each REMINDERS_INTERVAL_S
it decides the reminders due (services.reminders) and publishes them to `notifications`; the
sink puts them in the inboxes. For each channel configured (an SMS gateway, WeChat subscription
messages: a `services.sms.Sender` each), a delivery consumer reads `notifications` in its own
consumer group, sends each member's reminder and records the outcome on
`notification-deliveries`, committing only after that record is acknowledged.

Several sink processes may run the job: they decide the same notifications (the ids are derived
from kind, recipient, week and moment), the inbox keeps one, and the delivery consumer skips an
id it has sent (remembered in the process, and looked up among the recorded deliveries). The
one remaining double send is a crash between the gateway's acceptance and the outcome's record:
the gateway gets the notification id as `Idempotency-Key` for that case.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from services import periodic, reminders, topics
from services.events import (
    Event,
    NotificationCreated,
    NotificationDelivered,
    parse_event,
    utcnow,
)
from services.events.notifications import DeliveryStatus
from services.publisher import Publisher
from services.reads import activities as activity_reads
from services.reads import notifications as inbox_reads
from services.reads.registry import community_names, community_stations
from services.reads.weeks import community_week, parse_week
from services.settings import Settings
from services.sms import Sender, SmsGateway
from services.timeutil import iso_week, local_midnight
from services.topics import TopicSpec
from services.warehouse.client import Warehouse
from services.wechat import WechatSubscription

log = logging.getLogger(__name__)

# A reminder not sent within this long of its decision is not sent at all (a gateway configured
# later must not deliver last month's nudges).
SEND_WITHIN = timedelta(hours=12)


def decide(wh: Warehouse, now: datetime) -> list[NotificationCreated]:
    """The reminders due at `now` that no inbox holds yet, over every community."""
    week = iso_week(now)
    _, last_day = parse_week(week)
    out: list[NotificationCreated] = slot_reminders(wh, now)
    nudging = reminders.due_moment(now, reminders.NUDGE_MOMENTS) is not None
    digesting = reminders.due_moment(now, (reminders.DIGEST_MOMENT,)) is not None
    if not (nudging or digesting):
        return _new(wh, out)
    week_bounds = (
        local_midnight(last_day - timedelta(days=6)),
        local_midnight(last_day + timedelta(days=1)),
    )
    for community_id, name in community_names(wh):
        figures = community_week(wh, community_id, week, last_day, now)
        people = inbox_reads.recipients(wh, figures.not_served)
        if nudging:
            off = inbox_reads.turned_off(wh, "weekly_nudge", figures.not_served)
            signed = activity_reads.signed_up_in(wh, community_id, *week_bounds)
            out += reminders.weekly_nudges(
                now, community_id, name, people, off, signed_up=frozenset(signed)
            )
        if digesting:
            digest = reminders.organizer_digest(
                now, community_id, name, figures.registered, [p.name for p in people]
            )
            if digest is not None:
                out.append(digest)
    return _new(wh, out)


def _new(wh: Warehouse, out: list[NotificationCreated]) -> list[NotificationCreated]:
    known = inbox_reads.existing(wh, [n.notification_id for n in out])
    return [n for n in out if n.notification_id not in known]


def slot_reminders(wh: Warehouse, now: datetime) -> list[NotificationCreated]:
    """The day-before and hour-before reminders of the slots starting within a day."""
    held = activity_reads.places_starting(wh, now, now + reminders.SLOT_DAY_BEFORE)
    if not held:
        return []
    members = sorted({s.member_id for _, s in held})
    names = {r.member_id: r.name for r in inbox_reads.recipients(wh, members)}
    stations: dict[str, str] = {}
    for a, _ in held:
        if a.station_id and a.station_id not in stations:
            stations.update({sid: n for sid, n, _ in community_stations(wh, a.community_id)})
    places = [
        reminders.slot_place(a, s.member_id, names.get(s.member_id, ""), stations) for a, s in held
    ]
    off = inbox_reads.turned_off(wh, "slot_reminder", members)
    return reminders.slot_reminders(now, places, off)


class Decider:
    def __init__(
        self,
        settings: Settings,
        wh: Warehouse,
        publisher: Publisher,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.wh = wh
        self.publisher = publisher
        self.clock = clock

    def run_once(self) -> int:
        now = self.clock()
        s = self.settings
        if reminders.in_quiet_hours(now, s.reminders_quiet_start_h, s.reminders_quiet_end_h):
            return 0
        due = decide(self.wh, now)
        self.publisher.send_many_sync([(topics.NOTIFICATIONS, n.recipient_id, n) for n in due])
        if due:
            log.info("reminders: %d decided", len(due))
        return len(due)


class Deliverer:
    """Sends each member's reminder on one channel (a `Sender`: SMS, WeChat), once, and records
    what became of it. Each channel has its own consumer group, so a slow or failing channel
    holds back no other."""

    def __init__(
        self, settings: Settings, wh: Warehouse, publisher: Publisher, gateway: Sender
    ) -> None:
        self.settings = settings
        self.wh = wh
        self.publisher = publisher
        self.gateway = gateway
        self.channel = gateway.channel
        self._done: OrderedDict[str, None] = OrderedDict()

    def outcome(self, n: NotificationCreated, now: datetime) -> NotificationDelivered | None:
        """Sends one notification if it should be; None when there is nothing to record (not a
        member's, or sent already)."""
        if n.recipient_kind != "member" or n.notification_id in self._done:
            return None
        if inbox_reads.sent(self.wh, n.notification_id, self.channel):
            self._remember(n.notification_id)
            return None

        def record(
            status: DeliveryStatus, attempts: int = 0, error: str = ""
        ) -> NotificationDelivered:
            return NotificationDelivered(
                event_id=f"{n.notification_id}:{self.channel}:{status}:{attempts}",
                occurred_at=utcnow(),
                notification_id=n.notification_id,
                recipient_id=n.recipient_id,
                channel=self.channel,
                status=status,
                attempts=attempts,
                error=error,
            )

        if now - n.occurred_at > SEND_WITHIN:
            return record("expired")
        # A service notice (a slot cancelled, a place given) cannot be turned off.
        if n.kind in reminders.MEMBER_KINDS and n.recipient_id in inbox_reads.turned_off(
            self.wh, n.kind, [n.recipient_id]
        ):
            return record("opted_out")
        address = self.gateway.address(self.wh, n.recipient_id)
        if not address:
            return record("no_address")
        result = self.gateway.deliver(n.notification_id, address, n.title, n.body)
        if result.status == "sent":
            self._remember(n.notification_id)
        return record(result.status, result.attempts, result.error)

    def _remember(self, notification_id: str) -> None:
        self._done[notification_id] = None
        while len(self._done) > 100_000:
            self._done.popitem(last=False)

    def handle(self, values: list[bytes]) -> None:
        """One polled batch: send, record every outcome, wait for the records' acks."""
        now = utcnow()
        records: list[tuple[TopicSpec, str, Event]] = []
        for raw in values:
            try:
                event = parse_event(raw)
            except ValueError:
                continue  # the sink dead-letters it; nothing to send
            if isinstance(event, NotificationCreated):
                out = self.outcome(event, now)
                if out is not None:
                    records.append((topics.NOTIFICATION_DELIVERIES, out.notification_id, out))
        self.publisher.send_many_sync(records)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._consume(stop)
            except Exception:
                # Not committed: a new consumer reads the batch again (sent ones are skipped).
                log.exception("reminders: delivery failed; retrying in 5 s")
                stop.wait(5)

    def _consume(self, stop: threading.Event) -> None:
        from kafka import KafkaConsumer

        s = self.settings
        consumer = KafkaConsumer(
            s.topic(topics.NOTIFICATIONS.name),
            bootstrap_servers=s.kafka_bootstrap.split(","),
            # The SMS group keeps the name it had before other channels existed.
            group_id=s.topic(
                "notification-delivery"
                if self.channel == "sms"
                else f"notification-delivery-{self.channel}"
            ),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            api_version=(3, 9),
        )
        try:
            while not stop.is_set():
                polled: dict[Any, list[Any]] = consumer.poll(timeout_ms=1000, max_records=200)
                values = [m.value for batch in polled.values() for m in batch]
                if values:
                    self.handle(values)
                    consumer.commit()
        finally:
            consumer.close()


def start(settings: Settings, wh: Warehouse, stop: threading.Event) -> list[threading.Thread]:
    """Starts the decider (and a delivery consumer per channel configured: an SMS gateway,
    WeChat subscription messages) in daemon threads
    that end when `stop` is set; nothing when REMINDERS_INTERVAL_S=0."""
    if not settings.reminders_interval_s:
        return []
    publisher = Publisher(settings)
    decider = Decider(settings, wh, publisher)
    threads = [periodic.every("reminders", settings.reminders_interval_s, stop, decider.run_once)]
    senders: list[Sender] = []
    if SmsGateway.enabled(settings):
        senders.append(SmsGateway(settings))
    if WechatSubscription.enabled(settings):
        senders.append(WechatSubscription(settings))
    for sender in senders:
        deliverer = Deliverer(settings, wh, publisher, sender)
        threads.append(
            threading.Thread(target=deliverer.run, args=(stop,), name=sender.channel, daemon=True)
        )
    for t in threads:
        t.start()
    return threads
