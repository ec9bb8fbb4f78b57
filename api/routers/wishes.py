"""Micro-wishes and the three lists (三单制): needs (wishes), resources and projects.

Every write is a command on the `lists.commands` topic, keyed by the item id. The API checks
the command against the item's state as ClickHouse has it, with the agent's own rules, to
answer a clear 4xx at once; the lists agent then judges it again in log order and is the
authority (a command it refuses is listed under the item's `rejections`). Writes answer 202:
the new state is readable as soon as the agent's result reaches ClickHouse (typically < 1 s);
until then a wish just ordered answers 404 and a transition is checked against the state
before it, which is safe because the agent checks again in order.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Caller, Ctx, may_manage_community, readable_member, readable_unit, require
from api.errors import ApiError
from services import engagement, topics
from services.events import ListCommand, ResourceFields, WishFields, derived_id, utcnow
from services.events.engagement import ResourceStatus, WishStatus
from services.lists import ItemState, apply, command
from services.periods import current_year
from services.registry import NotFound
from services.tokens import Principal

router = APIRouter(prefix="/v1", tags=["wishes"])

Text = Field(min_length=1, max_length=200)
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="items to skip")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    # A re-sent request with the same id is the same command, never a second transition.
    client_event_id: uuid.UUID | None = None


class WishIn(_In):
    community_id: str = Field(min_length=1, max_length=64)
    title: str = Text
    description: str = Field(default="", max_length=2000)
    resident_name: str = Field(min_length=1, max_length=50)
    resident_contact: str = Field(default="", max_length=100)


class DispatchIn(_In):
    assignee_kind: Literal["member", "unit"]
    assignee_id: str = Field(min_length=1, max_length=64)


class CompleteIn(_In):
    session_id: str = Field(min_length=1, max_length=64)


class ConfirmIn(_In):
    rating: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=1000)


class ReasonIn(_In):
    reason: str = Field(default="", max_length=500)


class ResourceIn(_In):
    unit_id: str | None = Field(default=None, max_length=64)
    community_id: str | None = Field(default=None, max_length=64)
    title: str = Text
    description: str = Field(default="", max_length=2000)


class ProjectIn(_In):
    wish_id: str = Field(min_length=1, max_length=64)
    resource_id: str = Field(min_length=1, max_length=64)


class Accepted(BaseModel):
    id: str
    event_id: str
    status: str


class Rejection(BaseModel):
    command_event_id: str
    action: str
    actor_role: str
    actor_id: str
    code: str
    reason: str
    occurred_at: datetime


class Transition(BaseModel):
    command_event_id: str
    action: str
    actor_role: str
    actor_id: str
    revision: int
    status: str
    reason: str | None
    occurred_at: datetime


class WishOut(WishFields):
    # The process record of the wish (过程纪实): every accepted step, and every refused one.
    history: list[Transition] = Field(default_factory=list)
    rejections: list[Rejection] = Field(default_factory=list)


class WishList(BaseModel):
    items: list[WishFields]
    total: int


class ResourceList(BaseModel):
    items: list[ResourceFields]
    total: int


class ProjectOut(BaseModel):
    project_id: str
    wish_id: str
    resource_id: str
    unit_id: str | None
    community_id: str
    title: str
    resource_title: str | None
    status: str
    dispatched_at: datetime | None
    done_at: datetime | None


class ProjectList(BaseModel):
    items: list[ProjectOut]
    total: int


class ProjectAccepted(BaseModel):
    project_id: str
    wish_id: str
    resource_id: str
    unit_id: str
    event_id: str


class FulfilledOut(BaseModel):
    year: int
    wishes_fulfilled: int


class MemberFulfilled(FulfilledOut):
    member_id: str


class UnitFulfilled(FulfilledOut):
    unit_id: str
    members: dict[str, int]


# HTTP status for each refusal code of services.lists.
_STATUS = {
    "forbidden": 403,
    "not_assignee": 403,
    "missing_field": 422,
    "evidence_mismatch": 422,
    "invalid_project": 422,
    "not_found": 404,
}


def _judge(state: ItemState, cmd: ListCommand) -> None:
    out = apply(state, cmd)
    if out.refusal is not None:
        code = out.refusal.code
        reason = out.refusal.reason
        if code == "not_assignee":
            # The agent's reason names the assignee: not for a caller who is not them.
            reason = f"only the wish's assignee may {cmd.action} it"
        raise ApiError(_STATUS.get(code, 409), code, reason)


def _basis(body: _In, revision: int) -> str:
    # Without a client id, the revision the caller acted on: a re-sent request from the same
    # state is the same command, which the agent drops as a duplicate.
    return f"client:{body.client_event_id}" if body.client_event_id else f"rev:{revision}"


def _actor(caller: Principal) -> dict[str, str]:
    return {"actor_role": caller.role, "actor_id": caller.subject_id}


def _may_see_wish(caller: Principal, w: WishFields) -> bool:
    if caller.role == "admin":
        return True
    if caller.role == "organizer":
        return caller.subject_id == w.community_id
    if caller.role in ("member", "hr"):
        kind = "member" if caller.role == "member" else "unit"
        fulfilled = w.fulfilled_by_member_id if kind == "member" else w.fulfilled_by_unit_id
        return (w.assignee_kind == kind and w.assignee_id == caller.subject_id) or (
            fulfilled == caller.subject_id
        )
    return False


def _visible_wish(ctx: Ctx, caller: Principal, wish_id: str) -> WishFields:
    w = engagement.wish(ctx.warehouse, wish_id)
    if w is None or not _may_see_wish(caller, w):
        # Not yet landed is indistinguishable from absent; so is someone else's wish.
        raise ApiError(404, "wish_not_found", f"no wish {wish_id!r} visible to this caller")
    return w


def _publish(ctx: Ctx, cmd: ListCommand) -> None:
    ctx.publisher.send_sync(topics.LIST_COMMANDS, cmd.item_id, cmd)


def _known(ctx: Ctx, kind: str, id_: str, field: str) -> None:
    if not ctx.registry.exists(kind, id_):
        raise ApiError(422, f"unknown_{kind}", f"{field}: no {kind} with id {id_!r}")


# ---- wishes (需求清单) --------------------------------------------------------------------


@router.post("/wishes", response_model=Accepted, status_code=202)
def order_wish(body: WishIn, caller: Caller, ctx: Ctx) -> Accepted:
    """A resident's wish (点单), recorded by the community's organizer."""
    require(caller, "organizer", "admin")
    if caller.role == "organizer" and caller.subject_id != body.community_id:
        raise ApiError(403, "forbidden", "an organizer records wishes of their own community")
    _known(ctx, "community", body.community_id, "community_id")
    wish_id = (
        "wish_" + derived_id("wish", body.community_id, str(body.client_event_id))[:16]
        if body.client_event_id
        else f"wish_{uuid.uuid4().hex[:16]}"
    )
    cmd = command(
        item_kind="wish",
        item_id=wish_id,
        action="order",
        at=utcnow(),
        basis=_basis(body, 0),
        community_id=body.community_id,
        title=body.title,
        description=body.description,
        resident_name=body.resident_name,
        resident_contact=body.resident_contact,
        client_event_id=str(body.client_event_id) if body.client_event_id else None,
        **_actor(caller),
    )
    existing = engagement.wish(ctx.warehouse, wish_id)
    if existing is not None:
        # The same client_event_id again: the wish is already recorded.
        return Accepted(id=wish_id, event_id=existing.last_event_id, status=existing.status)
    _judge(ItemState(), cmd)
    _publish(ctx, cmd)
    return Accepted(id=wish_id, event_id=cmd.event_id, status="ordered")


@router.get("/wishes", response_model=WishList)
def list_wishes(
    caller: Caller,
    ctx: Ctx,
    community_id: str | None = None,
    unit_id: str | None = None,
    member_id: str | None = None,
    status: WishStatus | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> WishList:
    """Wishes visible to the caller: the admin all, an organizer their community's, HR those
    dispatched to or fulfilled by their unit, a member those dispatched to or fulfilled by them."""
    scope: dict[str, Any] = {}
    if caller.role == "organizer":
        if community_id not in (None, caller.subject_id):
            raise ApiError(403, "forbidden", "an organizer lists their own community's wishes")
        community_id = caller.subject_id
    elif caller.role == "hr":
        if unit_id not in (None, caller.subject_id):
            raise ApiError(403, "forbidden", "HR lists their own unit's wishes")
        unit_id = caller.subject_id
    elif caller.role == "member":
        if member_id not in (None, caller.subject_id):
            raise ApiError(403, "forbidden", "a member lists their own wishes")
        member_id = caller.subject_id
    scope["community_id = {p}"] = community_id
    scope["((assignee_kind = 'unit' AND assignee_id = {p}) OR fulfilled_by_unit_id = {p})"] = (
        unit_id
    )
    scope["((assignee_kind = 'member' AND assignee_id = {p}) OR fulfilled_by_member_id = {p})"] = (
        member_id
    )
    scope["status = {p}"] = status
    items, total = engagement.list_wishes(ctx.warehouse, scope, limit, offset)
    return WishList(items=items, total=total)


@router.get("/wishes/{wish_id}", response_model=WishOut)
def get_wish(wish_id: str, caller: Caller, ctx: Ctx) -> WishOut:
    """The wish's latest state, its history, and the commands the lists agent refused (with
    the reason)."""
    w = _visible_wish(ctx, caller, wish_id)
    rej = [Rejection.model_validate(r) for r in engagement.rejections(ctx.warehouse, wish_id)]
    hist = [Transition.model_validate(t) for t in engagement.transitions(ctx.warehouse, wish_id)]
    return WishOut(**w.model_dump(), history=hist, rejections=rej)


def _transition(
    ctx: Ctx, caller: Principal, wish_id: str, body: _In, action: str, **fields: Any
) -> Accepted:
    w = _visible_or_assignable(ctx, caller, wish_id)
    cmd = command(
        item_kind="wish",
        item_id=wish_id,
        action=action,
        at=utcnow(),
        basis=_basis(body, w.revision),
        client_event_id=str(body.client_event_id) if body.client_event_id else None,
        **_actor(caller),
        **fields,
    )
    _judge(ItemState(wish=w), cmd)
    _publish(ctx, cmd)
    expected = apply(ItemState(wish=w), cmd).state.wish
    return Accepted(id=wish_id, event_id=cmd.event_id, status=expected.status if expected else "")


def _visible_or_assignable(ctx: Ctx, caller: Principal, wish_id: str) -> WishFields:
    w = engagement.wish(ctx.warehouse, wish_id)
    if w is None:
        raise ApiError(404, "wish_not_found", f"no wish {wish_id!r}")
    # A member or unit that is not the assignee must learn that they are not (403), rather
    # than that the wish is absent: they were shown it (e.g. on a notice) to act on.
    if caller.role == "organizer" and caller.subject_id != w.community_id:
        raise ApiError(404, "wish_not_found", f"no wish {wish_id!r} visible to this caller")
    return w


@router.post("/wishes/{wish_id}/dispatch", response_model=Accepted, status_code=202)
def dispatch_wish(wish_id: str, body: DispatchIn, caller: Caller, ctx: Ctx) -> Accepted:
    """派单: the community's organizer dispatches the wish to a member or a unit."""
    require(caller, "organizer", "admin")
    w = _visible_or_assignable(ctx, caller, wish_id)
    if body.assignee_kind == "member":
        try:
            m = ctx.registry.member(body.assignee_id)
        except NotFound:
            raise ApiError(
                422, "unknown_member", f"assignee_id: no member {body.assignee_id!r}"
            ) from None
        if m.status != "active":
            raise ApiError(
                422, "member_not_active", f"assignee_id: member {m.id} is {m.status}, not active"
            )
        if m.community_id != w.community_id:
            raise ApiError(
                422,
                "member_not_in_community",
                f"assignee_id: member {m.id} is not reported to the wish's community",
            )
    else:
        _known(ctx, "unit", body.assignee_id, "assignee_id")
    return _transition(
        ctx,
        caller,
        wish_id,
        body,
        "dispatch",
        assignee_kind=body.assignee_kind,
        assignee_id=body.assignee_id,
    )


@router.post("/wishes/{wish_id}/accept", response_model=Accepted, status_code=202)
def accept_wish(wish_id: str, body: _In, caller: Caller, ctx: Ctx) -> Accepted:
    """接单: only the assignee (the member, or the unit's HR) accepts."""
    require(caller, "member", "hr")
    return _transition(ctx, caller, wish_id, body, "accept")


@router.post("/wishes/{wish_id}/decline", response_model=Accepted, status_code=202)
def decline_wish(wish_id: str, body: ReasonIn, caller: Caller, ctx: Ctx) -> Accepted:
    """The assignee hands a dispatched wish back to the community, to be dispatched again."""
    require(caller, "member", "hr")
    return _transition(ctx, caller, wish_id, body, "decline", reason=body.reason or None)


@router.post("/wishes/{wish_id}/complete", response_model=Accepted, status_code=202)
def complete_wish(wish_id: str, body: CompleteIn, caller: Caller, ctx: Ctx) -> Accepted:
    """Done, with evidence: a finished volunteer session by the assignee (or the unit's member)."""
    require(caller, "member", "hr")
    rows = ctx.warehouse.query(
        "SELECT member_id, unit_id, status FROM sessions FINAL "
        "WHERE session_id = %(s)s AND voided = 0 LIMIT 1",
        {"s": body.session_id},
    )
    if not rows:
        raise ApiError(422, "unknown_session", f"session_id: no session {body.session_id!r}")
    member_id, unit_id, status = rows[0]
    if status in ("open", "rejected"):
        raise ApiError(
            422, "session_not_evidence", f"session_id: a {status} session is not evidence"
        )
    return _transition(
        ctx,
        caller,
        wish_id,
        body,
        "complete",
        session_id=body.session_id,
        session_member_id=str(member_id),
        session_unit_id=str(unit_id),
    )


@router.post("/wishes/{wish_id}/confirm", response_model=Accepted, status_code=202)
def confirm_wish(wish_id: str, body: ConfirmIn, caller: Caller, ctx: Ctx) -> Accepted:
    """The resident confirms and rates (1–5), recorded by the community's organizer."""
    require(caller, "organizer", "admin")
    return _transition(
        ctx, caller, wish_id, body, "confirm", rating=body.rating, comment=body.comment
    )


@router.post("/wishes/{wish_id}/cancel", response_model=Accepted, status_code=202)
def cancel_wish(wish_id: str, body: ReasonIn, caller: Caller, ctx: Ctx) -> Accepted:
    """The community's organizer withdraws a wish that is not yet done."""
    require(caller, "organizer", "admin")
    return _transition(ctx, caller, wish_id, body, "cancel", reason=body.reason or None)


@router.get("/members/{member_id}/wishes", response_model=MemberFulfilled)
def member_wishes_fulfilled(
    member_id: str,
    caller: Caller,
    ctx: Ctx,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> MemberFulfilled:
    """Wishes the member fulfilled in a local calendar year (the assessment's figure)."""
    m = readable_member(ctx, caller, member_id)
    y = year or int(current_year(utcnow()).label)
    n = engagement.wishes_fulfilled(ctx.warehouse, y, member_id=m.id).get(m.id, 0)
    return MemberFulfilled(member_id=m.id, year=y, wishes_fulfilled=n)


@router.get("/units/{unit_id}/wishes", response_model=UnitFulfilled)
def unit_wishes_fulfilled(
    unit_id: str,
    caller: Caller,
    ctx: Ctx,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> UnitFulfilled:
    """Wishes fulfilled by the unit's members in a local calendar year, per member."""
    readable_unit(ctx, caller, unit_id)
    y = year or int(current_year(utcnow()).label)
    per = engagement.wishes_fulfilled(ctx.warehouse, y, unit_id=unit_id)
    return UnitFulfilled(unit_id=unit_id, year=y, wishes_fulfilled=sum(per.values()), members=per)


# ---- resources (资源清单) -----------------------------------------------------------------


@router.post("/resources", response_model=Accepted, status_code=202)
def offer_resource(body: ResourceIn, caller: Caller, ctx: Ctx) -> Accepted:
    """A unit offers a resource (people, a vehicle, a venue, funds) to a community or the county."""
    require(caller, "hr", "admin")
    unit_id = body.unit_id or (caller.subject_id if caller.role == "hr" else None)
    if unit_id is None:
        raise ApiError(422, "invalid_request", "unit_id: required for the admin")
    if caller.role == "hr" and unit_id != caller.subject_id:
        raise ApiError(403, "forbidden", "HR offers their own unit's resources")
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
    if caller.role == "member":
        raise ApiError(403, "forbidden", "resources are listed to organizers, HR and the admin")
    scope: dict[str, Any] = {}
    if caller.role == "hr":
        if unit_id not in (None, caller.subject_id):
            raise ApiError(403, "forbidden", "HR lists their own unit's resources")
        unit_id = caller.subject_id
    if caller.role == "organizer":
        if community_id not in (None, caller.subject_id):
            raise ApiError(403, "forbidden", "an organizer lists resources offered to them")
        # Offered to this community, or county-wide.
        scope["(community_id = {p} OR community_id IS NULL)"] = caller.subject_id
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
    visible = r is not None and (
        caller.role == "admin"
        or (caller.role == "hr" and caller.subject_id == r.unit_id)
        or (caller.role == "organizer" and r.community_id in (None, caller.subject_id))
    )
    if r is None or not visible:
        raise ApiError(
            404, "resource_not_found", f"no resource {resource_id!r} visible to this caller"
        )
    return r


@router.get("/resources/{resource_id}", response_model=ResourceFields)
def get_resource(resource_id: str, caller: Caller, ctx: Ctx) -> ResourceFields:
    """One resource: its unit's HR, an organizer it is offered to, or the admin."""
    return _visible_resource(ctx, caller, resource_id)


@router.post("/resources/{resource_id}/withdraw", response_model=Accepted, status_code=202)
def withdraw_resource(resource_id: str, body: _In, caller: Caller, ctx: Ctx) -> Accepted:
    """The offering unit's HR (or the admin) withdraws a resource."""
    require(caller, "hr", "admin")
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


@router.post("/projects", response_model=ProjectAccepted, status_code=202)
def create_project(body: ProjectIn, caller: Caller, ctx: Ctx) -> ProjectAccepted:
    """Match a need with a unit's resource: the wish is dispatched to the resource's unit, and
    the resource is marked matched (by the lists agent, after the wish took the dispatch)."""
    require(caller, "organizer", "admin")
    w = _visible_or_assignable(ctx, caller, body.wish_id)
    r = engagement.resource(ctx.warehouse, body.resource_id)
    if r is None:
        raise ApiError(422, "unknown_resource", f"resource_id: no resource {body.resource_id!r}")
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
    if caller.role == "member":
        raise ApiError(403, "forbidden", "projects are listed to organizers, HR and the admin")
    if caller.role == "organizer":
        if community_id not in (None, caller.subject_id):
            raise ApiError(403, "forbidden", "an organizer lists their own community's projects")
        community_id = caller.subject_id
    if caller.role == "hr":
        if unit_id not in (None, caller.subject_id):
            raise ApiError(403, "forbidden", "HR lists their own unit's projects")
        unit_id = caller.subject_id
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
    w = items[0] if items else None
    visible = w is not None and (
        may_manage_community(caller, w.community_id)
        or (caller.role == "hr" and caller.subject_id == w.assignee_id)
    )
    if w is None or not visible:
        raise ApiError(
            404, "project_not_found", f"no project {project_id!r} visible to this caller"
        )
    return _project_out(w, engagement.resource(ctx.warehouse, w.resource_id or ""))
