"""Two-way feedback, micro-wishes and the three lists (三单制), and campaigns (下沉).

Feedback and campaigns are records with a natural id and a monotonic version: the latest
version wins (ReplacingMergeTree), so a re-sent request is the same record. Wishes and
resources have a life whose transitions must be judged in order: the API publishes a
`ListCommand`, the lists agent accepts or refuses it in log order and emits the item's latest
state (`WishRecorded`, `ResourceRecorded`) or a `ListCommandRejected` with the reason.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.events.base import Event, UtcDatetime, event_type

FeedbackKind = Literal[
    # the community rates a member's service, on one session or on a period
    "member_service",
    # a member rates the community's arrangement of their service
    "community_arrangement",
    # the community's periodic evaluation of a member, sent to the member's unit (双向反馈)
    "unit_summary",
]
Grade = Literal["优秀", "良好", "一般", "较差"]
GRADES: tuple[Grade, ...] = ("优秀", "良好", "一般", "较差")


@event_type
class FeedbackRecorded(Event):
    """One evaluation; `version` orders edits of the same `feedback_id` (the latest wins)."""

    event_type: Literal["feedback.recorded"] = "feedback.recorded"
    feedback_id: str
    version: int = Field(ge=1)
    kind: FeedbackKind
    # Snapshotted at the time of the evaluation, like a scan's unit and community: a member
    # who moves later keeps the evaluation where it was earned.
    member_id: str
    unit_id: str
    community_id: str
    session_id: str | None = None
    # The span evaluated, in local (Asia/Shanghai) days: [period_start, period_end).
    period: str
    period_start: date
    period_end: date
    rating: int | None = Field(default=None, ge=1, le=5)
    grade: Grade | None = None
    comment: str = ""
    author_role: str
    author_id: str
    client_event_id: str | None = None


ItemKind = Literal["wish", "resource"]
ListAction = Literal[
    # wish
    "order",
    "dispatch",
    "accept",
    "decline",
    "complete",
    "confirm",
    "cancel",
    "unmatch",
    # resource
    "offer",
    "match",
    "release",
    "withdraw",
]
AssigneeKind = Literal["member", "unit"]
ActorRole = Literal["member", "organizer", "hr", "admin", "system"]


@event_type
class ListCommand(Event):
    """A requested transition of one wish or resource; keyed (and ordered) by `item_id`.

    Fields beyond the actor are the transition's arguments; which ones an action needs is the
    lists rules' business (services.lists), which refuse a command missing one.
    """

    event_type: Literal["lists.command"] = "lists.command"
    item_kind: ItemKind
    item_id: str
    action: ListAction
    actor_role: ActorRole
    actor_id: str
    client_event_id: str | None = None
    community_id: str | None = None
    unit_id: str | None = None
    title: str | None = None
    description: str | None = None
    resident_name: str | None = None
    resident_contact: str | None = None
    assignee_kind: AssigneeKind | None = None
    assignee_id: str | None = None
    project_id: str | None = None
    resource_id: str | None = None
    wish_id: str | None = None
    # Evidence for "complete": the session and whose it was, resolved by the API from the
    # sessions table (the agent cannot read ClickHouse).
    session_id: str | None = None
    session_member_id: str | None = None
    session_unit_id: str | None = None
    rating: int | None = Field(default=None, ge=1, le=5)
    comment: str | None = None
    reason: str | None = None


WishStatus = Literal["ordered", "dispatched", "accepted", "done", "confirmed", "cancelled"]
ResourceStatus = Literal["available", "matched", "withdrawn"]


class WishFields(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    wish_id: str
    revision: int = Field(ge=1)
    status: WishStatus
    community_id: str
    title: str
    description: str = ""
    resident_name: str
    resident_contact: str = ""
    assignee_kind: AssigneeKind | None = None
    assignee_id: str | None = None
    project_id: str | None = None
    resource_id: str | None = None
    evidence_session_id: str | None = None
    fulfilled_by_member_id: str | None = None
    fulfilled_by_unit_id: str | None = None
    rating: int | None = None
    rating_comment: str = ""
    created_at: UtcDatetime
    updated_at: UtcDatetime
    dispatched_at: UtcDatetime | None = None
    accepted_at: UtcDatetime | None = None
    done_at: UtcDatetime | None = None
    confirmed_at: UtcDatetime | None = None
    last_event_id: str


class ResourceFields(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    resource_id: str
    revision: int = Field(ge=1)
    status: ResourceStatus
    unit_id: str
    # The community the unit offers it to; None offers it county-wide.
    community_id: str | None = None
    title: str
    description: str = ""
    project_id: str | None = None
    wish_id: str | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    last_event_id: str


@event_type
class WishRecorded(Event):
    event_type: Literal["wish.recorded"] = "wish.recorded"
    wish: WishFields


@event_type
class ResourceRecorded(Event):
    event_type: Literal["resource.recorded"] = "resource.recorded"
    resource: ResourceFields


@event_type
class ListCommandRejected(Event):
    """The agent refused a command in log order; `event_id` derives from the command's id."""

    event_type: Literal["lists.rejected"] = "lists.rejected"
    command_event_id: str
    item_kind: ItemKind
    item_id: str
    action: ListAction
    actor_role: str
    actor_id: str
    code: str
    reason: str


@event_type
class ListTransitionApplied(Event):
    """An accepted command: the audit trail of an item's life (who did what, when, to which
    revision). `event_id` derives from the command's id, so a replay yields the same record."""

    event_type: Literal["lists.applied"] = "lists.applied"
    command_event_id: str
    item_kind: ItemKind
    item_id: str
    action: ListAction
    actor_role: str
    actor_id: str
    revision: int
    status: str
    reason: str | None = None


class GridAssignment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    grid_id: str = Field(min_length=1, max_length=64)
    member_ids: list[str] = Field(default_factory=list)
    unit_ids: list[str] = Field(default_factory=list)


class Campaign(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    version: int
    name: str
    community_id: str
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    # Whether service at the community's own stations during the campaign counts toward it
    # even from members not assigned (everyone on duty in that community during the surge).
    count_community_stations: bool = True
    assignments: list[GridAssignment] = Field(default_factory=list)
    updated_at: UtcDatetime
    updated_by: str


@event_type
class CampaignUpserted(Event):
    event_type: Literal["campaign.upserted"] = "campaign.upserted"
    record: Campaign
