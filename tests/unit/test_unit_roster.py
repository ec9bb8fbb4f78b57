"""A unit's roster file (the member import's file rules), what an upload changes, and the lapsed
rule (`services.counting.lapsed`)."""

from __future__ import annotations

import io
from datetime import date

import openpyxl
import pytest

from services.counting import lapsed, lapsed_cutoff
from services.member_import import FileRejected
from services.unit_roster import (
    RosterLine,
    parse_roster,
    plan_upload,
    template_csv,
    template_xlsx,
)

CSV = "姓名,手机号码,党支部,职务\n张三,13800000001,机关第一党支部,科员\n李四,138 0000 0002,机关第二党支部,\n"


def test_csv_utf8_and_gb18030_read_the_same() -> None:
    a, ra = parse_roster(CSV.encode("utf-8"))
    b, rb = parse_roster(CSV.encode("gb18030"))
    assert a == b
    assert ra.accepted == rb.accepted == 2 and ra.rejected == 0
    assert a[0] == RosterLine("13800000001", "张三", "机关第一党支部", "科员")
    # Spaces in a phone are what people type; the position is optional.
    assert a[1] == RosterLine("13800000002", "李四", "机关第二党支部", None)


def test_xlsx_with_aliases_and_number_cells() -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["姓名", "手机号", "所在党支部"])
    ws.append(["王五", 13800000003, "后勤党支部"])
    buf = io.BytesIO()
    wb.save(buf)
    lines, report = parse_roster(buf.getvalue())
    assert report.rejected == 0
    assert lines == [RosterLine("13800000003", "王五", "后勤党支部", None)]


def test_every_bad_row_is_named_with_its_row_and_column() -> None:
    data = (
        "姓名,手机号码,党支部\n"
        "张三,13800000001,一支部\n"
        ",12345,\n"
        "李四,13800000001,一支部\n"
        "王\u202e五,13800000004,一支部\n"
    ).encode()
    lines, report = parse_roster(data)
    assert [line.name for line in lines] == ["张三"]
    assert report.rejected == 3
    got = [(e.row, e.column) for e in report.errors]
    assert got == [(3, "姓名"), (3, "手机号码"), (3, "党支部"), (4, "手机号码"), (5, "姓名")]
    assert "第 2 行" in report.errors[3].message


def test_a_missing_column_rejects_the_file() -> None:
    with pytest.raises(FileRejected) as exc:
        parse_roster("姓名,手机号码\n张三,13800000001\n".encode())
    assert exc.value.code == "bad_header" and "党支部" in exc.value.message
    with pytest.raises(FileRejected) as empty:
        parse_roster("姓名,手机号码,党支部\n".encode())
    assert empty.value.code == "no_rows"
    with pytest.raises(FileRejected) as xls:
        parse_roster(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100)
    assert xls.value.status == 415


def test_templates_carry_the_headers() -> None:
    assert template_csv().decode("utf-8-sig").strip() == "姓名,手机号码,党支部,职务"
    wb = openpyxl.load_workbook(io.BytesIO(template_xlsx()))
    assert [c.value for c in wb.worksheets[0][1]] == ["姓名", "手机号码", "党支部", "职务"]


def test_an_upload_is_the_whole_roster() -> None:
    current = {
        "13800000001": RosterLine("13800000001", "张三", "一支部", None),
        "13800000002": RosterLine("13800000002", "李四", "一支部", None),
        "13800000009": RosterLine("13800000009", "赵九", "二支部", None),
    }
    lines, report = parse_roster(
        "姓名,手机号码,党支部\n张三,13800000001,一支部\n李四,13800000002,二支部\n"
        "钱七,13800000007,二支部\n".encode()
    )
    plan = plan_upload(lines, current, report)
    assert (report.added, report.updated, report.unchanged, report.removed) == (1, 1, 1, 1)
    assert {line.phone for line in plan.set} == {"13800000002", "13800000007"}
    assert [line.phone for line in plan.removed] == ["13800000009"]


def test_a_file_with_bad_rows_removes_nobody() -> None:
    current = {"13800000009": RosterLine("13800000009", "赵九", "二支部", None)}
    lines, report = parse_roster(
        "姓名,手机号码,党支部\n张三,13800000001,一支部\n李四,bad,一支部\n".encode()
    )
    plan = plan_upload(lines, current, report)
    assert report.rejected == 1 and plan.removed == [] and report.removed == 0
    assert [line.phone for line in plan.set] == ["13800000001"]


# Monday 30 Nov 2026: the four full weeks before this one began on Monday 2 Nov.
TODAY = date(2026, 11, 30)


def test_lapsed_cutoff_is_the_first_day_of_the_full_weeks_before_this_one() -> None:
    assert lapsed_cutoff(TODAY, 4) == date(2026, 11, 2)
    assert lapsed_cutoff(date(2026, 12, 6), 4) == date(2026, 11, 2)  # Sunday: same week
    assert lapsed_cutoff(TODAY, 1) == date(2026, 11, 23)


@pytest.mark.parametrize(
    ("reported_on", "last_service", "expected"),
    [
        (None, None, False),  # not reported: unreported, not lapsed
        (date(2026, 1, 5), None, True),  # reported, never served
        (date(2026, 1, 5), date(2026, 11, 1), True),  # the day before the four weeks
        (date(2026, 1, 5), date(2026, 11, 2), False),  # served in the first of them
        (date(2026, 1, 5), date(2026, 11, 30), False),  # served this week
        (date(2026, 11, 2), None, True),  # reported on the cutoff: had all four weeks
        (date(2026, 11, 3), None, False),  # reported later: not had the weeks yet
    ],
)
def test_lapsed(reported_on: date | None, last_service: date | None, expected: bool) -> None:
    assert lapsed(reported_on, last_service, lapsed_cutoff(TODAY, 4)) is expected


def test_the_demo_rosters_list_every_member_and_some_not_yet_reported() -> None:
    from services.demo.county import generate, unit_rosters

    county = generate()
    rosters = unit_rosters(county)
    assert set(rosters) == {u.key for u in county.units}
    phones = {m.phone for m in county.members}
    listed: set[str] = set()
    extra = 0
    for data in rosters.values():
        lines, report = parse_roster(data)
        assert report.rejected == 0, report.errors[:3]
        listed |= {line.phone for line in lines}
        extra += sum(line.phone not in phones for line in lines)
    assert phones <= listed
    # About one in twelve more, at least one per unit: the demo's 未报到.
    assert len(county.units) <= extra <= len(county.members) // 6
    assert unit_rosters(county) == rosters  # deterministic: a re-run uploads the same files
