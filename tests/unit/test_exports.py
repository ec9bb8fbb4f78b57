from __future__ import annotations

import csv
import io
from decimal import Decimal

from openpyxl import load_workbook

from services.exports import csv_chunks, xlsx_chunks

HEADERS = ["姓名", "服务时长（小时）", "评价"]
ROWS = [["张伟", 12.5, "优秀"], ["李娜", 0.0, None]]


def test_csv_has_bom_chinese_headers_and_every_row() -> None:
    data = b"".join(csv_chunks(HEADERS, iter(ROWS * 600), lines_per_chunk=100))
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == HEADERS
    assert len(rows) == 1 + 1200
    assert rows[1] == ["张伟", "12.5", "优秀"] and rows[2] == ["李娜", "0.0", ""]


def test_csv_streams_in_chunks() -> None:
    chunks = list(csv_chunks(HEADERS, iter(ROWS * 600), lines_per_chunk=100))
    assert len(chunks) > 10


def test_xlsx_opens_with_the_same_cells() -> None:
    data = b"".join(xlsx_chunks("2026年度考核", HEADERS, iter(ROWS), chunk_size=1024))
    ws = load_workbook(io.BytesIO(data), read_only=True).active
    assert ws is not None
    # Read-only mode drops trailing empty cells; pad rows back to the header's width.
    values = [list(r) + [None] * (len(HEADERS) - len(r)) for r in ws.iter_rows(values_only=True)]
    assert values == [HEADERS, ["张伟", 12.5, "优秀"], ["李娜", 0, None]]


def test_xlsx_carries_what_a_member_list_can_hold() -> None:
    rows = [
        ["A&B <社区>", True, Decimal("3.25"), float("nan"), "控制\x07字符", "  两端空格  "],
        [None, False, 0, -1.5e-7, 12345678901, ""],
    ]
    data = b"".join(xlsx_chunks("2026: [年度]/考核*?" + "长" * 40, HEADERS * 2, iter(rows)))
    wb = load_workbook(io.BytesIO(data), read_only=True)
    (title,) = wb.sheetnames
    assert len(title) <= 31 and not set(title) & set("[]:*?/\\")
    got = [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
    assert got[0] == HEADERS * 2
    assert got[1] == ["A&B <社区>", True, 3.25, "nan", "控制字符", "  两端空格  "]
    assert got[2][:5] == [None, False, 0, -1.5e-7, 12345678901]


def test_xlsx_streams_a_large_export_in_chunks_with_every_row() -> None:
    rows = ([f"mem_{i:06d}", f"成员{i}", i * 0.5] for i in range(20_000))
    chunks = list(xlsx_chunks("考核", HEADERS, rows, chunk_size=64 * 1024))
    assert len(chunks) >= 3  # parts leave while later rows are still being written
    ws = load_workbook(io.BytesIO(b"".join(chunks)), read_only=True).worksheets[0]
    values = list(ws.iter_rows(values_only=True))
    assert len(values) == 20_001
    assert list(values[-1]) == ["mem_019999", "成员19999", 9999.5]


def test_csv_cells_that_a_spreadsheet_would_run_are_written_as_text() -> None:
    # Names a member could type to attack the HR officer who opens the assessment in Excel.
    attacks = [
        '=HYPERLINK("http://x","点我")',
        "=cmd|' /C calc'!A0",
        "+1+1",
        "-2+3",
        "@SUM(A1)",
        "\t=1",
        "\r=1",
    ]
    data = b"".join(csv_chunks(["姓名", "时长"], [[a, -3.5] for a in attacks]))
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert [r[0] for r in rows[1:]] == ["'" + a for a in attacks]
    # Numbers stay numbers (a negative figure is not text to neutralise).
    assert {r[1] for r in rows[1:]} == {"-3.5"}
    # Ordinary text is left alone, also when the sign is not at the start.
    plain = b"".join(csv_chunks(["姓名"], [["张=伟"], ["李-娜"]])).decode("utf-8-sig")
    assert "'" not in plain


def test_xlsx_widths_and_frozen_header() -> None:
    data = b"".join(
        xlsx_chunks("名单", HEADERS, iter(ROWS), widths=[10, 18.5, 6], freeze_header=True)
    )
    ws = load_workbook(io.BytesIO(data)).active
    assert ws is not None
    assert ws.freeze_panes == "A2"
    assert [ws.column_dimensions[c].width for c in "ABC"] == [10, 18.5, 6]
    assert next(list(r) for r in ws.iter_rows(values_only=True)) == HEADERS
    # Without them, the sheet is as before: nothing frozen.
    plain = load_workbook(io.BytesIO(b"".join(xlsx_chunks("名单", HEADERS, iter(ROWS))))).active
    assert plain is not None and plain.freeze_panes is None
