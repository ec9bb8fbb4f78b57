"""services.safe_xlsx and the member import's XLSX reading: zip bombs and XML entities are
refused before (and, for entities, also inside) openpyxl; real sheets pass."""

from __future__ import annotations

import io
import zipfile

import pytest

from services.member_import import FileRejected, read_sheet, template_xlsx
from services.safe_xlsx import UnsafeXlsx, XlsxLimits, check_xlsx

SHEET = "xl/worksheets/sheet1.xml"


def _replace_part(xlsx: bytes, name: str, content: bytes) -> bytes:
    """The workbook with one part's content replaced (written deflated, as Excel does)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = content if info.filename == name else src.read(info)
            dst.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _sheet_with_rows(n: int) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["姓名", "手机号码", "工作单位", "居住社区", "网格", "报到日期"])
    for i in range(n):
        ws.append([f"党员{i}", f"139{i:08d}", "县财政局", "南城社区", "", "2022-03-15"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_a_real_workbook_passes_and_is_read() -> None:
    data = _sheet_with_rows(500)
    check_xlsx(data)
    rows = read_sheet(data)
    assert rows[0][0] == "姓名" and rows[500][0] == "党员499"
    check_xlsx(template_xlsx())


def test_a_zip_bomb_is_refused_by_its_declared_size_before_openpyxl() -> None:
    # 30 MB of one byte deflates to ~30 KB: a thousandfold (a real bomb is larger; the limit
    # is lowered here to keep the test quick, the import's own limits refuse it by its ratio).
    bomb = _replace_part(template_xlsx(), SHEET, b"<" + b"a" * (30 * 1024 * 1024))
    assert len(bomb) < 100 * 1024
    with pytest.raises(UnsafeXlsx) as exc:
        check_xlsx(bomb, XlsxLimits(max_part_bytes=20 * 1024 * 1024, max_ratio=1e9))
    assert exc.value.status == 413 and "20 MB" in str(exc.value)
    with pytest.raises(FileRejected) as rejected:
        read_sheet(bomb)
    assert rejected.value.status == 413 and rejected.value.code == "file_too_large"


def test_a_part_within_the_size_but_inflating_too_much_is_refused() -> None:
    bomb = _replace_part(template_xlsx(), SHEET, b" " * (20 * 1024 * 1024))
    with pytest.raises(UnsafeXlsx) as exc:
        check_xlsx(bomb)
    assert "压缩比" in str(exc.value)
    # The same part under a limit that allows the ratio passes this check.
    check_xlsx(bomb, XlsxLimits(max_ratio=100_000))


def test_many_parts_adding_up_are_refused() -> None:
    parts = io.BytesIO()
    with zipfile.ZipFile(parts, "w") as z:
        for i in range(5):
            z.writestr(f"xl/media/p{i}.bin", b"x" * 1000, compress_type=zipfile.ZIP_STORED)
    with pytest.raises(UnsafeXlsx):
        check_xlsx(parts.getvalue(), XlsxLimits(max_total_bytes=4000))
    with pytest.raises(UnsafeXlsx):
        check_xlsx(parts.getvalue(), XlsxLimits(max_parts=4))
    check_xlsx(parts.getvalue(), XlsxLimits(max_total_bytes=5000, max_parts=5))


EXTERNAL_ENTITY = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<!DOCTYPE worksheet [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    b'<row r="1"><c r="A1" t="inlineStr"><is><t>&xxe;</t></is></c></row>'
    b"</sheetData></worksheet>"
)
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    b'<row r="1"><c r="A1" t="inlineStr"><is><t>&lol3;</t></is></c></row>'
    b"</sheetData></worksheet>"
)


@pytest.mark.parametrize("xml", [EXTERNAL_ENTITY, LAUGHS], ids=["external", "expansion"])
def test_a_sheet_declaring_entities_is_refused(xml: bytes) -> None:
    evil = _replace_part(template_xlsx(), SHEET, xml)
    with pytest.raises(UnsafeXlsx) as exc:
        check_xlsx(evil)
    assert exc.value.status == 422 and "DOCTYPE" in str(exc.value)
    with pytest.raises(FileRejected) as rejected:
        read_sheet(evil)
    assert rejected.value.status == 422 and rejected.value.code == "unsafe_file"


def test_behind_the_check_openpyxl_parses_with_defusedxml() -> None:
    """A DOCTYPE hidden past the prolog window still cannot expand: openpyxl reads through
    defusedxml, and the import answers 415 rather than resolving the entity."""
    import openpyxl

    assert openpyxl.DEFUSEDXML is True
    hidden = EXTERNAL_ENTITY.replace(b"\n", b"\n<!--" + b"x" * 8000 + b"-->\n", 1)
    evil = _replace_part(template_xlsx(), SHEET, hidden)
    check_xlsx(evil)  # past the 4 KB the check reads
    with pytest.raises(FileRejected) as rejected:
        read_sheet(evil)
    assert rejected.value.status == 415
    assert "passwd" not in rejected.value.message and "root:" not in rejected.value.message
