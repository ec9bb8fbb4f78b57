"""Personal information care's rules: one masking, the access log's event and row, retention."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.deps import PersonalDataLog
from services import topics
from services.events import Member, PersonalDataRead, Unit, parse_event
from services.privacy import (
    first_kept_year,
    log_read,
    mask_phone,
    masked_change,
    masked_member,
    personal_data_read,
    retained_tables,
    ttl_statement,
)
from services.processors import process
from services.tokens import Principal
from tests.support.access_log import RecordingCtx, RecordingPublisher


def test_a_phone_is_masked_to_its_first_three_and_last_four_digits() -> None:
    assert mask_phone("13800000004") == "138****0004"
    assert mask_phone(" 13912345678 ") == "139****5678"
    assert mask_phone("12345") == "*****"
    assert mask_phone(None) is None and mask_phone("") is None


def _member(phone: str | None) -> Member:
    return Member(
        id="mem_1",
        version=1,
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        updated_by="admin",
        name="张三",
        unit_id="unit_1",
        community_id="comm_1",
        phone=phone,
    )


def test_a_member_record_is_shown_with_its_phone_masked_and_nothing_else_changed() -> None:
    m = _member("13812340001")
    shown = masked_member(m)
    assert shown.phone == "138****0001"
    assert shown.model_dump(exclude={"phone"}) == m.model_dump(exclude={"phone"})
    assert m.phone == "13812340001"  # the record itself is untouched
    assert masked_member(_member(None)).phone is None
    unit = Unit(
        id="unit_1",
        version=1,
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        updated_by="admin",
        name="县局",
    )
    assert masked_member(unit) is unit


def test_history_masks_a_members_phone_only() -> None:
    assert masked_change("member", "phone", "13812340001", "13912345678") == (
        "138****0001",
        "139****5678",
    )
    assert masked_change("member", "phone", None, "13912345678") == (None, "139****5678")
    assert masked_change("member", "name", "张三", "李四") == ("张三", "李四")
    # A community's phone is its office's, given to members to call: shown as it is.
    assert masked_change("community", "phone", "0932-6621234", None) == ("0932-6621234", None)


def test_a_read_becomes_an_access_log_row_through_the_sink_route() -> None:
    event = personal_data_read(
        "phones_export", "organizer", "comm_1", ["mem_1", "mem_2"], "GET /x", "not served"
    )
    again = parse_event(event.to_bytes())
    assert isinstance(again, PersonalDataRead) and again == event
    route, row = process(topics.ACCESS_LOG.name, event.to_bytes())
    assert route.table == "access_log"
    assert dict(zip(route.columns, row, strict=True)) == {
        "event_id": event.event_id,
        "kind": "phones_export",
        "actor_role": "organizer",
        "actor_id": "comm_1",
        "member_ids": ["mem_1", "mem_2"],
        "route": "GET /x",
        "detail": "not served",
        "at": event.occurred_at,
    }
    # Two reads are two entries, even of the same thing by the same caller.
    other = personal_data_read("phones_export", "organizer", "comm_1", ["mem_1"], "GET /x")
    assert other.event_id != event.event_id


def test_the_request_log_names_the_caller_and_route_and_skips_a_members_own_record() -> None:
    ctx = RecordingCtx()
    org = PersonalDataLog(ctx, Principal("organizer", "comm_1", "t", 1), "GET /v1/m/{id}")  # type: ignore[arg-type]
    org.record("phone_reveal", ["mem_1"])
    org.record("phones_export", [])  # an empty file lists nobody: nothing to log
    org.record_unless_own("member_record", "mem_1")
    me = PersonalDataLog(ctx, Principal("member", "mem_1", "t", 1), "GET /v1/m/{id}")  # type: ignore[arg-type]
    me.record_unless_own("member_record", "mem_1")
    sent = ctx.publisher.sent
    assert [(t, k, e.kind, e.actor_role, e.member_ids, e.route) for t, k, e in sent] == [
        ("access-log", "comm_1", "phone_reveal", "organizer", ["mem_1"], "GET /v1/m/{id}"),
        ("access-log", "comm_1", "member_record", "organizer", ["mem_1"], "GET /v1/m/{id}"),
    ]


def test_log_read_publishes_to_the_access_log_topic_keyed_by_the_reader() -> None:
    pub = RecordingPublisher()
    event = personal_data_read("phone_reveal", "admin", "admin", ["mem_9"], "GET /p")
    log_read(pub, event)  # type: ignore[arg-type]
    assert pub.sent == [("access-log", "admin", event)]


def test_retention_never_touches_what_a_kept_years_assessment_or_a_record_needs() -> None:
    tables = {r.table: r.years for r in retained_tables(4, 3)}
    assert tables == {
        "checkins": 4,
        "notifications": 4,
        "notification_deliveries": 4,
        "access_log": 3,
    }
    for kept in ("sessions", "member_weeks", "unit_member_weeks", "feedback", "wishes"):
        assert kept not in tables
        assert "service_records" not in tables and "registry_history" not in tables


@pytest.mark.parametrize(
    ("years", "sql"),
    [
        (
            4,
            "ALTER TABLE checkins MODIFY TTL toStartOfYear(toTimeZone(scanned_at, "
            "'Asia/Shanghai')) + toIntervalYear(4)",
        ),
        (0, "ALTER TABLE checkins REMOVE TTL"),
    ],
)
def test_a_ttl_deletes_a_year_of_scans_together_in_local_years(years: int, sql: str) -> None:
    r = next(r for r in retained_tables(years, 3) if r.table == "checkins")
    assert ttl_statement(r) == sql


def test_the_first_kept_year() -> None:
    # 4 years in 2026: 2023, 2024, 2025 and 2026 are kept; 2022 was deleted on 2026-01-01.
    assert first_kept_year(2026, 4) == 2023
    assert first_kept_year(2026, 1) == 2026
    assert first_kept_year(2026, 0) is None
