"""Issue 15's personal-information rules for records: the national volunteer number (its shape,
never a citizen ID number, masked wherever it is shown), a wish's resident contact masked, and
list reads logged once per request."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from api.deps import PersonalDataLog
from services.events import Member
from services.privacy import (
    looks_like_citizen_id,
    mask_contact,
    mask_volunteer_no,
    masked_change,
    masked_member,
)
from services.registry import Invalid
from services.registry.validation import normalize_volunteer_no
from services.service_records import volunteer_no
from services.tokens import Principal
from tests.support.access_log import RecordingCtx


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("ZY2023-0001", "ZY2023-0001"),
        ("zy2023-0001", "ZY2023-0001"),
        (" 6211 2201 0003 ", "621122010003"),
        ("A1B2C3", "A1B2C3"),
        ("1" * 32, "1" * 32),
    ],
)
def test_a_volunteer_number_is_stored_upper_case_without_spaces(raw: str, stored: str) -> None:
    assert normalize_volunteer_no(raw) == stored


@pytest.mark.parametrize(
    "raw",
    ["", "abc12", "1" * 33, "-ZY20230001", "ZY2023--0001", "ZY2023-", "志愿者123456", "A_12345"],
)
def test_a_malformed_volunteer_number_is_refused(raw: str) -> None:
    with pytest.raises(Invalid) as exc:
        normalize_volunteer_no(raw)
    assert exc.value.code == "invalid_volunteer_no" and exc.value.status == 422


@pytest.mark.parametrize(
    "raw",
    [
        "110101199003071234",  # 18 digits with a birth date (1990-03-07)
        "62112219900307123X",  # the check character X
        "62112219900307123x",  # in lower case
        "621122 19900307 1234",  # with spaces
        "110101900307123",  # the old 15-digit number (1990-03-07)
    ],
)
def test_a_citizen_id_number_is_never_stored(raw: str) -> None:
    assert looks_like_citizen_id(raw.replace(" ", ""))
    with pytest.raises(Invalid) as exc:
        normalize_volunteer_no(raw)
    assert exc.value.code == "citizen_id_refused"


def test_eighteen_digits_without_a_birth_date_are_no_citizen_id() -> None:
    assert not looks_like_citizen_id("110101199013451234")  # month 13
    assert not looks_like_citizen_id("11010119900307123")  # 17 characters
    assert not looks_like_citizen_id("ZY0101199003071234")
    assert normalize_volunteer_no("110101199013451234") == "110101199013451234"


def test_a_volunteer_number_is_masked_in_the_middle() -> None:
    assert mask_volunteer_no("ZY2023-62112201") == "ZY20*******2201"
    assert mask_volunteer_no("A1B2C3") == "A1**C3"
    assert mask_volunteer_no("1234") == "****"
    assert mask_volunteer_no(None) is None and mask_volunteer_no("") is None


def test_a_record_prints_the_national_number_masked_else_the_member_id_masked() -> None:
    assert volunteer_no("mem_0123456789abcdef", "ZY2023-62112201") == "ZY20*******2201"
    assert volunteer_no("mem_0123456789abcdef") == "mem_0123********cdef"
    assert volunteer_no("mem_0123456789abcdef", None) == volunteer_no("mem_0123456789abcdef")


def _member(**kw: Any) -> Member:
    return Member(
        id="mem_1",
        version=1,
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        updated_by="admin",
        name="张三",
        unit_id="unit_1",
        community_id="comm_1",
        **kw,
    )


def test_a_member_record_shows_the_volunteer_number_masked() -> None:
    m = _member(phone="13812340001", volunteer_no="ZY2023-62112201")
    shown = masked_member(m)
    assert (shown.phone, shown.volunteer_no) == ("138****0001", "ZY20*******2201")
    assert masked_member(_member(volunteer_no="ZY2023-62112201")).phone is None
    assert masked_member(_member(phone="13812340001")).volunteer_no is None
    assert m.volunteer_no == "ZY2023-62112201"
    assert masked_change("member", "volunteer_no", None, "ZY2023-62112201") == (
        None,
        "ZY20*******2201",
    )


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("13912345678", "139****5678"),
        ("电话 139-1234-5678，南关小区3号楼", "电话 139****5678，南关小区3号楼"),
        ("+86 139 1234 5678", "139****5678"),
        ("8613912345678", "139****5678"),
        ("0932-6621234", "093****1234"),
        ("南关小区3号楼2单元", "南关小区3号楼2单元"),
        ("", ""),
        ("张大爷 13912345678 / 李阿姨 13812340001", "张大爷 139****5678 / 李阿姨 138****0001"),
    ],
)
def test_phones_in_a_contact_are_masked_and_the_rest_kept(raw: str, shown: str) -> None:
    assert mask_contact(raw) == shown
    for run in ("13912345678", "66212345", "6621234"):
        assert run not in (mask_contact(raw) or "")


def test_a_list_is_one_entry_naming_everyone_listed_but_the_caller() -> None:
    ctx = RecordingCtx()
    org = PersonalDataLog(ctx, Principal("organizer", "comm_1", "t", 1), "GET /v1/members")  # type: ignore[arg-type]
    org.record_list(["mem_1", "mem_2", "mem_1"], "members")
    org.record_list([], "members")  # an empty page names nobody: nothing to log
    me = PersonalDataLog(ctx, Principal("member", "mem_1", "t", 1), "GET /v1/members")  # type: ignore[arg-type]
    me.record_list(["mem_1"], "members")  # a member listing themself
    kiosk = PersonalDataLog.of_station(ctx, "st_1", "GET /v1/stations/{station_id}/kiosk/members")  # type: ignore[arg-type]
    kiosk.record_list(["mem_3"], "search")
    org.record_about("wish_contact", "wish wish_1")
    sent = [(k, e.kind, e.actor_role, e.member_ids, e.detail) for _, k, e in ctx.publisher.sent]
    assert sent == [
        ("comm_1", "member_list", "organizer", ["mem_1", "mem_2"], "members"),
        ("st_1", "member_list", "station", ["mem_3"], "search"),
        ("comm_1", "wish_contact", "organizer", [], "wish wish_1"),
    ]
