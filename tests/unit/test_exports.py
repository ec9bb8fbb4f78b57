from __future__ import annotations

import csv
import io

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
