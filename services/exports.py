"""Tabular exports for offices: CSV (UTF-8 with BOM, which Excel in China opens correctly) and XLSX.

Both take an iterator of rows and produce bytes chunk by chunk, so a large unit's export never
sits in memory whole: CSV is written a batch of lines at a time; XLSX uses openpyxl's write-only
mode, which spools rows to a temporary file, then the file is streamed out.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from openpyxl import Workbook

CSV_MEDIA = "text/csv; charset=utf-8"
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def csv_chunks(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], lines_per_chunk: int = 500
) -> Iterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    buf.write("\ufeff")
    writer.writerow(headers)
    for n, row in enumerate(rows, 1):
        writer.writerow(["" if v is None else v for v in row])
        if n % lines_per_chunk == 0:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode("utf-8")


def xlsx_chunks(
    sheet_title: str,
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    chunk_size: int = 64 * 1024,
) -> Iterator[bytes]:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=sheet_title[:31])
    ws.append(list(headers))
    for row in rows:
        ws.append(list(row))
    with tempfile.TemporaryFile() as f:
        wb.save(f)
        f.seek(0)
        while chunk := f.read(chunk_size):
            yield chunk
