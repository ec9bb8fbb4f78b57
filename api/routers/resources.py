"""The units' resources list (资源清单): offered, listed, withdrawn.

See `api.lists` for how a list command is checked, published and judged.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from api.deps import Caller, Ctx, check, confine, gate, hidden, scope_of_list
from api.errors import ApiError
from api.lists import (
    Accepted,
    Limit,
    Offset,
    ResourceIn,
    ResourceList,
    _actor,
    _basis,
    _In,
    _judge,
    _known,
    _publish,
)
from api.openapi import errors
from services.access import Facts
from services.events import ResourceFields, derived_id, utcnow
from services.events.engagement import ResourceStatus
from services.lists import ItemState, command
from services.reads import engagement
from services.tokens import Principal

router = APIRouter(prefix="/v1", tags=["wishes"])


# ---- resources (资源清单) -----------------------------------------------------------------


@router.post("/resources", response_model=Accepted, status_code=202)
def offer_resource(body: ResourceIn, caller: Caller, ctx: Ctx) -> Accepted:
    """A unit offers a resource (people, a vehicle, a venue, funds) to a community or the county."""
    gate(caller, "resource")
    unit_id = body.unit_id or scope_of_list(caller, "resource").unit_id
    if unit_id is None:
        raise ApiError(422, "invalid_request", "unit_id: required for the admin")
    check(
        caller,
        "resource",
        "change",
        Facts(unit_id=unit_id),
        "unit",
        unit_id,
        hideable=False,
        message="HR offers their own unit's resources",
    )
    _known(ctx, "unit", unit_id, "unit_id")
    if body.community_id is not None:
        _known(ctx, "community", body.community_id, "community_id")
    resource_id = (
        "res_" + derived_id("resource", unit_id, str(body.client_event_id))[:16]
        if body.client_event_id
        else f"res_{uuid.uuid4().hex[:16]}"
    )
    existing = engagement.resource(ctx.warehouse, resource_id)
    if existing is not None:
        return Accepted(id=resource_id, event_id=existing.last_event_id, status=existing.status)
    cmd = command(
        item_kind="resource",
        item_id=resource_id,
        action="offer",
        at=utcnow(),
        basis=_basis(body, 0),
        unit_id=unit_id,
        community_id=body.community_id,
        title=body.title,
        description=body.description,
        client_event_id=str(body.client_event_id) if body.client_event_id else None,
        **_actor(caller),
    )
    _judge(ItemState(), cmd)
    _publish(ctx, cmd)
    return Accepted(id=resource_id, event_id=cmd.event_id, status="available")


def _resource_scope(
    caller: Principal, unit_id: str | None, community_id: str | None
) -> dict[str, Any]:
    confined = scope_of_list(caller, "resource")
    scope: dict[str, Any] = {}
    unit_id = confine(unit_id, confined.unit_id, "unit_id")
    community_id = confine(community_id, confined.community_id, "community_id")
    if confined.community_id is not None:
        # Offered to this community, or county-wide.
        scope["(community_id = {p} OR community_id IS NULL)"] = community_id
    else:
        scope["community_id = {p}"] = community_id
    scope["unit_id = {p}"] = unit_id
    return scope


@router.get("/resources", response_model=ResourceList)
def list_resources(
    caller: Caller,
    ctx: Ctx,
    unit_id: str | None = None,
    community_id: str | None = None,
    status: ResourceStatus | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> ResourceList:
    """Resources visible to the caller: HR their unit's, an organizer those offered to their community or county-wide, the admin all."""
    scope = _resource_scope(caller, unit_id, community_id)
    scope["status = {p}"] = status
    items, total = engagement.list_resources(ctx.warehouse, scope, limit, offset)
    return ResourceList(items=items, total=total)


def _visible_resource(ctx: Ctx, caller: Principal, resource_id: str) -> ResourceFields:
    r = engagement.resource(ctx.warehouse, resource_id)
    if r is None:
        raise hidden("resource", resource_id)
    facts = Facts(unit_id=r.unit_id, community_id=r.community_id)
    check(caller, "resource", "read", facts, "resource", resource_id)
    return r


@router.get("/resources/{resource_id}", response_model=ResourceFields)
def get_resource(resource_id: str, caller: Caller, ctx: Ctx) -> ResourceFields:
    """One resource: its unit's HR, an organizer it is offered to, or the admin."""
    return _visible_resource(ctx, caller, resource_id)


@router.post(
    "/resources/{resource_id}/withdraw",
    response_model=Accepted,
    status_code=202,
    responses=errors(409),
)
def withdraw_resource(resource_id: str, body: _In, caller: Caller, ctx: Ctx) -> Accepted:
    """The offering unit's HR (or the admin) withdraws a resource."""
    gate(caller, "resource")
    r = _visible_resource(ctx, caller, resource_id)
    cmd = command(
        item_kind="resource",
        item_id=resource_id,
        action="withdraw",
        at=utcnow(),
        basis=_basis(body, r.revision),
        **_actor(caller),
    )
    _judge(ItemState(resource=r), cmd)
    _publish(ctx, cmd)
    return Accepted(id=resource_id, event_id=cmd.event_id, status="withdrawn")
