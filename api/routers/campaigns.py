"""Campaigns (下沉): a surge of members into grids for a period, e.g. epidemic duty (疫情防控).

A campaign is a registry-like record: published to the compacted `registry.campaigns` topic
and written through to ClickHouse. Sessions are not rewritten to carry it: a session belongs
to a campaign by a read-time join on time and assignment (services.engagement), so the hours
count in the campaign and in every total alike, and a session review changes both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.deps import (
    Caller,
    Ctx,
    check,
    confine,
    facts_of_member,
    gate,
    hidden,
    known_to,
    scope_of_list,
)
from api.errors import ApiError
from services import topics
from services.access import Facts, ListScope
from services.events import Campaign, CampaignUpserted, GridAssignment, derived_id, utcnow
from services.processors import route_for_event
from services.reads import engagement
from services.registry import NotFound, new_id
from services.text import Line
from services.tokens import Principal

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])

# A campaign is one community's surge: the county's whole deployment was 1,760 cadres, and a
# community holds at most 3,000 households; the county has about 100 units.
CAMPAIGN_MEMBERS_MAX = 5_000
CAMPAIGN_UNITS_MAX = 500


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: Line = Field(min_length=1, max_length=100, examples=["疫情防控"])
    community_id: str = Field(min_length=1, max_length=64)
    starts_at: datetime
    ends_at: datetime
    count_community_stations: bool = True
    assignments: list[GridAssignment] = Field(default_factory=list, max_length=1000)

    @field_validator("assignments")
    @classmethod
    def _capped(cls, value: list[GridAssignment]) -> list[GridAssignment]:
        members = sum(len(a.member_ids) for a in value)
        units = sum(len(a.unit_ids) for a in value)
        if members > CAMPAIGN_MEMBERS_MAX:
            raise ValueError(
                f"a campaign names at most {CAMPAIGN_MEMBERS_MAX} members over all its "
                f"assignments (this one {members})"
            )
        if units > CAMPAIGN_UNITS_MAX:
            raise ValueError(
                f"a campaign names at most {CAMPAIGN_UNITS_MAX} units over all its "
                f"assignments (this one {units})"
            )
        return value


class CampaignList(BaseModel):
    items: list[Campaign]
    total: int


class GridSummary(BaseModel):
    grid_id: str
    members_assigned: int
    members_served: int
    hours: float


class CampaignSummary(BaseModel):
    campaign_id: str
    name: str
    community_id: str
    starts_at: datetime
    ends_at: datetime
    members_assigned: int
    # Everyone whose service counted toward the campaign (assigned, or at its community's
    # stations when that is counted); `assigned_members_served` only those assigned.
    members_served: int
    assigned_members_served: int
    sessions: int
    hours: float
    not_served: list[str]
    by_grid: list[GridSummary]


def _validate(ctx: Ctx, caller: Principal, body: CampaignIn) -> None:
    for field, value in (("starts_at", body.starts_at), ("ends_at", body.ends_at)):
        if value.tzinfo is None:
            raise ApiError(422, "invalid_time", f"{field}: must carry a time zone offset")
    if body.ends_at <= body.starts_at:
        raise ApiError(422, "invalid_period", "ends_at: must be after starts_at")
    if not ctx.registry.exists("community", body.community_id):
        raise ApiError(
            422, "unknown_community", f"community_id: no community {body.community_id!r}"
        )
    grids: set[str] = set()
    for i, a in enumerate(body.assignments):
        if a.grid_id in grids:
            raise ApiError(422, "duplicate_grid", f"assignments.{i}.grid_id: listed twice")
        grids.add(a.grid_id)
        try:
            g = ctx.registry.grid(a.grid_id)
        except NotFound:
            raise ApiError(
                422, "unknown_grid", f"assignments.{i}.grid_id: no grid {a.grid_id!r}"
            ) from None
        if g.community_id != body.community_id:
            raise ApiError(
                422,
                "grid_not_in_community",
                f"assignments.{i}.grid_id: grid {a.grid_id} is not in the campaign's community",
            )
        for j, m in enumerate(a.member_ids):
            # A member the caller may not read answers as one that does not exist: a campaign
            # names only members its author could look up (the admin: anyone).
            unknown = ApiError(
                422, "unknown_member", f"assignments.{i}.member_ids.{j}: no member {m!r}"
            )
            try:
                member = ctx.registry.member(m)
            except NotFound:
                raise unknown from None
            known_to(caller, "member", facts_of_member(member), unknown)
        for j, u in enumerate(a.unit_ids):
            if not ctx.registry.exists("unit", u):
                raise ApiError(422, "unknown_unit", f"assignments.{i}.unit_ids.{j}: no unit {u!r}")


@router.post("", response_model=Campaign, status_code=201)
def open_campaign(body: CampaignIn, caller: Caller, ctx: Ctx) -> Campaign:
    """An organizer (or the admin) opens a campaign with its period and grid assignments."""
    gate(caller, "campaign")
    check(
        caller,
        "campaign",
        "change",
        Facts(community_id=body.community_id),
        "community",
        body.community_id,
        hideable=False,
        message="an organizer opens campaigns in their own community",
    )
    _validate(ctx, caller, body)
    now = utcnow()
    version = int(now.timestamp() * 1_000_000)
    rec = Campaign(
        id=new_id("camp"),
        version=version,
        name=body.name,
        community_id=body.community_id,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        count_community_stations=body.count_community_stations,
        assignments=body.assignments,
        updated_at=now,
        updated_by=f"{caller.role}:{caller.subject_id}",
    )
    ev = CampaignUpserted(
        event_id=derived_id("campaign", rec.id, str(version)), occurred_at=now, record=rec
    )
    ctx.publisher.send_sync(topics.CAMPAIGNS, rec.id, ev)
    route = route_for_event(ev)
    ctx.warehouse.insert(route.table, [route.to_row(ev)], route.columns)
    return rec


def _readable(ctx: Ctx, caller: Principal, campaign_id: str) -> Campaign:
    c = engagement.campaign(ctx.warehouse, campaign_id)
    if c is None:
        raise hidden("campaign", campaign_id)
    units = frozenset(u for a in c.assignments for u in a.unit_ids)
    facts = Facts(community_id=c.community_id, units=units)
    check(caller, "campaign", "read", facts, "campaign", campaign_id)
    return c


def _scoped(ctx: Ctx, scope: ListScope, campaigns: list[Campaign]) -> list[Campaign]:
    """The campaigns as the caller may see them: assigned members outside the caller's scope
    (another community's, another unit's) are left out, as every direct read leaves them out."""
    if scope.unconfined:
        return campaigns
    named = {m for c in campaigns for a in c.assignments for m in a.member_ids}
    inside = engagement.members_within(ctx.warehouse, named, scope)
    return [
        c.model_copy(
            update={
                "assignments": [
                    a.model_copy(update={"member_ids": [m for m in a.member_ids if m in inside]})
                    for a in c.assignments
                ]
            }
        )
        for c in campaigns
    ]


@router.get("", response_model=CampaignList)
def list_campaigns(
    caller: Caller,
    ctx: Ctx,
    community_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="items to skip")] = 0,
) -> CampaignList:
    """Campaigns: an organizer's own community's, or all for the admin."""
    scope = scope_of_list(caller, "campaign")
    community_id = confine(community_id, scope.community_id, "community_id")
    items, total = engagement.list_campaigns(ctx.warehouse, community_id, limit, offset)
    return CampaignList(items=_scoped(ctx, scope_of_list(caller, "member"), items), total=total)


@router.get("/{campaign_id}", response_model=Campaign)
def get_campaign(campaign_id: str, caller: Caller, ctx: Ctx) -> Campaign:
    """One campaign: its community's organizer, HR of a unit sent into it, or the admin; the
    members it names are those the caller may read."""
    c = _readable(ctx, caller, campaign_id)
    return _scoped(ctx, scope_of_list(caller, "member"), [c])[0]


@router.get("/{campaign_id}/summary", response_model=CampaignSummary)
def campaign_summary(campaign_id: str, caller: Caller, ctx: Ctx) -> CampaignSummary:
    """Members assigned, members who served, sessions and hours during the campaign, counting
    only the members the caller may read (an organizer: their community's; HR: their unit's)."""
    c = _readable(ctx, caller, campaign_id)
    scope = scope_of_list(caller, "member")
    d: dict[str, Any] = engagement.campaign_summary(ctx.warehouse, c, scope)
    return CampaignSummary.model_validate(d)
