"""Reminders (提醒): a member's inbox and the kinds they receive; a community's digests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Caller, Ctx, community_desk, gate, readable_member
from services import topics
from services.access import Action
from services.events import Member, ReminderPreferenceSet
from services.reads import notifications as reads

router = APIRouter(tags=["reminders"])


class InboxItemOut(BaseModel):
    id: str
    kind: str = Field(
        description="weekly_nudge | organizer_digest | slot_reminder | slot_cancelled | slot_promoted"
    )
    week: str = Field(description="the ISO week it is about")
    title: str
    body: str
    created_at: datetime


class Inbox(BaseModel):
    items: list[InboxItemOut]


class Preferences(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weekly_nudge: bool = Field(
        description="the Thursday evening and Saturday morning reminder while not served"
    )
    # Service slots (issue 14): optional in a PUT, so a page that sets one kind leaves the other.
    slot_reminder: bool | None = Field(
        default=None,
        description="the day before and an hour before a slot the member has a place in",
    )


def _own(ctx: Ctx, caller: Caller, member_id: str, action: Action) -> Member:
    if action == "change":
        # The role gate first: the same 403 for every id, real or guessed.
        gate(caller, "reminders")
    return readable_member(ctx, caller, member_id, "reminders", action)


def _items(rows: list[reads.InboxItem]) -> Inbox:
    return Inbox(
        items=[
            InboxItemOut(
                id=r.notification_id,
                kind=r.kind,
                week=r.week,
                title=r.title,
                body=r.body,
                created_at=r.created_at,
            )
            for r in rows
        ]
    )


Limit = Annotated[int, Query(ge=1, le=200, description="newest first, at most this many")]


@router.get("/v1/members/{member_id}/inbox", response_model=Inbox)
def member_inbox(member_id: str, caller: Caller, ctx: Ctx, limit: Limit = 50) -> Inbox:
    """The member's reminders, newest first: only the member reads them."""
    m = _own(ctx, caller, member_id, "read")
    return _items(reads.inbox(ctx.warehouse, m.id, limit))


@router.get("/v1/members/{member_id}/reminder-preferences", response_model=Preferences)
def get_preferences(member_id: str, caller: Caller, ctx: Ctx) -> Preferences:
    """The kinds of reminder the member receives (each on until the member turns it off)."""
    m = _own(ctx, caller, member_id, "read")
    return Preferences(**reads.preferences(ctx.warehouse, m.id))


@router.put(
    "/v1/members/{member_id}/reminder-preferences", response_model=Preferences, status_code=202
)
def set_preferences(member_id: str, body: Preferences, caller: Caller, ctx: Ctx) -> Preferences:
    """Turns a kind of reminder on or off (kept as an event; the next decision respects it)."""
    m = _own(ctx, caller, member_id, "change")
    now = datetime.now(UTC)
    chosen = {"weekly_nudge": body.weekly_nudge, "slot_reminder": body.slot_reminder}
    for kind, enabled in chosen.items():
        if enabled is None:
            continue
        ctx.publisher.send_sync(
            topics.REMINDER_PREFERENCES,
            f"{m.id}|{kind}",
            ReminderPreferenceSet(
                event_id=str(uuid.uuid4()),
                occurred_at=now,
                member_id=m.id,
                kind=kind,
                enabled=enabled,
                set_by=f"{caller.role}:{caller.subject_id}",
            ),
        )
    return body


@router.get("/v1/communities/{community_id}/inbox", response_model=Inbox)
def community_inbox(community_id: str, caller: Caller, ctx: Ctx, limit: Limit = 20) -> Inbox:
    """The community's digests (Sunday evening's list of members not served), newest first."""
    community_desk(ctx, caller, community_id)
    return _items(reads.inbox(ctx.warehouse, community_id, limit))
