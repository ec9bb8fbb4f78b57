"""Standing posts (岗位认领): the organizer creates a post on a level-5 grid of their community,
a member of the community claims it, the organizer approves or declines the claim, the holder
leaves (or the organizer ends the holding). Every step is an event on `posts`; a post's state is
those events folded with `services.posts` (the first step in time wins a race). Writes answer
202: a new post or step is readable once the sink has written it (typically < 1 s).

Holding a post changes no figure: the holder's service counts as any member's.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Caller, Ctx, check, confine, gate, hidden, scope_of_list
from api.errors import ApiError
from api.openapi import errors
from services import topics
from services.access import Facts
from services.events import PostRecorded, derived_id, utcnow
from services.posts import KIND_LABELS, KINDS, STATUS_LABELS, Post, PostRefused, PostStatus, Step
from services.posts import apply as apply_step
from services.reads import posts as reads
from services.registry import NotFound
from services.text import FreeText, Line
from services.tokens import Principal

router = APIRouter(prefix="/v1/posts", tags=["posts"])

PostKind = Literal["unit_post", "building_group", "other"]
assert set(KINDS) == {"unit_post", "building_group", "other"}


class PostIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    community_id: str = Field(min_length=1, max_length=64)
    grid_id: str = Field(min_length=1, max_length=64, description="a level-5 grid of it")
    kind: PostKind = Field(description="unit_post 单元党员责任岗, building_group 楼栋党小组, other")
    title: Line = Field(min_length=1, max_length=100)
    description: FreeText = Field(default="", max_length=1000)
    # A re-sent request with the same id is the same post.
    client_event_id: uuid.UUID | None = None


class PostDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    member_id: str = Field(min_length=1, max_length=64, description="whose claim")
    decision: Literal["approve", "decline"]
    reason: FreeText = Field(default="", max_length=500)


class PostLeaveIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: FreeText = Field(default="", max_length=500)


class PostStep(BaseModel):
    action: str = Field(description="create, claim, approve, decline, leave, end")
    member_id: str
    actor: str = Field(description="role:id of whoever took the step")
    reason: str
    at: datetime


class PostOut(BaseModel):
    post_id: str
    community_id: str
    grid_id: str
    kind: str
    kind_label: str
    title: str
    description: str
    status: PostStatus
    status_label: str
    holder_id: str | None
    held_since: datetime | None
    pending_claims: list[str] = Field(description="members waiting for a decision, in order")
    created_at: datetime | None
    history: list[PostStep] | None = Field(
        default=None, description="every step (on GET /v1/posts/{id} only)"
    )


class PostList(BaseModel):
    items: list[PostOut]
    total: int


class PostAccepted(BaseModel):
    post_id: str
    event_id: str
    status: PostStatus


def _out(p: Post, caller: Principal, history: bool = False) -> PostOut:
    manages = caller.role == "admin" or (
        caller.role == "organizer" and caller.subject_id == p.community_id
    )
    # Who else claimed is the community's business; a member sees their own claim only.
    pending = list(p.pending) if manages else [m for m in p.pending if m == caller.subject_id]
    return PostOut(
        post_id=p.post_id,
        community_id=p.community_id,
        grid_id=p.grid_id,
        kind=p.kind,
        kind_label=KIND_LABELS.get(p.kind, p.kind),
        title=p.title,
        description=p.description,
        status=p.status,
        status_label=STATUS_LABELS[p.status],
        holder_id=p.holder_id,
        held_since=p.held_since,
        pending_claims=pending,
        created_at=p.created_at,
        history=(
            [
                PostStep(
                    action=h.action, member_id=h.member_id, actor=h.actor, reason=h.reason, at=h.at
                )
                for h in p.history
                if manages or h.member_id in ("", caller.subject_id)
            ]
            if history
            else None
        ),
    )


def _caller_community(ctx: Ctx, caller: Principal) -> str | None:
    if caller.role != "member":
        return None
    try:
        return ctx.registry.member(caller.subject_id).community_id
    except NotFound:
        return None


def _facts(ctx: Ctx, caller: Principal, p: Post) -> Facts:
    return Facts(
        community_id=p.community_id,
        also_community_id=_caller_community(ctx, caller),
        members=frozenset({*p.pending, *([p.holder_id] if p.holder_id else [])}),
    )


def _visible(ctx: Ctx, caller: Principal, post_id: str) -> tuple[Post, Facts]:
    p = reads.post(ctx.warehouse, post_id)
    if p is None:
        raise hidden("post", post_id)
    facts = _facts(ctx, caller, p)
    check(caller, "post", "read", facts, "post", post_id)
    return p, facts


def _step(
    ctx: Ctx, caller: Principal, p: Post, action: str, member_id: str, reason: str
) -> PostAccepted:
    now = utcnow()
    step = Step(
        event_id=derived_id("post", p.post_id, action, member_id, str(uuid.uuid4())),
        action=action,
        occurred_at=now,
        member_id=member_id,
        reason=reason,
    )
    try:
        after = apply_step(p, step)
    except PostRefused as exc:
        raise ApiError(409, exc.code, exc.message) from exc
    event = PostRecorded(
        event_id=step.event_id,
        occurred_at=now,
        post_id=p.post_id,
        action=action,
        community_id=p.community_id,
        grid_id=p.grid_id,
        member_id=member_id,
        reason=reason,
        actor_role=caller.role,
        actor_id=caller.subject_id,
    )
    ctx.publisher.send_sync(topics.POSTS, p.post_id, event)
    return PostAccepted(post_id=p.post_id, event_id=event.event_id, status=after.status)


@router.post("", response_model=PostAccepted, status_code=202, responses=errors(409))
def create_post(body: PostIn, caller: Caller, ctx: Ctx) -> PostAccepted:
    """A standing post on a level-5 grid of the organizer's community."""
    gate(caller, "post")
    check(
        caller,
        "post",
        "change",
        Facts(community_id=body.community_id),
        "community",
        body.community_id,
        hideable=False,
        message="an organizer creates posts in their own community",
    )
    if not ctx.registry.exists("community", body.community_id):
        raise ApiError(
            422, "unknown_community", f"community_id: no community {body.community_id!r}"
        )
    try:
        grid = ctx.registry.grid(body.grid_id)
    except NotFound:
        grid = None
    if grid is None or grid.community_id != body.community_id:
        raise ApiError(422, "unknown_grid", f"grid_id: no grid {body.grid_id!r} in the community")
    if grid.level != 5:
        raise ApiError(422, "not_level5_grid", "grid_id: a post belongs to a level-5 grid")
    post_id = (
        "post_" + derived_id("post", body.community_id, str(body.client_event_id))[:16]
        if body.client_event_id
        else f"post_{uuid.uuid4().hex[:16]}"
    )
    if body.client_event_id and reads.post(ctx.warehouse, post_id) is not None:
        return PostAccepted(
            post_id=post_id, event_id=derived_id("post.create", post_id), status="open"
        )
    event = PostRecorded(
        event_id=derived_id("post.create", post_id),
        occurred_at=utcnow(),
        post_id=post_id,
        action="create",
        community_id=body.community_id,
        grid_id=body.grid_id,
        kind=body.kind,
        title=body.title,
        description=body.description,
        actor_role=caller.role,
        actor_id=caller.subject_id,
    )
    ctx.publisher.send_sync(topics.POSTS, post_id, event)
    return PostAccepted(post_id=post_id, event_id=event.event_id, status="open")


@router.get("", response_model=PostList)
def list_posts(
    caller: Caller,
    ctx: Ctx,
    community_id: str | None = None,
    grid_id: str | None = None,
    status: PostStatus | None = None,
    mine: bool = False,
) -> PostList:
    """A community's posts (an organizer's own, a member's own community's; the admin names
    one), optionally of one grid or status; `mine=true`: the posts a member holds or claimed."""
    scope = scope_of_list(caller, "post")
    if caller.role == "member":
        own = _caller_community(ctx, caller)
        if mine:
            found = reads.posts(ctx.warehouse, member_id=caller.subject_id)
            found = [p for p in found if caller.subject_id in (p.holder_id, *p.pending)]
        else:
            if community_id not in (None, own):
                raise ApiError(403, "forbidden", "community_id: outside the caller's scope")
            found = reads.posts(ctx.warehouse, community_id=own) if own else []
    else:
        if mine:
            raise ApiError(422, "invalid_filter", "mine: only a member lists their own posts")
        c = confine(community_id, scope.community_id, "community_id")
        # The admin without a community: every post (the county's few thousand).
        found = reads.posts(ctx.warehouse, community_id=c)
    found = [
        p
        for p in found
        if (grid_id is None or p.grid_id == grid_id) and (status is None or p.status == status)
    ]
    found.sort(key=lambda p: (p.grid_id, p.title, p.post_id))
    return PostList(items=[_out(p, caller) for p in found], total=len(found))


@router.get("/{post_id}", response_model=PostOut)
def get_post(post_id: str, caller: Caller, ctx: Ctx) -> PostOut:
    """One post with its history (a member sees the steps about themself)."""
    p, _ = _visible(ctx, caller, post_id)
    return _out(p, caller, history=True)


@router.post(
    "/{post_id}/claim", response_model=PostAccepted, status_code=202, responses=errors(409)
)
def claim_post(post_id: str, caller: Caller, ctx: Ctx) -> PostAccepted:
    """A member of the post's community claims it; the organizer decides."""
    gate(caller, "post_claim")
    p, facts = _visible(ctx, caller, post_id)
    check(caller, "post_claim", "change", facts, "post", post_id)
    return _step(ctx, caller, p, "claim", caller.subject_id, "")


@router.post(
    "/{post_id}/decision", response_model=PostAccepted, status_code=202, responses=errors(409)
)
def decide_claim(post_id: str, body: PostDecisionIn, caller: Caller, ctx: Ctx) -> PostAccepted:
    """Approves or declines a member's pending claim (the community's organizer); approving
    answers the post's other claims with a decline."""
    gate(caller, "post")
    p, facts = _visible(ctx, caller, post_id)
    check(caller, "post", "change", facts, "post", post_id)
    if body.member_id not in p.pending:
        raise ApiError(422, "no_post_claim", "member_id: no pending claim of this member")
    return _step(ctx, caller, p, body.decision, body.member_id, body.reason)


@router.post(
    "/{post_id}/leave", response_model=PostAccepted, status_code=202, responses=errors(409)
)
def leave_post(post_id: str, body: PostLeaveIn, caller: Caller, ctx: Ctx) -> PostAccepted:
    """The holder leaves the post, or the organizer ends the holding; the post is open again."""
    p, facts = _visible(ctx, caller, post_id)
    reason = body.reason
    if caller.role == "member":
        check(caller, "post_claim", "change", facts, "post", post_id)
        if p.holder_id != caller.subject_id:
            raise ApiError(409, "not_post_holder", "the caller does not hold this post")
        return _step(ctx, caller, p, "leave", caller.subject_id, reason)
    check(caller, "post", "change", facts, "post", post_id)
    if not p.holder_id:
        raise ApiError(409, "not_post_holder", "the post has no holder")
    return _step(ctx, caller, p, "end", p.holder_id, reason)
