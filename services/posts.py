"""Standing posts (岗位认领): a long-term duty attached to a level-5 grid (a building unit's
单元党员责任岗, a 楼栋党小组), claimed by a member and approved by the organizer. Pure rules.

A post's state is its events folded in time order (`occurred_at`, then event id) with `apply`;
an event the rules refuse (a second approval that raced the first, a claim on a post held in
the meantime) is kept in the log and changes nothing, for every reader. The API judges a new
step with the same function against the state it reads, to answer a clear 409 at once.

    open --claim--> open with a pending claim --approve--> held (other pending claims declined)
    held --leave (holder) / end (organizer)--> open

Holding a post changes nothing in counting: the holder's service in their grid counts as any
member's (`services.counting`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

PostStatus = Literal["open", "held"]
KINDS = ("unit_post", "building_group", "other")
KIND_LABELS = {"unit_post": "单元党员责任岗", "building_group": "楼栋党小组", "other": "其他岗位"}
STATUS_LABELS = {"open": "待认领", "held": "已认领"}


class PostRefused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Step:
    """One event of a post, as the fold reads it."""

    event_id: str
    action: str
    occurred_at: datetime
    member_id: str = ""
    reason: str = ""
    actor: str = ""
    community_id: str = ""
    grid_id: str = ""
    kind: str = ""
    title: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class HistoryLine:
    action: str
    member_id: str
    actor: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class Post:
    post_id: str
    community_id: str = ""
    grid_id: str = ""
    kind: str = ""
    title: str = ""
    description: str = ""
    created_at: datetime | None = None
    holder_id: str | None = None
    held_since: datetime | None = None
    # Members waiting for the organizer's decision, in the order they claimed.
    pending: tuple[str, ...] = ()
    history: tuple[HistoryLine, ...] = field(default_factory=tuple)

    @property
    def exists(self) -> bool:
        return self.created_at is not None

    @property
    def status(self) -> PostStatus:
        return "held" if self.holder_id else "open"


def apply(post: Post, step: Step) -> Post:
    """The post after `step`; `PostRefused` when the rules do not allow it now."""
    a, m = step.action, step.member_id
    line = HistoryLine(a, m, step.actor, step.reason, step.occurred_at)
    if a == "create":
        if post.exists:
            raise PostRefused("post_exists", f"post {post.post_id!r} exists already")
        return replace(
            post,
            community_id=step.community_id,
            grid_id=step.grid_id,
            kind=step.kind,
            title=step.title,
            description=step.description,
            created_at=step.occurred_at,
            history=(line,),
        )
    if not post.exists:
        raise PostRefused("post_not_found", f"no post {post.post_id!r}")
    hist = (*post.history, line)
    if a == "claim":
        if post.holder_id == m:
            raise PostRefused("post_already_held", "the member holds this post already")
        if post.holder_id:
            raise PostRefused("post_taken", "the post is held by another member")
        if m in post.pending:
            raise PostRefused("post_claim_pending", "the member's claim is waiting for a decision")
        return replace(post, pending=(*post.pending, m), history=hist)
    if a in ("approve", "decline"):
        if m not in post.pending:
            raise PostRefused("no_post_claim", "no pending claim of this member")
        rest = tuple(p for p in post.pending if p != m)
        if a == "decline":
            return replace(post, pending=rest, history=hist)
        if post.holder_id:
            raise PostRefused("post_taken", "the post is held by another member")
        # The post has its holder: the other claims are answered, not left waiting.
        auto = tuple(
            HistoryLine("decline", p, step.actor, "岗位已由他人认领", step.occurred_at)
            for p in rest
        )
        return replace(
            post,
            holder_id=m,
            held_since=step.occurred_at,
            pending=(),
            history=(*hist, *auto),
        )
    if a in ("leave", "end"):
        if not post.holder_id or (m and m != post.holder_id):
            raise PostRefused("not_post_holder", "the member does not hold this post")
        line = replace(line, member_id=post.holder_id)
        return replace(post, holder_id=None, held_since=None, history=(*post.history, line))
    raise PostRefused("invalid_action", f"unknown action {a!r}")


def fold(post_id: str, steps: Iterable[Step]) -> Post:
    """A post's state from its events, in time order; refused events change nothing."""
    post = Post(post_id)
    for s in sorted(steps, key=lambda s: (s.occurred_at, s.event_id)):
        try:
            post = apply(post, s)
        except PostRefused:
            continue
    return post
