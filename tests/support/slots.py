"""Slots for the tests: the body of one to come (`slot`), and slots that already ran, for the
tests that read attendance, rosters and no-shows (`publish_past_slot`): the API accepts only
slots to come, so these are published to the log as they were then."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from services import activities as rules
from services import topics
from services.events import ActivitySpec
from tests.support.stack import Stack


def slot(county: Mapping[str, Any], **kw: Any) -> dict[str, Any]:
    """The body of `POST /v1/activities` for a two-hour slot in two days at the county's
    community station (one place), with `kw` over it."""
    start = datetime.now(UTC) + timedelta(days=2)
    body: dict[str, Any] = {
        "community_id": county["community"]["id"],
        "title": "楼道清理",
        "station_id": county["station"]["id"],
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(),
        "capacity": 1,
    }
    body.update(kw)
    return body


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
