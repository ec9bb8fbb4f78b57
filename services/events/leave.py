"""Excused weeks (请假) and standing posts (岗位认领): every request and decision as an event.

Both keep their history as the log itself: the state of a request or a post is read by folding
its events in time order with the core's rules (`services.excused`, `services.posts`), so a
decision that raced another is kept and judged the same way by every reader.
"""

from __future__ import annotations

from typing import Literal

from services.events.base import Event, event_type

ExcusalAction = Literal["request", "approve", "decline"]
PostAction = Literal["create", "claim", "approve", "decline", "leave", "end"]
PostKind = Literal["unit_post", "building_group", "other"]


@event_type
class ExcusalRecorded(Event):
    """A request to be excused for some weeks, or an organizer's decision on one. A decision
    carries the request's member, community and unit (not its weeks), so every read of one
    member's or one community's requests is a keyed slice."""

    event_type: Literal["excusal.recorded"] = "excusal.recorded"
    request_id: str
    action: ExcusalAction
    member_id: str
    community_id: str
    unit_id: str
    weeks: tuple[str, ...] = ()
    # The request's reason code; on a decline, the organizer's reason is in `note`.
    reason: str = ""
    note: str = ""
    actor_role: str
    actor_id: str


@event_type
class PostRecorded(Event):
    """One step in a standing post's life: created by the organizer, claimed by a member,
    the claim approved or declined, left by its holder or ended by the organizer."""

    event_type: Literal["post.recorded"] = "post.recorded"
    post_id: str
    action: PostAction
    community_id: str
    grid_id: str
    # Set on `create` (a post's title and kind never change); empty on the other steps.
    kind: str = ""
    title: str = ""
    description: str = ""
    # The claimant or holder the step is about (empty on `create`).
    member_id: str = ""
    reason: str = ""
    actor_role: str
    actor_id: str
