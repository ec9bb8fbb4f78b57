"""Turns each member's scans and reviews into sessions and weekly totals (rules: streams.sessions).

One agent reads three co-partitioned topics keyed alike: `checkins` and `session-reviews`
(key: member id) and `session-clock` (one tick per partition). faust writes a table entry to
the changelog partition of the event being processed, so a member's state and the partition's
index of members with open sessions both live with partition p of all three topics, and a
worker that takes over partition p recovers exactly that state.

Delivery: faust flushes the producer (changelog and outputs) before committing input offsets,
so a worker killed mid-way re-reads events whose effects may be partly saved. The rules make
that harmless: a re-read event is recognised by its id and the latest records are published
again with the same ids and revisions, which every consumer deduplicates.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from faust.types import TP

from services import metrics
from services.events import (
    CheckinScanned,
    ClockTicked,
    Event,
    MemberWeekRecorded,
    SessionRecorded,
    SessionReviewed,
    derived_id,
    parse_event,
    utcnow,
)
from services.topics import CHECKINS, MEMBER_WEEKS, SESSION_CLOCK, SESSION_REVIEWS
from streams.app import app, dead_letter_topic, raw_topic, sessions_topic, settings
from streams.sessions import LateScan, MemberState, SessionRules, on_clock, on_review, on_scan

log = logging.getLogger(__name__)

RULES = SessionRules.from_settings(settings)

_CHECKINS = settings.topic(CHECKINS.name)
_REVIEWS = settings.topic(SESSION_REVIEWS.name)
_CLOCK = settings.topic(SESSION_CLOCK.name)

session_input = raw_topic(CHECKINS, SESSION_REVIEWS, SESSION_CLOCK)
clock_topic = raw_topic(SESSION_CLOCK)
member_weeks_topic = raw_topic(MEMBER_WEEKS)

# Keyed by member id; the value is MemberState as JSON.
member_state = app.Table(
    "member-session-state",
    default=None,
    key_type=str,
    value_type=str,
    partitions=CHECKINS.partitions,
)
# Keyed "p<partition>": {"clock": latest tick (ISO), "open": [member ids with an open session]}.
# The clock ticks only these members, so a tick costs the open sessions, not every member.
partition_index = app.Table(
    "session-partition-index",
    default=None,
    key_type=str,
    value_type=str,
    partitions=CHECKINS.partitions,
)


def _expected(topic: str) -> type[Event]:
    if topic == _REVIEWS:
        return SessionReviewed
    if topic == _CLOCK:
        return ClockTicked
    return CheckinScanned


def _load_index(partition: int) -> tuple[datetime | None, set[str]]:
    raw = partition_index.get(f"p{partition}")
    if not raw:
        return None, set()
    data = json.loads(raw)
    clock = datetime.fromisoformat(data["clock"]) if data.get("clock") else None
    return clock, set(data.get("open", []))


def _save_index(partition: int, clock: datetime | None, members: set[str]) -> None:
    partition_index[f"p{partition}"] = json.dumps(
        {"clock": clock.isoformat() if clock else None, "open": sorted(members)}
    )


def _load_member(member_id: str) -> MemberState:
    raw = member_state.get(member_id)
    return MemberState.model_validate_json(raw) if raw else MemberState(member_id=member_id)


async def _publish(out: list[Event]) -> None:
    for e in out:
        if isinstance(e, SessionRecorded):
            await sessions_topic.send(key=e.session_id.encode(), value=e.to_bytes())
            metrics.AGENT_SESSIONS.inc()
        elif isinstance(e, MemberWeekRecorded):
            key = f"{e.member_id}|{e.week}|{e.station_id}"
            await member_weeks_topic.send(key=key.encode(), value=e.to_bytes())
            metrics.AGENT_WEEKS.inc()


async def _dead_letter(key: bytes | None, raw: bytes, reason: str, topic: str = _CHECKINS) -> None:
    # source_topic: where `python -m services.deadletter replay` sends it back once fixed.
    await dead_letter_topic.send(
        key=key,
        value=raw,
        headers={
            "reason": reason[:2000].encode(),
            "source": b"pair_sessions",
            "source_topic": topic.encode(),
        },
    )
    metrics.DEAD_LETTERS.labels(
        source="pair_sessions", topic=topic.removeprefix(settings.topic_prefix)
    ).inc()


@app.agent(session_input)
async def pair_sessions(stream: Any) -> AsyncIterator[None]:
    # stream.events() (not take()): each event is acknowledged only after its body finished,
    # so an event is never committed before its outputs were handed to the producer.
    async for event in stream.events():
        raw: bytes = event.value
        topic: str = event.message.topic
        metrics.AGENT_SCANS.labels(kind=topic.removeprefix(settings.topic_prefix)).inc()
        partition: int = event.message.partition
        try:
            parsed = parse_event(raw)
            expected = _expected(topic)
            if not isinstance(parsed, expected):
                raise ValueError(f"unexpected event type {parsed.event_type} on {topic}")
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            await _dead_letter(event.key, raw, str(exc), topic)
            yield None
            continue

        clock, open_members = _load_index(partition)
        before = set(open_members)
        if isinstance(parsed, ClockTicked):
            now = parsed.occurred_at
            clock = max(clock, now) if clock else now
            for member_id in sorted(open_members):
                state, out = on_clock(_load_member(member_id), parsed.event_id, clock, RULES)
                member_state[member_id] = state.model_dump_json()
                await _publish(out)
                if not state.has_open:
                    open_members.discard(member_id)
            _save_index(partition, clock, open_members)
            yield None
            continue

        member_id = parsed.member_id  # type: ignore[attr-defined]
        state = _load_member(member_id)
        try:
            if isinstance(parsed, CheckinScanned):
                new_state, out = on_scan(state, parsed, RULES, clock)
            else:
                assert isinstance(parsed, SessionReviewed)
                new_state, out = on_review(state, parsed, RULES)
        except LateScan as exc:
            await _dead_letter(event.key, raw, str(exc), topic)
            yield None
            continue
        if new_state != state:
            member_state[member_id] = new_state.model_dump_json()
        await _publish(out)
        if new_state.has_open:
            open_members.add(member_id)
        else:
            open_members.discard(member_id)
        if open_members != before:
            _save_index(partition, clock, open_members)
        yield None


@app.timer(interval=settings.session_tick_s)  # type: ignore[untyped-decorator]
async def tick_session_clock() -> None:
    """Produces the clock into each clock partition this worker owns (see events.ClockTicked)."""
    now = utcnow()
    for tp in sorted(app.assignor.assigned_actives()):
        if not isinstance(tp, TP) or tp.topic != _CLOCK:
            continue
        tick = ClockTicked(
            event_id=derived_id("tick", tp.topic, str(tp.partition), now.isoformat()),
            occurred_at=now,
            partition=tp.partition,
        )
        await clock_topic.send(
            key=f"p{tp.partition}".encode(), value=tick.to_bytes(), partition=tp.partition
        )
