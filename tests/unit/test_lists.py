"""The life of a micro-wish and a resource: every allowed and every refused transition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.events import ListCommand
from services.lists import ItemState, Outcome, apply, command
from services.processors import process

T0 = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)
COMM, OTHER_COMM = "comm_a", "comm_b"
MEMBER, OTHER_MEMBER = "mem_a", "mem_b"
UNIT, OTHER_UNIT = "unit_a", "unit_b"

ORGANIZER = {"actor_role": "organizer", "actor_id": COMM}
_n = 0


def cmd(action: str, item_id: str = "wish_1", kind: str = "wish", **fields: Any) -> ListCommand:
    global _n
    _n += 1
    actor = {k: fields.pop(k) for k in ("actor_role", "actor_id") if k in fields} or ORGANIZER
    return command(
        item_kind=kind,
        item_id=item_id,
        action=action,
        at=T0 + timedelta(minutes=_n),
        basis=f"t{_n}",
        **{**ORGANIZER, **actor},
        **fields,
    )


def ok(state: ItemState, c: ListCommand) -> ItemState:
    out = apply(state, c)
    assert out.refusal is None, out.refusal
    assert out.changed
    return out.state


def refused(state: ItemState, c: ListCommand, code: str) -> Outcome:
    out = apply(state, c)
    assert out.refusal is not None, f"{c.action} was accepted"
    assert out.refusal.code == code, out.refusal
    assert out.state == state, "a refused command must not change the state"
    return out


ORDER = {"community_id": COMM, "title": "帮忙修水龙头", "resident_name": "王大妈"}
AS_MEMBER = {"actor_role": "member", "actor_id": MEMBER}
AS_UNIT_HR = {"actor_role": "hr", "actor_id": UNIT}
EVIDENCE = {"session_id": "s1", "session_member_id": MEMBER, "session_unit_id": UNIT}


def ordered() -> ItemState:
    return ok(ItemState(), cmd("order", **ORDER))


def dispatched(kind: str = "member") -> ItemState:
    assignee = MEMBER if kind == "member" else UNIT
    return ok(ordered(), cmd("dispatch", assignee_kind=kind, assignee_id=assignee))


def accepted(kind: str = "member") -> ItemState:
    return ok(dispatched(kind), cmd("accept", **(AS_MEMBER if kind == "member" else AS_UNIT_HR)))


def done(kind: str = "member") -> ItemState:
    return ok(
        accepted(kind),
        cmd("complete", **(AS_MEMBER if kind == "member" else AS_UNIT_HR), **EVIDENCE),
    )


def test_whole_life_of_a_wish_for_a_member() -> None:
    s = ordered()
    assert s.wish is not None and s.wish.status == "ordered" and s.wish.revision == 1
    s = dispatched()
    assert s.wish is not None and s.wish.status == "dispatched" and s.wish.assignee_id == MEMBER
    s = accepted()
    assert s.wish is not None and s.wish.status == "accepted" and s.wish.accepted_at is not None
    s = done()
    w = s.wish
    assert w is not None and w.status == "done" and w.evidence_session_id == "s1"
    assert w.fulfilled_by_member_id == MEMBER and w.fulfilled_by_unit_id == UNIT
    s = ok(s, cmd("confirm", rating=5, comment="很及时"))
    w = s.wish
    assert w is not None and w.status == "confirmed" and w.rating == 5 and w.revision == 5
    assert w.rating_comment == "很及时"


def test_whole_life_of_a_wish_for_a_unit() -> None:
    s = done("unit")
    assert s.wish is not None and s.wish.status == "done" and s.wish.fulfilled_by_unit_id == UNIT
    s = ok(s, cmd("confirm", rating=4, actor_role="admin", actor_id="admin"))
    assert s.wish is not None and s.wish.status == "confirmed"


def test_order_refusals() -> None:
    refused(ordered(), cmd("order", **ORDER), "already_exists")
    refused(ItemState(), cmd("order", **{**ORDER, "title": " "}), "missing_field")
    refused(ItemState(), cmd("order", **{**ORDER, "community_id": OTHER_COMM}), "forbidden")
    refused(ItemState(), cmd("order", **ORDER, **AS_MEMBER), "forbidden")
    for action in ("dispatch", "accept", "complete", "confirm", "cancel", "decline"):
        refused(ItemState(), cmd(action), "not_found")


def test_dispatch_refusals() -> None:
    m = {"assignee_kind": "member", "assignee_id": MEMBER}
    refused(dispatched(), cmd("dispatch", **m), "already_dispatched")
    refused(accepted(), cmd("dispatch", **m), "already_dispatched")
    refused(
        ordered(), cmd("dispatch", **m, actor_role="organizer", actor_id=OTHER_COMM), "forbidden"
    )
    refused(ordered(), cmd("dispatch", **m, **AS_MEMBER), "forbidden")
    refused(ordered(), cmd("dispatch", assignee_id=MEMBER), "missing_field")
    # A project dispatches only to a unit, and names its project.
    refused(
        ordered(),
        cmd("dispatch", **m, resource_id="res_1", project_id="proj_1"),
        "invalid_project",
    )


def test_accept_refusals_double_claim_and_wrong_assignee() -> None:
    refused(accepted(), cmd("accept", **AS_MEMBER), "already_claimed")
    refused(done(), cmd("accept", **AS_MEMBER), "already_claimed")
    refused(ordered(), cmd("accept", **AS_MEMBER), "invalid_transition")
    refused(dispatched(), cmd("accept", actor_role="member", actor_id=OTHER_MEMBER), "not_assignee")
    # A unit's wish is accepted by its HR, not by a member, another unit or the admin.
    refused(dispatched("unit"), cmd("accept", **AS_MEMBER), "not_assignee")
    refused(dispatched("unit"), cmd("accept", actor_role="hr", actor_id=OTHER_UNIT), "not_assignee")
    refused(dispatched(), cmd("accept", actor_role="admin", actor_id="admin"), "not_assignee")
    refused(dispatched(), cmd("accept", **ORGANIZER), "not_assignee")


def test_complete_refusals_done_before_accepted() -> None:
    refused(ordered(), cmd("complete", **AS_MEMBER, **EVIDENCE), "not_accepted")
    refused(dispatched(), cmd("complete", **AS_MEMBER, **EVIDENCE), "not_accepted")
    refused(done(), cmd("complete", **AS_MEMBER, **EVIDENCE), "invalid_transition")
    refused(
        accepted(),
        cmd("complete", actor_role="member", actor_id=OTHER_MEMBER, **EVIDENCE),
        "not_assignee",
    )
    refused(accepted(), cmd("complete", **AS_MEMBER), "missing_field")
    refused(
        accepted(),
        cmd("complete", **AS_MEMBER, **{**EVIDENCE, "session_member_id": OTHER_MEMBER}),
        "evidence_mismatch",
    )
    refused(
        accepted("unit"),
        cmd("complete", **AS_UNIT_HR, **{**EVIDENCE, "session_unit_id": OTHER_UNIT}),
        "evidence_mismatch",
    )


def test_confirm_refusals() -> None:
    refused(accepted(), cmd("confirm", rating=5), "invalid_transition")
    refused(done(), cmd("confirm"), "missing_field")
    refused(done(), cmd("confirm", rating=5, **AS_MEMBER), "forbidden")
    confirmed = ok(done(), cmd("confirm", rating=3))
    refused(confirmed, cmd("confirm", rating=5), "invalid_transition")


def test_cancel_and_decline() -> None:
    for state in (ordered(), dispatched(), accepted()):
        s = ok(state, cmd("cancel", reason="居民已自行解决"))
        assert s.wish is not None and s.wish.status == "cancelled"
    refused(done(), cmd("cancel"), "invalid_transition")
    refused(ordered(), cmd("cancel", **AS_MEMBER), "forbidden")
    s = ok(dispatched(), cmd("decline", **AS_MEMBER))
    assert s.wish is not None and s.wish.status == "ordered" and s.wish.assignee_id is None
    refused(
        dispatched(), cmd("decline", actor_role="member", actor_id=OTHER_MEMBER), "not_assignee"
    )
    refused(accepted(), cmd("decline", **AS_MEMBER), "invalid_transition")
    # Declined, it can be dispatched again.
    ok(s, cmd("dispatch", assignee_kind="unit", assignee_id=UNIT))


def test_redelivered_command_is_dropped_silently() -> None:
    s = ordered()
    c = cmd("dispatch", assignee_kind="member", assignee_id=MEMBER)
    s1 = ok(s, c)
    again = apply(s1, c)
    assert again.duplicate and again.refusal is None and again.state == s1


def test_an_applied_command_becomes_a_transition_record() -> None:
    c = cmd("dispatch", assignee_kind="member", assignee_id=MEMBER)
    out = apply(ordered(), c)
    t = out.applied(c)
    assert t is not None and (t.action, t.revision, t.status) == ("dispatch", 2, "dispatched")
    assert out.rejection(c) is None
    route, row = process("lists.transitions", t.to_bytes())
    assert route.table == "list_transitions" and row[1] == c.event_id


def test_refusal_becomes_a_rejection_record() -> None:
    c = cmd("accept", **AS_MEMBER)
    out = refused(accepted(), c, "already_claimed")
    rej = out.rejection(c)
    assert out.applied(c) is None
    assert rej is not None and rej.command_event_id == c.event_id and rej.code == "already_claimed"
    route, row = process("lists.rejections", rej.to_bytes())
    assert route.table == "list_rejections" and row[0] == rej.event_id


# ---- resources and projects ----------------------------------------------------------------

OFFER = {"unit_id": UNIT, "title": "法律咨询志愿者", "actor_role": "hr", "actor_id": UNIT}


def offered() -> ItemState:
    return ok(ItemState(), cmd("offer", "res_1", "resource", **OFFER))


def test_resource_transitions() -> None:
    s = offered()
    assert s.resource is not None and s.resource.status == "available"
    refused(s, cmd("offer", "res_1", "resource", **OFFER), "already_exists")
    refused(
        ItemState(),
        cmd("offer", "res_2", "resource", **{**OFFER, "actor_id": OTHER_UNIT}),
        "forbidden",
    )
    refused(
        ItemState(), cmd("offer", "res_2", "resource", **{**OFFER, "title": ""}), "missing_field"
    )
    sys = {"actor_role": "system", "actor_id": "lists-agent"}
    m = ok(s, cmd("match", "res_1", "resource", project_id="p1", wish_id="w1", **sys))
    assert m.resource is not None and m.resource.status == "matched"
    refused(
        s,
        cmd("match", "res_1", "resource", project_id="p1", wish_id="w1", **ORGANIZER),
        "forbidden",
    )
    refused(m, cmd("withdraw", "res_1", "resource", **AS_UNIT_HR), "invalid_transition")
    refused(m, cmd("release", "res_1", "resource", project_id="p2", **sys), "stale_project")
    r = ok(m, cmd("release", "res_1", "resource", project_id="p1", **sys))
    assert r.resource is not None and r.resource.status == "available"
    refused(
        s, cmd("withdraw", "res_1", "resource", actor_role="hr", actor_id=OTHER_UNIT), "forbidden"
    )
    w = ok(s, cmd("withdraw", "res_1", "resource", **AS_UNIT_HR))
    assert w.resource is not None and w.resource.status == "withdrawn"
    refused(w, cmd("withdraw", "res_1", "resource", **AS_UNIT_HR), "invalid_transition")
    refused(w, cmd("accept", "res_1", "resource", **AS_UNIT_HR), "invalid_action")


def test_project_dispatch_asks_the_resource_and_a_refusal_hands_the_wish_back() -> None:
    out = apply(
        ordered(),
        cmd(
            "dispatch",
            assignee_kind="unit",
            assignee_id=UNIT,
            resource_id="res_1",
            project_id="proj_1",
        ),
    )
    assert out.refusal is None and out.state.wish is not None
    assert out.state.wish.project_id == "proj_1" and out.state.wish.status == "dispatched"
    (match,) = out.follow_ups
    assert (match.item_kind, match.item_id, match.action) == ("resource", "res_1", "match")
    # Another project took the resource first: the match is refused and the wish handed back.
    taken = ok(
        offered(),
        cmd(
            "match",
            "res_1",
            "resource",
            project_id="proj_0",
            wish_id="w0",
            actor_role="system",
            actor_id="x",
        ),
    )
    refusal = apply(taken, match)
    assert refusal.refusal is not None and refusal.refusal.code == "resource_unavailable"
    (unmatch,) = refusal.follow_ups
    assert (unmatch.item_id, unmatch.action) == ("wish_1", "unmatch")
    back = ok(out.state, unmatch)
    assert back.wish is not None and back.wish.status == "ordered" and back.wish.project_id is None
    # A cancelled project releases its resource.
    cancelled = apply(out.state, cmd("cancel"))
    assert [f.action for f in cancelled.follow_ups] == ["release"]
    # Follow-ups are deterministic: the same cause replayed produces the same follow-up id.
    dispatch = cmd(
        "dispatch", assignee_kind="unit", assignee_id=UNIT, resource_id="r", project_id="p"
    )
    first, second = apply(ordered(), dispatch), apply(ordered(), dispatch)
    assert first.follow_ups[0].event_id == second.follow_ups[0].event_id


def test_unmatch_only_from_the_agent() -> None:
    s = ok(
        ordered(),
        cmd("dispatch", assignee_kind="unit", assignee_id=UNIT, resource_id="r", project_id="p"),
    )
    refused(s, cmd("unmatch", project_id="p"), "forbidden")
    refused(s, cmd("unmatch", project_id="q", actor_role="system", actor_id="x"), "stale_project")


@pytest.mark.parametrize("rating", [0, 6])
def test_rating_out_of_range_is_invalid(rating: int) -> None:
    with pytest.raises(ValueError):
        cmd("confirm", rating=rating)
