"""How `api.deps` turns the access policy's decisions into answers: 403 `forbidden`, or the
404 `<kind>_not_found` an unknown id gets too; list filters confined to the caller's scope."""

from __future__ import annotations

import pytest

from api.deps import check, confine, gate, require, scope_of_list
from api.errors import ApiError
from services.access import Facts, member_facts
from services.tokens import Principal

M1 = Principal("member", "mem_1", "t1", 1)
ORG1 = Principal("organizer", "comm_1", "t2", 1)
ORG2 = Principal("organizer", "comm_2", "t3", 1)
HR1 = Principal("hr", "unit_1", "t4", 1)
ADMIN = Principal("admin", "admin", "admin-token", None)
OF_M1 = member_facts("mem_1", "comm_1", "unit_1")


def _refusal(call: object) -> tuple[int, str, str]:
    assert callable(call)
    with pytest.raises(ApiError) as exc:
        call()
    return exc.value.status, exc.value.code, exc.value.message


def test_a_role_gate_names_the_roles_the_policy_allows() -> None:
    gate(ORG1, "wish")
    gate(ADMIN, "wish")
    assert _refusal(lambda: gate(M1, "wish")) == (
        403,
        "forbidden",
        "this action needs the role organizer or admin",
    )
    assert _refusal(lambda: gate(ORG1, "resource"))[2] == "this action needs the role hr or admin"
    assert _refusal(lambda: require(HR1, "member"))[:2] == (403, "forbidden")
    require(M1, "member")


def test_refusals_are_403_or_the_404_of_an_unknown_id() -> None:
    check(ORG1, "member", "change", OF_M1, "member", "mem_1")
    # Another community's organizer: as if the member did not exist.
    assert _refusal(lambda: check(ORG2, "member", "change", OF_M1, "member", "mem_1")) == (
        404,
        "member_not_found",
        "no member 'mem_1' visible to this caller",
    )
    # HR reads the member, so it may know they exist: 403, with the caller's message.
    got = _refusal(lambda: check(HR1, "member", "change", OF_M1, "member", "mem_1", message="no"))
    assert got == (403, "forbidden", "no")
    # Named in a body: 403 even for a caller who may not read it.
    got = _refusal(
        lambda: check(ORG2, "member_service", "change", OF_M1, "member", "mem_1", hideable=False)
    )
    assert got[:2] == (403, "forbidden")
    unit = Facts(unit_id="unit_1")
    got = _refusal(lambda: check(M1, "unit_desk", "read", unit, "unit", "unit_1"))
    assert got[:2] == (404, "unit_not_found")


def test_list_filters_stay_inside_the_callers_scope() -> None:
    scope = scope_of_list(ORG1, "wish")
    assert confine(None, scope.community_id, "community_id") == "comm_1"
    assert confine("comm_1", scope.community_id, "community_id") == "comm_1"
    assert _refusal(lambda: confine("comm_2", scope.community_id, "community_id")) == (
        403,
        "forbidden",
        "community_id: outside the caller's scope",
    )
    # Unconfined (the admin): the filter asked for, or none.
    admin = scope_of_list(ADMIN, "wish")
    assert confine("comm_2", admin.community_id, "community_id") == "comm_2"
    assert confine(None, admin.community_id, "community_id") is None
    # A role that may not list the resource at all.
    assert _refusal(lambda: scope_of_list(M1, "resource"))[:2] == (403, "forbidden")
