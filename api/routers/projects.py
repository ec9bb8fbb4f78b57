"""The projects list (项目清单): a wish matched with a unit's resource, dispatched to the unit.

See `api.lists` for how a list command is checked, published and judged.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Caller, Ctx, check, confine, gate, hidden, known_to, scope_of_list
from api.errors import ApiError
from api.lists import (
    Limit,
    Offset,
    ProjectAccepted,
    ProjectIn,
    ProjectList,
    ProjectOut,
    _actor,
    _basis,
    _judge,
    _publish,
    _visible_or_assignable,
)
from api.openapi import errors
from services.access import Facts
from services.events import ResourceFields, WishFields, derived_id, utcnow
from services.events.engagement import WishStatus
from services.lists import ItemState, command
from services.reads import engagement

router = APIRouter(prefix="/v1", tags=["wishes"])


# ---- projects (项目清单) ------------------------------------------------------------------


def _project_out(w: WishFields, r: ResourceFields | None) -> ProjectOut:
    assert w.project_id is not None and w.resource_id is not None
    return ProjectOut(
        project_id=w.project_id,
        wish_id=w.wish_id,
        resource_id=w.resource_id,
        unit_id=w.assignee_id,
        community_id=w.community_id,
        title=w.title,
        resource_title=r.title if r else None,
        status=w.status,
        dispatched_at=w.dispatched_at,
        done_at=w.done_at,
    )


@router.post(
    "/projects", response_model=ProjectAccepted, status_code=202, responses=errors(404, 409)
)
def create_project(body: ProjectIn, caller: Caller, ctx: Ctx) -> ProjectAccepted:
    """Match a need with a unit's resource: the wish is dispatched to the resource's unit, and
    the resource is marked matched (by the lists agent, after the wish took the dispatch)."""
    gate(caller, "project")
    w = _visible_or_assignable(ctx, caller, body.wish_id)
    r = engagement.resource(ctx.warehouse, body.resource_id)
    unknown = ApiError(422, "unknown_resource", f"resource_id: no resource {body.resource_id!r}")
    if r is None:
        raise unknown
    # A resource offered to another community answers as one that does not exist.
    known_to(caller, "resource", Facts(unit_id=r.unit_id, community_id=r.community_id), unknown)
    if r.community_id not in (None, w.community_id):
        raise ApiError(
            422, "resource_not_offered", "resource_id: the resource is offered to another community"
        )
    if r.status != "available":
        raise ApiError(409, "resource_unavailable", f"resource {r.resource_id} is {r.status}")
    basis = _basis(body, w.revision)
    project_id = "proj_" + derived_id("project", w.wish_id, r.resource_id, basis)[:16]
    cmd = command(
        item_kind="wish",
        item_id=w.wish_id,
        action="dispatch",
        at=utcnow(),
        basis=basis,
        assignee_kind="unit",
        assignee_id=r.unit_id,
        project_id=project_id,
        resource_id=r.resource_id,
        **_actor(caller),
    )
    _judge(ItemState(wish=w), cmd)
    _publish(ctx, cmd)
    return ProjectAccepted(
        project_id=project_id,
        wish_id=w.wish_id,
        resource_id=r.resource_id,
        unit_id=r.unit_id,
        event_id=cmd.event_id,
    )


@router.get("/projects", response_model=ProjectList)
def list_projects(
    caller: Caller,
    ctx: Ctx,
    community_id: str | None = None,
    unit_id: str | None = None,
    status: WishStatus | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> ProjectList:
    """Projects: wishes matched with a resource, with the wish's status."""
    confined = scope_of_list(caller, "project")
    community_id = confine(community_id, confined.community_id, "community_id")
    unit_id = confine(unit_id, confined.unit_id, "unit_id")
    scope = {
        "project_id IS NOT NULL AND {p}": 1,
        "community_id = {p}": community_id,
        "assignee_id = {p}": unit_id,
        "status = {p}": status,
    }
    wishes, total = engagement.list_wishes(ctx.warehouse, scope, limit, offset)
    items = [
        _project_out(w, engagement.resource(ctx.warehouse, w.resource_id or "")) for w in wishes
    ]
    return ProjectList(items=items, total=total)


@router.get("/projects/{project_id}", response_model=ProjectOut)
def get_project(project_id: str, caller: Caller, ctx: Ctx) -> ProjectOut:
    """One project: the wish's organizer, the resource unit's HR, or the admin."""
    items, _ = engagement.list_wishes(ctx.warehouse, {"project_id = {p}": project_id}, 1, 0)
    if not items:
        raise hidden("project", project_id)
    w = items[0]
    facts = Facts(community_id=w.community_id, unit_id=w.assignee_id)
    check(caller, "project", "read", facts, "project", project_id)
    return _project_out(w, engagement.resource(ctx.warehouse, w.resource_id or ""))
