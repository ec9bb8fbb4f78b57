"""Judges every activity command in log order (see services.activities for the rules).

Each activity's state (its fields, every member's sign-up in order) lives in a changelog-backed
table keyed by the activity id, partitioned like the commands topic (same key), so the worker
owning a partition owns those activities and two sign-ups for the last place are judged one
after the other. Accepted commands emit the activity's latest state and every sign-up they
changed (a promotion too) to compacted topics; refused ones a rejection record. A cancelled
slot's members and a member promoted from the waiting list get a notification on
`notifications` (services.activities.notices; ids derived, so a redelivery is the same one). The
same ledger as the lists agent (streams/guarantee.py) keeps nothing lost and nothing doubled.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from services.activities import ActivityState, apply, changed_signups, notices, rejection
from services.events import (
    ActivityCommand,
    ActivityRecorded,
    SignupRecorded,
    derived_id,
    parse_event,
)
from services.topics import (
    ACTIVITIES,
    ACTIVITY_COMMANDS,
    ACTIVITY_REJECTIONS,
    ACTIVITY_SIGNUPS,
    ACTIVITY_STATE_TABLE,
    NOTIFICATIONS,
)
from streams.app import app, dead_letter_topic, raw_topic, settings
from streams.guarantee import CATCH_UP_S, DropOnce, Guarantee, OneAtATime, applied_key

log = logging.getLogger(__name__)

commands_topic = raw_topic(ACTIVITY_COMMANDS)
activities_topic = raw_topic(ACTIVITIES)
signups_topic = raw_topic(ACTIVITY_SIGNUPS)
rejections_topic = raw_topic(ACTIVITY_REJECTIONS)
notifications_topic = raw_topic(NOTIFICATIONS)

activity_state = app.Table(
    ACTIVITY_STATE_TABLE,
    default=None,
    key_type=str,
    value_type=str,
    partitions=ACTIVITY_COMMANDS.partitions,
)
GUARANTEE = Guarantee(
    app,
    {settings.topic(ACTIVITY_COMMANDS.name)},
    lambda p: activity_state.get(applied_key(p)),
    settings.kafka_bootstrap,
    prefix=settings.topic_prefix,
)


@app.agent(commands_topic)
async def judge_activity_commands(stream: Any) -> AsyncIterator[None]:
    async for _ in COMMANDS.loop(stream):
        yield None


@app.timer(interval=CATCH_UP_S)  # type: ignore[untyped-decorator]
async def catch_up_activities() -> None:
    await COMMANDS.catch_up()


async def _judge(event: Any) -> None:
    raw: bytes = event.value
    try:
        cmd = parse_event(raw)
        if not isinstance(cmd, ActivityCommand):
            raise ValueError(f"unexpected event type {cmd.event_type} on {ACTIVITY_COMMANDS.name}")
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        await dead_letter_topic.send(
            key=event.key,
            value=raw,
            headers={
                "reason": str(exc)[:2000].encode(),
                "source": b"judge_activity_commands",
                # Where it came from, for the dead-letter replay (services/deadletter.py).
                "source_topic": ACTIVITY_COMMANDS.name.encode(),
            },
        )
        return
    stored = activity_state.get(cmd.activity_id)
    state = ActivityState.model_validate_json(stored) if stored else ActivityState()
    new, outcomes = apply(state, cmd)
    if new == state:
        return  # a redelivered command: already judged
    activity_state[cmd.activity_id] = new.model_dump_json()
    a = new.activity
    if a is not None and (state.activity is None or a.revision != state.activity.revision):
        rec = ActivityRecorded(
            event_id=derived_id("activity.recorded", a.activity_id, str(a.revision)),
            occurred_at=a.updated_at,
            activity=a,
        )
        await activities_topic.send(key=a.activity_id.encode(), value=rec.to_bytes())
    for s in changed_signups(outcomes):
        sr = SignupRecorded(
            event_id=derived_id("activity.signup", s.activity_id, s.member_id, str(s.version)),
            occurred_at=s.updated_at,
            signup=s,
            command_event_id=cmd.event_id,
        )
        key = f"{s.activity_id}|{s.member_id}".encode()
        await signups_topic.send(key=key, value=sr.to_bytes())
    for n in notices(state, new, cmd, outcomes):
        # Keyed like the reminder job's: by recipient.
        await notifications_topic.send(key=n.recipient_id.encode(), value=n.to_bytes())
    rej = rejection(cmd, outcomes)
    if rej is not None:
        log.info("refused %s %s: %s", cmd.action, cmd.activity_id, rej.reason)
        await rejections_topic.send(key=cmd.activity_id.encode(), value=rej.to_bytes())


COMMANDS = OneAtATime(
    GUARANTEE,
    activity_state,
    _judge,
    DropOnce(settings.command_fault_skip, settings.topic_prefix),
)
