"""Turns each member's scans into sessions (see streams.sessions for the rules)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from services.events import CheckinScanned, parse_event
from streams.app import app, checkins_topic, dead_letter_topic, sessions_topic
from streams.sessions import MemberState, SessionRules, apply

log = logging.getLogger(__name__)

RULES = SessionRules()

# Keyed by member id, partitioned like the checkins topic (the same key), so a member's state
# lives with the partition that carries their scans.
member_state = app.Table(
    "member-session-state",
    default=None,
    key_type=str,
    value_type=str,
    partitions=checkins_topic.partitions,
)


@app.agent(checkins_topic)
async def pair_sessions(stream: Any) -> AsyncIterator[None]:
    async for event in stream.events():
        raw: bytes = event.value
        try:
            scan = parse_event(raw)
            if not isinstance(scan, CheckinScanned):
                raise ValueError(f"unexpected event type {scan.event_type} on the checkins topic")
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            await dead_letter_topic.send(
                key=event.key,
                value=raw,
                headers={"reason": str(exc)[:2000].encode(), "source": b"pair_sessions"},
            )
            continue
        key = scan.member_id
        stored = member_state.get(key)
        state = MemberState.model_validate_json(stored) if stored else MemberState()
        new_state, sessions = apply(state, scan, RULES)
        if new_state != state:
            member_state[key] = new_state.model_dump_json()
        for s in sessions:
            await sessions_topic.send(key=s.session_id.encode(), value=s.to_bytes())
        yield None
