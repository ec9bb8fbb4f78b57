"""What the wishes, resources and projects routers share: request and answer models, and the
check of a list command against the agent's own rules before it is published.

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
from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Ctx, check, hidden
from api.errors import ApiError
from services import topics
from services.access import Facts
from services.events import ListCommand, ResourceFields, WishFields
from services.lists import ItemState, apply
from services.reads import engagement
from services.text import FreeText, Line
from services.tokens import Principal

Text = Field(min_length=1, max_length=200)
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="items to skip")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    # A re-sent request with the same id is the same command, never a second transition.
    client_event_id: uuid.UUID | None = None


class WishIn(_In):
    community_id: str = Field(min_length=1, max_length=64)
    title: Line = Text
    description: FreeText = Field(default="", max_length=2000)
    resident_name: Line = Field(min_length=1, max_length=50)
    resident_contact: Line = Field(default="", max_length=100)


class DispatchIn(_In):
    assignee_kind: Literal["member", "unit"]
    assignee_id: str = Field(min_length=1, max_length=64)


class CompleteIn(_In):
    session_id: str = Field(min_length=1, max_length=64)


class ConfirmIn(_In):
    rating: int = Field(ge=1, le=5)
    comment: FreeText = Field(default="", max_length=1000)


class ReasonIn(_In):
    reason: FreeText = Field(default="", max_length=500)


class ResourceIn(_In):
    unit_id: str | None = Field(default=None, max_length=64)
    community_id: str | None = Field(default=None, max_length=64)
    title: Line = Text
    description: FreeText = Field(default="", max_length=2000)


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


class WishView(WishFields):
    """A wish as every list and get shows it: the resident's name masked (王**) and of their
    contact only the phone, masked; the rest is the resident's, for who must call them."""

    contact_revealable: bool = Field(
        default=False,
        description="the caller may read the name and contact in full (GET"
        " /v1/wishes/{wish_id}/contact, logged): the wish's community and its assignee once"
        " accepted",
    )
    contact_hint: str = Field(default="", description="what a page shows beside the contact")


class WishOut(WishView):
    # The process record of the wish (过程纪实): every accepted step, and every refused one.
    history: list[Transition] = Field(default_factory=list)
    rejections: list[Rejection] = Field(default_factory=list)


class WishList(BaseModel):
    items: list[WishView]
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


def _wish_facts(w: WishFields) -> Facts:
    # The assignee and whoever fulfilled it follow the wish.
    members = {w.fulfilled_by_member_id} | (
        {w.assignee_id} if w.assignee_kind == "member" else set()
    )
    units = {w.fulfilled_by_unit_id} | ({w.assignee_id} if w.assignee_kind == "unit" else set())
    return Facts(
        community_id=w.community_id,
        members=frozenset(m for m in members if m),
        units=frozenset(u for u in units if u),
    )


def _visible_wish(ctx: Ctx, caller: Principal, wish_id: str) -> WishFields:
    w = engagement.wish(ctx.warehouse, wish_id)
    if w is None:
        # Not yet landed is indistinguishable from absent; so is someone else's wish.
        raise hidden("wish", wish_id)
    check(caller, "wish", "read", _wish_facts(w), "wish", wish_id)
    return w


def _publish(ctx: Ctx, cmd: ListCommand) -> None:
    ctx.publisher.send_sync(topics.LIST_COMMANDS, cmd.item_id, cmd)


def _known(ctx: Ctx, kind: str, id_: str, field: str) -> None:
    if not ctx.registry.exists(kind, id_):
        raise ApiError(422, f"unknown_{kind}", f"{field}: no {kind} with id {id_!r}")


def _visible_or_assignable(ctx: Ctx, caller: Principal, wish_id: str) -> WishFields:
    w = engagement.wish(ctx.warehouse, wish_id)
    if w is None:
        raise hidden("wish", wish_id)
    # A member or unit that is not the assignee learns that they are not (403, from the wish's
    # rules), rather than that the wish is absent: they were shown it (e.g. on a notice).
    check(caller, "wish_assignment", "read", _wish_facts(w), "wish", wish_id)
    return w
