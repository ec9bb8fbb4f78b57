"""The life of a micro-wish and of a unit's resource (三单制): pure rules, no faust.

The lists agent keeps each item's state and calls `apply` for every command in log order; the
API calls the same function against the state it reads from ClickHouse, to answer a clear 409
at once. The agent's verdict is the authority: the API's copy of the state may lag.

Wish:     ordered (点单) → dispatched (派单) → accepted (接单) → done → confirmed (评价)
          ordered/dispatched/accepted → cancelled; dispatched → ordered (decline, unmatch)
Resource: available → matched (by a project) → available (release); available → withdrawn

A project (项目清单) is a wish dispatched to the unit offering a resource: the wish accepts the
dispatch first and then asks the resource to be matched; a resource that is no longer
available refuses and the wish is handed back to `ordered` (a compensating `unmatch`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from services.access import Facts, actor_may, is_assignee
from services.events import (
    ListCommand,
    ListCommandRejected,
    ListTransitionApplied,
    ResourceFields,
    WishFields,
    derived_id,
)

# How many applied command ids an item remembers, to drop a redelivered command silently
# (a producer retry or a client re-send arrives close to the original).
RECENT_IDS = 32


class ItemState(BaseModel):
    model_config = ConfigDict(frozen=True)

    wish: WishFields | None = None
    resource: ResourceFields | None = None
    recent_event_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Refusal:
    code: str
    reason: str


@dataclass
class Outcome:
    state: ItemState
    changed: bool = False
    refusal: Refusal | None = None
    duplicate: bool = False
    # Commands for other items that this one's transition requires (the project saga).
    follow_ups: list[ListCommand] = field(default_factory=list)

    def applied(self, cmd: ListCommand) -> ListTransitionApplied | None:
        item = self.state.wish if cmd.item_kind == "wish" else self.state.resource
        if not self.changed or item is None:
            return None
        return ListTransitionApplied(
            event_id=derived_id("lists.applied", cmd.event_id),
            occurred_at=cmd.occurred_at,
            command_event_id=cmd.event_id,
            item_kind=cmd.item_kind,
            item_id=cmd.item_id,
            action=cmd.action,
            actor_role=cmd.actor_role,
            actor_id=cmd.actor_id,
            revision=item.revision,
            status=item.status,
            reason=cmd.reason,
        )

    def rejection(self, cmd: ListCommand) -> ListCommandRejected | None:
        if self.refusal is None:
            return None
        return ListCommandRejected(
            event_id=derived_id("lists.rejected", cmd.event_id),
            occurred_at=cmd.occurred_at,
            command_event_id=cmd.event_id,
            item_kind=cmd.item_kind,
            item_id=cmd.item_id,
            action=cmd.action,
            actor_role=cmd.actor_role,
            actor_id=cmd.actor_id,
            code=self.refusal.code,
            reason=self.refusal.reason,
        )


class _Refused(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.refusal = Refusal(code, reason)


def _need(value: str | None, name: str, action: str) -> str:
    if value is None or not value.strip():
        raise _Refused("missing_field", f"{action} needs {name}")
    return value


def _is_organizer_of(cmd: ListCommand, community_id: str) -> bool:
    return actor_may(cmd.actor_role, cmd.actor_id, "wish", Facts(community_id=community_id))


def _is_assignee(cmd: ListCommand, w: WishFields) -> bool:
    # Only the assignee itself (the access policy's rule): not the admin, who must not claim
    # work on anyone's behalf.
    return is_assignee(cmd.actor_role, cmd.actor_id, w.assignee_kind, w.assignee_id)


def _status_error(w: WishFields, action: str, allowed: tuple[str, ...]) -> _Refused:
    if action == "accept" and w.status in ("accepted", "done", "confirmed"):
        return _Refused("already_claimed", f"wish {w.wish_id} was already accepted (接单)")
    if action == "complete" and w.status in ("ordered", "dispatched"):
        return _Refused(
            "not_accepted", f"wish {w.wish_id} is {w.status}: it must be accepted before done"
        )
    if action == "dispatch" and w.status != "ordered":
        return _Refused("already_dispatched", f"wish {w.wish_id} is {w.status}, not ordered")
    return _Refused(
        "invalid_transition",
        f"cannot {action} wish {w.wish_id} in status {w.status} (needs {' or '.join(allowed)})",
    )


def _wish(cmd: ListCommand, w: WishFields | None) -> tuple[WishFields, list[ListCommand]]:
    at = cmd.occurred_at
    if cmd.action == "order":
        if w is not None:
            raise _Refused("already_exists", f"wish {cmd.item_id} already exists")
        community_id = _need(cmd.community_id, "community_id", "order")
        if not _is_organizer_of(cmd, community_id):
            raise _Refused("forbidden", "only the community's organizer records a resident's wish")
        return (
            WishFields(
                wish_id=cmd.item_id,
                revision=1,
                status="ordered",
                community_id=community_id,
                title=_need(cmd.title, "title", "order"),
                description=cmd.description or "",
                resident_name=_need(cmd.resident_name, "resident_name", "order"),
                resident_contact=cmd.resident_contact or "",
                created_at=at,
                updated_at=at,
                last_event_id=cmd.event_id,
            ),
            [],
        )
    if w is None:
        raise _Refused("not_found", f"wish {cmd.item_id} does not exist")

    def step(allowed: tuple[str, ...], **update: object) -> WishFields:
        if w.status not in allowed:
            raise _status_error(w, cmd.action, allowed)
        base = {"revision": w.revision + 1, "updated_at": at, "last_event_id": cmd.event_id}
        return w.model_copy(update={**base, **update})

    release: list[ListCommand] = []
    if w.resource_id is not None and w.project_id is not None:
        release = [_resource_cmd(cmd, w.resource_id, "release", w.project_id, w.wish_id)]

    if cmd.action == "dispatch":
        if not _is_organizer_of(cmd, w.community_id):
            raise _Refused("forbidden", "only the wish's community organizer dispatches it")
        kind = cmd.assignee_kind
        if kind is None:
            raise _Refused("missing_field", "dispatch needs assignee_kind (member or unit)")
        assignee = _need(cmd.assignee_id, "assignee_id", "dispatch")
        if cmd.resource_id is not None and (kind != "unit" or cmd.project_id is None):
            raise _Refused("invalid_project", "a project dispatches to the resource's unit")
        new = step(
            ("ordered",),
            status="dispatched",
            assignee_kind=kind,
            assignee_id=assignee,
            project_id=cmd.project_id,
            resource_id=cmd.resource_id,
            dispatched_at=at,
        )
        follow = []
        if cmd.resource_id is not None and cmd.project_id is not None:
            follow = [_resource_cmd(cmd, cmd.resource_id, "match", cmd.project_id, w.wish_id)]
        return new, follow
    if cmd.action == "accept":
        if w.status == "dispatched" and not _is_assignee(cmd, w):
            raise _Refused("not_assignee", f"only the assignee {w.assignee_id} accepts this wish")
        return step(("dispatched",), status="accepted", accepted_at=at), []
    if cmd.action == "decline":
        if w.status == "dispatched" and not _is_assignee(cmd, w):
            raise _Refused("not_assignee", f"only the assignee {w.assignee_id} declines this wish")
        return _back_to_ordered(step(("dispatched",))), release
    if cmd.action == "unmatch":
        if cmd.actor_role != "system":
            raise _Refused("forbidden", "unmatch is issued by the lists agent only")
        if w.project_id is None or w.project_id != cmd.project_id:
            raise _Refused("stale_project", f"wish {w.wish_id} is not in project {cmd.project_id}")
        return _back_to_ordered(step(("dispatched",))), []
    if cmd.action == "complete":
        if w.status != "accepted":
            raise _status_error(w, cmd.action, ("accepted",))
        if not _is_assignee(cmd, w):
            raise _Refused("not_assignee", f"only the assignee {w.assignee_id} completes this wish")
        session_id = _need(cmd.session_id, "session_id (the evidence)", "complete")
        session_member = _need(cmd.session_member_id, "session_member_id", "complete")
        session_unit = _need(cmd.session_unit_id, "session_unit_id", "complete")
        if w.assignee_kind == "member" and session_member != w.assignee_id:
            raise _Refused("evidence_mismatch", "the session is not the assignee's own")
        if w.assignee_kind == "unit" and session_unit != w.assignee_id:
            raise _Refused("evidence_mismatch", "the session is not by a member of the unit")
        return (
            step(
                ("accepted",),
                status="done",
                evidence_session_id=session_id,
                fulfilled_by_member_id=session_member,
                fulfilled_by_unit_id=session_unit,
                done_at=at,
            ),
            [],
        )
    if cmd.action == "confirm":
        if not _is_organizer_of(cmd, w.community_id):
            raise _Refused("forbidden", "the community's organizer records the resident's rating")
        if cmd.rating is None:
            raise _Refused("missing_field", "confirm needs rating (1-5)")
        return (
            step(
                ("done",),
                status="confirmed",
                rating=cmd.rating,
                rating_comment=cmd.comment or "",
                confirmed_at=at,
            ),
            [],
        )
    if cmd.action == "cancel":
        if not _is_organizer_of(cmd, w.community_id):
            raise _Refused("forbidden", "only the wish's community organizer cancels it")
        return step(("ordered", "dispatched", "accepted"), status="cancelled"), release
    raise _Refused("invalid_action", f"{cmd.action} is not an action on a wish")


def _back_to_ordered(w: WishFields) -> WishFields:
    return w.model_copy(
        update={
            "status": "ordered",
            "assignee_kind": None,
            "assignee_id": None,
            "project_id": None,
            "resource_id": None,
            "dispatched_at": None,
        }
    )


def _resource_cmd(
    cause: ListCommand, resource_id: str, action: str, project_id: str, wish_id: str
) -> ListCommand:
    return ListCommand(
        # Derived from the causing command: a redelivered cause yields the same follow-up.
        event_id=derived_id("lists.follow", cause.event_id, action),
        occurred_at=cause.occurred_at,
        item_kind="resource",
        item_id=resource_id,
        action=action,
        actor_role="system",
        actor_id="lists-agent",
        project_id=project_id,
        wish_id=wish_id,
    )


def _resource(cmd: ListCommand, r: ResourceFields | None) -> ResourceFields:
    at = cmd.occurred_at
    if cmd.action == "offer":
        if r is not None:
            raise _Refused("already_exists", f"resource {cmd.item_id} already exists")
        unit_id = _need(cmd.unit_id, "unit_id", "offer")
        if not actor_may(cmd.actor_role, cmd.actor_id, "resource", Facts(unit_id=unit_id)):
            raise _Refused("forbidden", "only the unit's HR (or the admin) offers its resources")
        return ResourceFields(
            resource_id=cmd.item_id,
            revision=1,
            status="available",
            unit_id=unit_id,
            community_id=cmd.community_id,
            title=_need(cmd.title, "title", "offer"),
            description=cmd.description or "",
            created_at=at,
            updated_at=at,
            last_event_id=cmd.event_id,
        )
    if r is None:
        raise _Refused("not_found", f"resource {cmd.item_id} does not exist")
    base = {"revision": r.revision + 1, "updated_at": at, "last_event_id": cmd.event_id}
    if cmd.action == "match":
        if cmd.actor_role != "system":
            raise _Refused("forbidden", "a resource is matched by creating a project")
        if r.status != "available":
            raise _Refused("resource_unavailable", f"resource {r.resource_id} is {r.status}")
        return r.model_copy(
            update={
                **base,
                "status": "matched",
                "project_id": cmd.project_id,
                "wish_id": cmd.wish_id,
            }
        )
    if cmd.action == "release":
        if cmd.actor_role != "system":
            raise _Refused("forbidden", "a resource is released when its project ends")
        if r.status != "matched" or r.project_id != cmd.project_id:
            raise _Refused("stale_project", f"resource {r.resource_id} is not in that project")
        return r.model_copy(
            update={**base, "status": "available", "project_id": None, "wish_id": None}
        )
    if cmd.action == "withdraw":
        if not actor_may(cmd.actor_role, cmd.actor_id, "resource", Facts(unit_id=r.unit_id)):
            raise _Refused("forbidden", "only the unit's HR (or the admin) withdraws its resource")
        if r.status != "available":
            raise _Refused(
                "invalid_transition", f"resource {r.resource_id} is {r.status}, not available"
            )
        return r.model_copy(update={**base, "status": "withdrawn"})
    raise _Refused("invalid_action", f"{cmd.action} is not an action on a resource")


def apply(state: ItemState, cmd: ListCommand) -> Outcome:
    """Judge one command against one item's state; never raises for a refused command."""
    if cmd.event_id in state.recent_event_ids:
        return Outcome(state, duplicate=True)
    try:
        if cmd.item_kind == "wish":
            wish, follow = _wish(cmd, state.wish)
            new = state.model_copy(update={"wish": wish})
        else:
            new = state.model_copy(update={"resource": _resource(cmd, state.resource)})
            follow = []
    except _Refused as exc:
        if cmd.item_kind == "resource" and cmd.action == "match" and cmd.project_id and cmd.wish_id:
            # The wish already took the dispatch: hand it back so it can be dispatched again.
            follow = [
                ListCommand(
                    event_id=derived_id("lists.follow", cmd.event_id, "unmatch"),
                    occurred_at=cmd.occurred_at,
                    item_kind="wish",
                    item_id=cmd.wish_id,
                    action="unmatch",
                    actor_role="system",
                    actor_id="lists-agent",
                    project_id=cmd.project_id,
                    reason=exc.refusal.reason,
                )
            ]
        else:
            follow = []
        return Outcome(state, refusal=exc.refusal, follow_ups=follow)
    recent = (*state.recent_event_ids, cmd.event_id)[-RECENT_IDS:]
    return Outcome(
        new.model_copy(update={"recent_event_ids": recent}), changed=True, follow_ups=follow
    )


def command(
    *,
    item_kind: str,
    item_id: str,
    action: str,
    actor_role: str,
    actor_id: str,
    at: datetime,
    basis: str,
    **fields: object,
) -> ListCommand:
    """A command with a deterministic id: `basis` is the client's id for the request, or the
    item's revision the caller saw, so a re-sent request is the same command (dropped by the
    agent) rather than a second transition."""
    return ListCommand.model_validate(
        {
            "event_id": derived_id("lists.command", item_id, action, basis),
            "occurred_at": at,
            "item_kind": item_kind,
            "item_id": item_id,
            "action": action,
            "actor_role": actor_role,
            "actor_id": actor_id,
            **fields,
        }
    )
