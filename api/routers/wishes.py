"""Micro-wishes (微心愿, the needs list 需求清单): ordered, dispatched, accepted, done, confirmed.

See `api.lists` for how a list command is checked, published and judged.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import (
    AccessLog,
    Caller,
    Ctx,
    check,
    confine,
    facts_of_member,
    gate,
    known_to,
    may_read,
    readable_member,
    readable_unit,
    scope_of_list,
)
from api.errors import ApiError
from api.lists import (
    Accepted,
    CompleteIn,
    ConfirmIn,
    DispatchIn,
    Limit,
    MemberFulfilled,
    Offset,
    ReasonIn,
    Rejection,
    Transition,
    UnitFulfilled,
    WishIn,
    WishList,
    WishOut,
    WishView,
    _actor,
    _basis,
    _In,
    _judge,
    _known,
    _publish,
    _visible_or_assignable,
    _visible_wish,
)
from api.openapi import errors
from services.access import Facts
from services.events import WishFields, derived_id, utcnow
from services.events.engagement import WishStatus
from services.lists import ItemState, apply, command
from services.periods import current_year
from services.privacy import contact_phones, mask_name
from services.reads import engagement
from services.reads import sessions as session_reads
from services.registry import NotFound
from services.tokens import Principal

router = APIRouter(prefix="/v1", tags=["wishes"])


# Beside a withheld contact (people-facing: Chinese).
HINT_REVEALABLE = "居民姓名和住址等已隐去，可点“查看联系方式”查看完整信息（查看会被记录）"
HINT_WITHHELD = "居民姓名和住址等已隐去，仅本社区和接单的党员或单位可查看完整联系方式"


def _masked(caller: Principal, w: WishFields) -> WishView:
    # The resident is no member and never agreed to be shown: every reader of the wish (members
    # and units it was sent to, the county office) sees the name masked and of the contact only
    # the phone, masked; in full only through the logged reveal below, to the community and the
    # member (or unit) sent to fulfil the wish.
    revealable = may_read(caller, "wish_contact", _contact_facts(w))
    return WishView(
        **w.model_dump(exclude={"resident_name", "resident_contact"}),
        resident_name=mask_name(w.resident_name) or "",
        resident_contact=contact_phones(w.resident_contact),
        contact_revealable=revealable,
        contact_hint=HINT_REVEALABLE if revealable else HINT_WITHHELD,
    )


def _contact_facts(w: WishFields) -> Facts:
    """Who may call the resident: the wish's community, and its assignee once they accepted
    it (接单) and until it is done; the member or unit that fulfilled it follows the wish, but
    has no more calls to make."""
    calling = w.status in ("accepted", "done") and w.assignee_id is not None
    member = w.assignee_id if calling and w.assignee_kind == "member" else None
    unit = w.assignee_id if calling and w.assignee_kind == "unit" else None
    return Facts(
        community_id=w.community_id,
        members=frozenset({member} if member else ()),
        units=frozenset({unit} if unit else ()),
    )


# ---- wishes (需求清单) --------------------------------------------------------------------


@router.post("/wishes", response_model=Accepted, status_code=202)
def order_wish(body: WishIn, caller: Caller, ctx: Ctx) -> Accepted:
    """A resident's wish (点单), recorded by the community's organizer."""
    gate(caller, "wish")
    check(
        caller,
        "wish",
        "change",
        Facts(community_id=body.community_id),
        "community",
        body.community_id,
        hideable=False,
        message="an organizer records wishes of their own community",
    )
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
    confined = scope_of_list(caller, "wish")
    community_id = confine(community_id, confined.community_id, "community_id")
    unit_id = confine(unit_id, confined.unit_id, "unit_id")
    member_id = confine(member_id, confined.member_id, "member_id")
    scope["community_id = {p}"] = community_id
    scope["((assignee_kind = 'unit' AND assignee_id = {p}) OR fulfilled_by_unit_id = {p})"] = (
        unit_id
    )
    scope["((assignee_kind = 'member' AND assignee_id = {p}) OR fulfilled_by_member_id = {p})"] = (
        member_id
    )
    scope["status = {p}"] = status
    items, total = engagement.list_wishes(ctx.warehouse, scope, limit, offset)
    return WishList(items=[_masked(caller, w) for w in items], total=total)


@router.get("/wishes/{wish_id}", response_model=WishOut)
def get_wish(wish_id: str, caller: Caller, ctx: Ctx) -> WishOut:
    """The wish's latest state, its history, and the commands the lists agent refused (with
    the reason); the resident's name masked and of the contact only the phone, masked (`GET
    /v1/wishes/{wish_id}/contact` reveals both)."""
    w = _visible_wish(ctx, caller, wish_id)
    rej = [Rejection.model_validate(r) for r in engagement.rejections(ctx.warehouse, wish_id)]
    hist = [Transition.model_validate(t) for t in engagement.transitions(ctx.warehouse, wish_id)]
    return WishOut(**_masked(caller, w).model_dump(), history=hist, rejections=rej)


class WishContact(BaseModel):
    wish_id: str
    resident_name: str
    resident_contact: str = Field(description="in full, to call the resident; this read is logged")


@router.get("/wishes/{wish_id}/contact", response_model=WishContact, responses=errors(503))
def reveal_wish_contact(wish_id: str, caller: Caller, ctx: Ctx, audit: AccessLog) -> WishContact:
    """The resident's contact in full, for the wish's community (its organizer, the admin) and
    the member or unit HR who accepted it, until it is done. Logged before it is answered (503
    if the log is away); anyone else who reads the wish gets 403, a caller who does not 404."""
    w = _visible_wish(ctx, caller, wish_id)
    check(
        caller,
        "wish_contact",
        "read",
        _contact_facts(w),
        "wish",
        wish_id,
        hideable=False,
        message="the resident's contact is for the community and whoever accepted the wish",
    )
    audit.record_about("wish_contact", f"wish {w.wish_id}")
    return WishContact(
        wish_id=w.wish_id, resident_name=w.resident_name, resident_contact=w.resident_contact
    )


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


@router.post(
    "/wishes/{wish_id}/dispatch", response_model=Accepted, status_code=202, responses=errors(409)
)
def dispatch_wish(wish_id: str, body: DispatchIn, caller: Caller, ctx: Ctx) -> Accepted:
    """派单: the community's organizer dispatches the wish to a member or a unit."""
    gate(caller, "wish")
    w = _visible_or_assignable(ctx, caller, wish_id)
    if body.assignee_kind == "member":
        unknown = ApiError(422, "unknown_member", f"assignee_id: no member {body.assignee_id!r}")
        try:
            m = ctx.registry.member(body.assignee_id)
        except NotFound:
            raise unknown from None
        # Another community's member answers as one that does not exist (and before their
        # status, which is theirs to know).
        known_to(caller, "member", facts_of_member(m), unknown)
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


@router.post(
    "/wishes/{wish_id}/accept", response_model=Accepted, status_code=202, responses=errors(409)
)
def accept_wish(wish_id: str, body: _In, caller: Caller, ctx: Ctx) -> Accepted:
    """接单: only the assignee (the member, or the unit's HR) accepts."""
    gate(caller, "wish_assignment")
    return _transition(ctx, caller, wish_id, body, "accept")


@router.post(
    "/wishes/{wish_id}/decline", response_model=Accepted, status_code=202, responses=errors(409)
)
def decline_wish(wish_id: str, body: ReasonIn, caller: Caller, ctx: Ctx) -> Accepted:
    """The assignee hands a dispatched wish back to the community, to be dispatched again."""
    gate(caller, "wish_assignment")
    return _transition(ctx, caller, wish_id, body, "decline", reason=body.reason or None)


@router.post(
    "/wishes/{wish_id}/complete", response_model=Accepted, status_code=202, responses=errors(409)
)
def complete_wish(wish_id: str, body: CompleteIn, caller: Caller, ctx: Ctx) -> Accepted:
    """Done, with evidence: a finished volunteer session by the assignee (or the unit's member)."""
    gate(caller, "wish_assignment")
    # The wish first: a caller it is not assigned to learns nothing of the session either.
    _visible_or_assignable(ctx, caller, wish_id)
    s = session_reads.session(ctx.warehouse, body.session_id)
    unknown = ApiError(422, "unknown_session", f"session_id: no session {body.session_id!r}")
    if s is None:
        raise unknown
    member_id, unit_id, status = s["member_id"], s["unit_id"], s["status"]
    # Someone else's session (not the caller's, nor their unit's member's) answers as one that
    # does not exist: neither its existence nor its status is the caller's to learn.
    known_to(
        caller,
        "member_service",
        Facts(member_id=member_id, unit_id=unit_id, community_id=s["member_community_id"]),
        unknown,
    )
    if not session_reads.is_evidence(status):
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


@router.post(
    "/wishes/{wish_id}/confirm", response_model=Accepted, status_code=202, responses=errors(409)
)
def confirm_wish(wish_id: str, body: ConfirmIn, caller: Caller, ctx: Ctx) -> Accepted:
    """The resident confirms and rates (1–5), recorded by the community's organizer."""
    gate(caller, "wish")
    return _transition(
        ctx, caller, wish_id, body, "confirm", rating=body.rating, comment=body.comment
    )


@router.post(
    "/wishes/{wish_id}/cancel", response_model=Accepted, status_code=202, responses=errors(409)
)
def cancel_wish(wish_id: str, body: ReasonIn, caller: Caller, ctx: Ctx) -> Accepted:
    """The community's organizer withdraws a wish that is not yet done."""
    gate(caller, "wish")
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
