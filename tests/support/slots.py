"""Slots that already ran, for the tests that read attendance, rosters and no-shows: the API
accepts only slots to come, so these are published to the log as they were then."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from services import activities as rules
from services import topics
from services.events import ActivitySpec
from tests.support.stack import Stack


def publish_past_slot(
    stack: Stack, spec: ActivitySpec, prefix: str, members: Sequence[Mapping[str, Any]]
) -> str:
    """The slot `spec`, created by its community's organizer a day before its start and signed
    up for by `members` (records with `id`, `unit_id`, `community_id`) five minutes later. Its
    id."""
    ctx = stack.client.app.state.ctx  # type: ignore[attr-defined]
    aid = prefix + uuid.uuid4().hex[:8]
    t0 = spec.starts_at - timedelta(days=1)
    cmds = [
        rules.command(
            activity_id=aid,
            action="create",
            at=t0,
            basis="c",
            actor_role="organizer",
            actor_id=spec.community_id,
            spec=spec,
        )
    ]
    for m in members:
        cmds.append(
            rules.command(
                activity_id=aid,
                action="sign_up",
                at=t0 + timedelta(minutes=5),
                basis=str(m["id"]),
                actor_role="member",
                actor_id=m["id"],
                member_id=m["id"],
                member_unit_id=m["unit_id"],
                member_community_id=m["community_id"],
            )
        )
    for c in cmds:
        ctx.publisher.send_sync(topics.ACTIVITY_COMMANDS, aid, c)
    return aid
