"""The registry's pure rules: change diffs, phone numbers, scopes by role, and the rows the sink
writes for every registry event (old events included)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from services.events import Member, MemberUpserted, Station, parse_event
from services.processors import ROUTES, process
from services.registry import (
    COMMUNITY,
    GRID,
    KINDS,
    MEMBER,
    STATION,
    STATION_KIND,
    UNIT,
    Change,
    Forbidden,
    NotFound,
    Registry,
    actor,
    diff,
    list_filter,
    normalize_phone,
)
from services.tokens import Principal

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def member(**kw: object) -> Member:
    base: dict[str, object] = {
        "id": "mem_1",
        "name": "张伟",
        "unit_id": "unit_1",
        "community_id": "comm_1",
        "version": 1,
        "updated_at": NOW,
        "updated_by": "admin:admin",
    }
    return Member.model_validate({**base, **kw})


def who(role: str, subject: str) -> Principal:
    return Principal(role=role, subject_id=subject, token_id="t", expires_at=None)  # type: ignore[arg-type]


def test_an_event_from_before_grids_and_phones_still_parses_with_defaults() -> None:
    old = {
        "event_id": "e1",
        "event_type": "member.upserted",
        "schema_version": 1,
        "occurred_at": NOW.isoformat(),
        "record": {
            "id": "mem_1",
            "name": "张伟",
            "unit_id": "unit_1",
            "community_id": "comm_1",
            "version": 1,
            "updated_at": NOW.isoformat(),
            "updated_by": "admin",
        },
    }
    ev = parse_event(json.dumps(old))
    assert isinstance(ev, MemberUpserted)
    assert ev.record.status == "active" and ev.record.grid_id is None
    route, row = process("registry.members", json.dumps(old).encode())
    as_dict = dict(zip(route.columns, row, strict=True))
    assert as_dict["status"] == "active" and as_dict["phone"] is None


def test_every_registry_kind_has_a_route_whose_columns_are_the_record_fields() -> None:
    for kind in KINDS.values():
        route = ROUTES[kind.topic.name]
        assert route.table == kind.table
        assert route.columns == tuple(kind.model.model_fields)
    assert ROUTES["registry.history"].table == "registry_history"


def test_diff_lists_every_value_on_create_and_only_changes_on_update() -> None:
    before = member(phone="13800138000", reported_on=date(2022, 3, 15))
    created = diff(None, before)
    assert {c.field for c in created} == {
        "name",
        "unit_id",
        "community_id",
        "phone",
        "reported_on",
        "status",
    }
    assert all(c.before is None for c in created)
    assert next(c for c in created if c.field == "reported_on").after == '"2022-03-15"'
    after = member(phone="13800138000", unit_id="unit_2", version=2, updated_by="organizer:c")
    changes = {c.field: (c.before, c.after) for c in diff(before, after)}
    assert changes == {"unit_id": ('"unit_1"', '"unit_2"'), "reported_on": ('"2022-03-15"', "null")}
    assert diff(before, before.model_copy(update={"version": 9})) == []


def test_a_change_becomes_a_history_row_on_its_own_topic() -> None:
    from services.events import RegistryChanged

    ev = RegistryChanged(
        event_id="h1",
        occurred_at=NOW,
        entity_kind="member",
        entity_id="mem_1",
        version=2,
        operation="update",
        changed_by="admin:admin",
        changes=diff(member(), member(unit_id="unit_2")),
    )
    route, row = process("registry.history", ev.to_bytes())
    d = dict(zip(route.columns, row, strict=True))
    assert (d["fields"], d["before"], d["after"]) == (["unit_id"], ['"unit_1"'], ['"unit_2"'])
    assert d["changed_at"] == NOW and d["changed_by"] == "admin:admin"
    assert Change(MEMBER, None, member()).after.id == "mem_1"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "13800138000"),
        ("138 0013 8000", "13800138000"),
        ("138-0013-8000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("12800138000", None),
        ("1380013800", None),
        ("138001380001", None),
        ("0931-1234567", None),
        ("abc", None),
    ],
)
def test_phone_numbers_are_mainland_mobiles(raw: str, expected: str | None) -> None:
    assert normalize_phone(raw) == expected


def test_station_kind_codes_are_validated_on_the_record() -> None:
    base = {"id": "st_1", "community_id": "c", "name": "x", "version": 1, "updated_at": NOW}
    Station.model_validate({**base, "kind": "neighbourhood_center", "updated_by": "a"})
    with pytest.raises(ValidationError):
        Station.model_validate({**base, "kind": "Bad Kind", "updated_by": "a"})


def test_lists_are_confined_to_each_roles_scope() -> None:
    # The policy's scopes (services.access.list_scope) as the columns the tables hold them in.
    assert list_filter(MEMBER, who("organizer", "comm_1")) == ("community_id", "comm_1")
    assert list_filter(MEMBER, who("hr", "unit_1")) == ("unit_id", "unit_1")
    assert list_filter(MEMBER, who("member", "mem_1")) == ("id", "mem_1")
    assert list_filter(STATION, who("organizer", "comm_1")) == ("community_id", "comm_1")
    assert list_filter(GRID, who("organizer", "comm_1")) == ("community_id", "comm_1")
    assert list_filter(STATION, who("hr", "unit_1")) is None
    for kind in (UNIT, COMMUNITY, STATION_KIND, MEMBER):
        assert list_filter(kind, who("admin", "admin")) is None
    for kind in (UNIT, COMMUNITY, STATION_KIND):
        assert list_filter(kind, who("member", "mem_1")) is None
    with pytest.raises(Forbidden):
        list_filter(MEMBER, who("root", "x"))


def test_who_may_read_and_manage_a_member() -> None:
    reg = Registry.__new__(Registry)  # the rules below touch neither Kafka nor ClickHouse
    m = member()
    readers = {
        ("admin", "admin"): True,
        ("member", "mem_1"): True,
        ("member", "mem_2"): False,
        ("organizer", "comm_1"): True,
        ("organizer", "comm_2"): False,
        ("hr", "unit_1"): True,
        ("hr", "unit_2"): False,
    }
    for (role, subject), allowed in readers.items():
        assert reg.may_read(MEMBER, m, who(role, subject)) is allowed, (role, subject)
    reg.authorize(MEMBER, m.model_dump(), who("organizer", "comm_1"))
    reg.authorize(UNIT, {"id": "unit_1"}, who("admin", "admin"))
    # Another community's organizer may not know the member exists: 404, not 403.
    with pytest.raises(NotFound):
        reg.authorize(MEMBER, m.model_dump(), who("organizer", "comm_2"))
    for role, subject, kind in (
        ("organizer", "comm_1", UNIT),
        ("organizer", "comm_1", COMMUNITY),
        ("organizer", "comm_1", STATION_KIND),
        ("hr", "unit_1", MEMBER),
        ("member", "mem_1", MEMBER),
        ("member", "mem_2", MEMBER),
    ):
        with pytest.raises(Forbidden):
            reg.authorize(kind, m.model_dump(), who(role, subject))
    # Naming the member's new community in a request: the caller's input, refused with 403.
    with pytest.raises(Forbidden):
        reg.authorize(MEMBER, m.model_dump(), who("organizer", "comm_2"), hideable=False)


def test_authors_are_recorded_with_their_role() -> None:
    assert actor(who("organizer", "comm_1")) == "organizer:comm_1"
