"""Tabular exports for offices: CSV (UTF-8 with BOM, which Excel in China opens correctly) and XLSX.

Both take an iterator of rows and produce bytes chunk by chunk, so a large unit's export never
sits in memory whole: CSV is written a batch of lines at a time; XLSX is written as its zip
entries are compressed, a batch of rows at a time (no temporary file).

The XLSX writer is our own, ~60 lines of the format's smallest valid form (one sheet, inline
strings, no styles): openpyxl's write-only mode took 1.2-1.9 s for the rows of a
10,000-member assessment, this takes ~0.1 s (bench/findings.md, section 4). Files are checked
by reading them back with openpyxl (tests/unit/test_exports.py), which the member import uses
anyway.
"""

from __future__ import annotations

import csv
import io
import math
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from services.text import shown

CSV_MEDIA = "text/csv; charset=utf-8"
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# A spreadsheet reads a cell that begins with one of these as a formula (=HYPERLINK(...),
# =cmd|' /C calc'!A0, +, -, @) or shifts it (tab, carriage return): a member's name typed as one
# would run on the HR officer's machine. Such text cells are written with a leading apostrophe,
# which Excel and WPS show as plain text (OWASP "CSV injection"). Numbers are written as they are.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        # Stored before the rule of services.text held: shown without control or text-direction
        # characters, like every page.
        value = shown(value)
        if value.startswith(_FORMULA_START):
            return "'" + value
    return value


def csv_chunks(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], lines_per_chunk: int = 500
) -> Iterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    buf.write("\ufeff")
    writer.writerow([csv_cell(h) for h in headers])
    for n, row in enumerate(rows, 1):
        writer.writerow([csv_cell(v) for v in row])
        if n % lines_per_chunk == 0:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode("utf-8")


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Target="xl/workbook.xml" Type="http://schemas.openxmlformats.org/'
    'officeDocument/2006/relationships/officeDocument"/></Relationships>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Target="worksheets/sheet1.xml" Type="http://schemas.openxmlformats'
    '.org/officeDocument/2006/relationships/worksheet"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
)
# The header row stays in view while an officer scrolls a unit of thousands (Excel and WPS
# both honour a frozen pane).
_FROZEN_HEADER = (
    '<sheetViews><sheetView workbookViewId="0">'
    '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
    "</sheetView></sheetViews>"
)
_SHEET_TAIL = b"</sheetData></worksheet>"
# Characters XML 1.0 cannot carry; a name pasted from elsewhere could hold one.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# Excel's rules for a sheet name: at most 31 characters, none of these.
_SHEET_NAME_ILLEGAL = re.compile(r"[\[\]:*?/\\]")


def _cell(v: Any) -> str:
    if v is None:
        return "<c/>"
    if isinstance(v, bool):
        return f'<c t="b"><v>{int(v)}</v></c>'
    if isinstance(v, int) or (isinstance(v, float) and math.isfinite(v)):
        return f"<c><v>{v!r}</v></c>"
    if isinstance(v, Decimal) and v.is_finite():
        return f"<c><v>{v}</v></c>"
    text = escape(_ILLEGAL_XML.sub("", shown(str(v))))
    return f'<c t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


class _Chunks:
    """A write-only file for zipfile that the generator empties as it goes (zipfile writes
    data descriptors when it cannot seek, so nothing is written twice)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.size = 0

    def write(self, b: bytes, /) -> int:
        self._parts.append(bytes(b))
        self.size += len(b)
        return len(b)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        self.size = 0
        return out


def _sheet_head(widths: Sequence[float] | None, freeze_header: bool) -> bytes:
    parts = [_SHEET_HEAD]
    if freeze_header:
        parts.append(_FROZEN_HEADER)
    if widths:
        # Widths in characters (a Chinese character is about two).
        parts.append("<cols>")
        parts.extend(
            f'<col min="{i}" max="{i}" width="{float(w):g}" customWidth="1"/>'
            for i, w in enumerate(widths, 1)
        )
        parts.append("</cols>")
    parts.append("<sheetData>")
    return "".join(parts).encode()


def xlsx_chunks(
    sheet_title: str,
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    chunk_size: int = 64 * 1024,
    rows_per_write: int = 500,
    *,
    widths: Sequence[float] | None = None,
    freeze_header: bool = False,
) -> Iterator[bytes]:
    """The sheet, optionally with column widths (characters, in column order) and the header
    row frozen."""
    name = escape(_SHEET_NAME_ILLEGAL.sub("_", sheet_title)[:31] or "Sheet1", {'"': "&quot;"})
    out = _Chunks()
    # Level 1: the sheet's XML is repetitive; higher levels cost several times the CPU for a
    # few percent less.
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("[Content_Types].xml", _CONTENT_TYPES)
        z.writestr("_rels/.rels", _ROOT_RELS)
        z.writestr("xl/workbook.xml", _WORKBOOK.format(name=name))
        z.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with z.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(_sheet_head(widths, freeze_header))
            batch = [f'<row r="1">{"".join(map(_cell, headers))}</row>']
            for n, row in enumerate(rows, 2):
                batch.append(f'<row r="{n}">{"".join(map(_cell, row))}</row>')
                if len(batch) >= rows_per_write:
                    sheet.write("".join(batch).encode())
                    batch.clear()
                    if out.size >= chunk_size:
                        yield out.take()
            sheet.write("".join(batch).encode())
            sheet.write(_SHEET_TAIL)
    yield out.take()
