"""Feedback, the three lists (wishes, resources, refused commands) and campaigns into their tables."""

from __future__ import annotations

import json

from services import topics
from services.events import (
    CampaignUpserted,
    FeedbackRecorded,
    ListCommandRejected,
    ListTransitionApplied,
    ResourceFields,
    ResourceRecorded,
    WishFields,
    WishRecorded,
)
from services.processors.base import Route, Row, route

FEEDBACK_COLUMNS = (
    "feedback_id",
    "version",
    "kind",
    "member_id",
    "unit_id",
    "community_id",
    "session_id",
    "period",
    "period_start",
    "period_end",
    "rating",
    "grade",
    "comment",
    "author_role",
    "author_id",
    "client_event_id",
    "recorded_at",
)


def feedback_row(e: FeedbackRecorded) -> Row:
    return (
        e.feedback_id,
        e.version,
        e.kind,
        e.member_id,
        e.unit_id,
        e.community_id,
        e.session_id,
        e.period,
        e.period_start,
        e.period_end,
        e.rating,
        e.grade,
        e.comment,
        e.author_role,
        e.author_id,
        e.client_event_id,
        e.occurred_at,
    )


FEEDBACK = route(
    Route(topics.FEEDBACK, "feedback", FEEDBACK_COLUMNS, (FeedbackRecorded,), feedback_row)
)

# The state tables' columns are exactly the state models' fields.
WISH_COLUMNS = tuple(WishFields.model_fields)
RESOURCE_COLUMNS = tuple(ResourceFields.model_fields)

WISHES = route(
    Route(
        topics.WISHES,
        "wishes",
        WISH_COLUMNS,
        (WishRecorded,),
        lambda e: tuple(getattr(e.wish, c) for c in WISH_COLUMNS),
    )
)

RESOURCES = route(
    Route(
        topics.RESOURCES,
        "resources",
        RESOURCE_COLUMNS,
        (ResourceRecorded,),
        lambda e: tuple(getattr(e.resource, c) for c in RESOURCE_COLUMNS),
    )
)

REJECTIONS = route(
    Route(
        topics.LIST_REJECTIONS,
        "list_rejections",
        (
            "event_id",
            "command_event_id",
            "item_kind",
            "item_id",
            "action",
            "actor_role",
            "actor_id",
            "code",
            "reason",
            "occurred_at",
        ),
        (ListCommandRejected,),
        lambda e: (
            e.event_id,
            e.command_event_id,
            e.item_kind,
            e.item_id,
            e.action,
            e.actor_role,
            e.actor_id,
            e.code,
            e.reason,
            e.occurred_at,
        ),
    )
)

TRANSITIONS = route(
    Route(
        topics.LIST_TRANSITIONS,
        "list_transitions",
        (
            "event_id",
            "command_event_id",
            "item_kind",
            "item_id",
            "action",
            "actor_role",
            "actor_id",
            "revision",
            "status",
            "reason",
            "occurred_at",
        ),
        (ListTransitionApplied,),
        lambda e: (
            e.event_id,
            e.command_event_id,
            e.item_kind,
            e.item_id,
            e.action,
            e.actor_role,
            e.actor_id,
            e.revision,
            e.status,
            e.reason,
            e.occurred_at,
        ),
    )
)

CAMPAIGN_COLUMNS = (
    "id",
    "version",
    "name",
    "community_id",
    "starts_at",
    "ends_at",
    "count_community_stations",
    "assignments",
    "assigned_member_ids",
    "assigned_unit_ids",
    "updated_at",
    "updated_by",
)


def campaign_row(e: CampaignUpserted) -> Row:
    c = e.record
    members = sorted({m for a in c.assignments for m in a.member_ids})
    units = sorted({u for a in c.assignments for u in a.unit_ids})
    return (
        c.id,
        c.version,
        c.name,
        c.community_id,
        c.starts_at,
        c.ends_at,
        c.count_community_stations,
        json.dumps([a.model_dump() for a in c.assignments], ensure_ascii=False),
        members,
        units,
        c.updated_at,
        c.updated_by,
    )


CAMPAIGNS = route(
    Route(topics.CAMPAIGNS, "campaigns", CAMPAIGN_COLUMNS, (CampaignUpserted,), campaign_row)
)
