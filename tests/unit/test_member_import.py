"""Reading member spreadsheets: formats, encodings, headers and dates, without any service."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta

import openpyxl
import pytest

from services.member_import import (
    REQUIRED_COLUMNS,
    TEMPLATE_COLUMNS,
    FileRejected,
    _parse_date,
    header_map,
    read_sheet,
    template_csv,
    template_xlsx,
)

HEADER = "姓名,手机号码,工作单位,居住社区,网格,报到日期"
ROW = "张伟,13800138000,县财政局,城关社区,第一网格,2022-03-15"


@pytest.mark.parametrize(
    "data",
    [
        f"{HEADER}\n{ROW}\n".encode(),
        b"\xef\xbb\xbf" + f"{HEADER}\r\n{ROW}\r\n".encode(),
        f"{HEADER}\r\n{ROW}\r\n".encode("gb18030"),
        f"{HEADER}\r\n{ROW}\r\n".replace(",", "\t").encode("utf-16"),
    ],
    ids=["utf-8", "utf-8 bom", "gb18030", "utf-16 tab"],
)
def test_text_files_in_every_encoding_read_the_same(data: bytes) -> None:
    rows = read_sheet(data)
    assert rows[0] == HEADER.split(",")
    assert rows[1] == ROW.split(",")


def test_xlsx_cells_become_text_as_a_person_typed_them() -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(HEADER.split(","))
    ws.append(["张伟", 13800138000, "县财政局", "城关社区", None, datetime(2022, 3, 15)])
    out = io.BytesIO()
    wb.save(out)
    rows = read_sheet(out.getvalue())
    assert rows[1] == ["张伟", "13800138000", "县财政局", "城关社区", "", "2022-03-15"]


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 422, "empty_file"),
        (b"  \r\n\r\n", 422, "empty_file"),
        (b",,,\r\n,,\r\n", 422, "empty_file"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", 415, "unsupported_file"),
        (b"%PDF-1.7 ...", 415, "unsupported_file"),
        (b"\x89PNG\r\n\x1a\n", 415, "unsupported_file"),
        (b"PK\x03\x04broken", 415, "unsupported_file"),
        (b"a\x00b\x01c", 415, "unsupported_file"),
    ],
)
def test_files_that_are_not_member_lists(data: bytes, status: int, code: str) -> None:
    with pytest.raises(FileRejected) as exc:
        read_sheet(data)
    assert (exc.value.status, exc.value.code) == (status, code)
    assert exc.value.message  # Chinese, for the clerk


def test_header_names_every_missing_column_and_accepts_common_aliases() -> None:
    cols = header_map(["序号", " 姓名 ", "手机号", "单位", "社区", "网格", "报到日期", "党支部"])
    assert cols["手机号码"] == 2 and cols["党支部"] == 7 and cols["姓名"] == 1
    with pytest.raises(FileRejected) as exc:
        header_map(["姓名", "电话"])
    missing = exc.value.message.split("缺少这些列：")[1].split("。")[0]
    assert missing.split("、") == ["手机号码", "工作单位", "居住社区", "网格", "报到日期"]
    with pytest.raises(FileRejected, match="两次"):
        header_map([*REQUIRED_COLUMNS, "姓名"])


def test_dates_are_yyyy_mm_dd_and_not_in_the_future() -> None:
    assert _parse_date("2022-03-15") == (date(2022, 3, 15), None)
    assert _parse_date("2022-3-5") == (date(2022, 3, 5), None)
    for bad in ("2022/03/15", "15.03.2022", "2022-02-30", "昨天"):
        d, msg = _parse_date(bad)
        assert d is None and msg, bad
    tomorrow = (datetime.now() + timedelta(days=2)).date().isoformat()
    assert _parse_date(tomorrow)[1] == "报到日期不能晚于今天"


def test_templates_carry_the_headers_the_import_expects() -> None:
    for data in (template_csv(), template_xlsx()):
        rows = read_sheet(data)
        assert tuple(rows[0][: len(TEMPLATE_COLUMNS)]) == TEMPLATE_COLUMNS
        header_map(rows[0])
