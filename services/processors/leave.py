"""Excused-week requests and decisions, and standing posts' steps, into their tables."""

from __future__ import annotations

from services import topics
from services.events import ExcusalRecorded, PostRecorded
from services.processors.base import Route, route

EXCUSALS = route(
    Route(
        topics.EXCUSALS,
        "excusals",
        (
            "event_id",
            "request_id",
            "action",
            "member_id",
            "community_id",
            "unit_id",
            "weeks",
            "reason",
            "note",
            "actor_role",
            "actor_id",
            "occurred_at",
        ),
        (ExcusalRecorded,),
        lambda e: (
            e.event_id,
            e.request_id,
            e.action,
            e.member_id,
            e.community_id,
            e.unit_id,
            list(e.weeks),
            e.reason,
            e.note,
            e.actor_role,
            e.actor_id,
            e.occurred_at,
        ),
    )
)

POSTS = route(
    Route(
        topics.POSTS,
        "post_events",
        (
            "event_id",
            "post_id",
            "action",
            "community_id",
            "grid_id",
            "kind",
            "title",
            "description",
            "member_id",
            "reason",
            "actor_role",
            "actor_id",
            "occurred_at",
        ),
        (PostRecorded,),
        lambda e: (
            e.event_id,
            e.post_id,
            e.action,
            e.community_id,
            e.grid_id,
            e.kind,
            e.title,
            e.description,
            e.member_id,
            e.reason,
            e.actor_role,
            e.actor_id,
            e.occurred_at,
        ),
    )
)
