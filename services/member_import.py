"""Member lists as HR offices hand them over: CSV or XLSX with Chinese headers, into the registry.

Everything is validated before anything is written. Every rejected row is reported with the row
number a person sees in the spreadsheet (the header is row 1) and a message in Chinese, because
HR staff read them. By default one bad row stops the whole file (nothing written); `partial`
writes the good rows. A member is matched by phone number, so importing the same file twice
creates nobody twice: the second time changes only what differs. Blank optional cells (网格,
报到日期, 党支部) leave a known member's value alone, so a unit's list without grids does not
wipe the grids a community assigned.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from xml.etree.ElementTree import ParseError

from services import access
from services.access import Facts
from services.events import Grid, Member, RegistryRecord
from services.registry import (
    CHINA_TZ,
    COMMUNITY,
    GRID,
    MEMBER,
    NAME_MAX,
    UNIT,
    Change,
    Registry,
    facts_of,
    new_id,
    normalize_phone,
)
from services.safe_xlsx import UnsafeXlsx, check_xlsx
from services.text import describe, first_unsafe
from services.tokens import Principal

NAME, PHONE, UNIT_COL, COMMUNITY_COL, GRID_COL, REPORTED = (
    "姓名",
    "手机号码",
    "工作单位",
    "居住社区",
    "网格",
    "报到日期",
)
BRANCH = "党支部"
REQUIRED_COLUMNS = (NAME, PHONE, UNIT_COL, COMMUNITY_COL, GRID_COL, REPORTED)
# Accepted as well, not required: the template carries it last.
OPTIONAL_COLUMNS = (BRANCH,)
TEMPLATE_COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
# Headers offices write instead of ours.
ALIASES = {
    "手机号": PHONE,
    "手机": PHONE,
    "联系电话": PHONE,
    "单位": UNIT_COL,
    "社区": COMMUNITY_COL,
    "所在社区": COMMUNITY_COL,
    "所在网格": GRID_COL,
    "报到时间": REPORTED,
    "所在党支部": BRANCH,
}
MAX_ROWS = 50_000

_XLSX_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls (and .doc)
_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_CONTROLS_IN_TEXT = 16


class FileRejected(Exception):
    """The file as a whole cannot be imported; `message` is Chinese, for the person uploading."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    message: str


@dataclass
class ImportReport:
    accepted: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    written: bool = False
    dry_run: bool = False


# ---- reading the file ---------------------------------------------------------------------


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.date().isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float) and v.is_integer():
        # A phone typed into a number cell comes back as 13800138000.0.
        return str(int(v))
    return str(v).strip()


def _read_xlsx(data: bytes) -> list[list[str]]:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    unreadable = (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError)
    try:
        check_xlsx(data)
    except UnsafeXlsx as exc:
        code = "file_too_large" if exc.status == 413 else "unsafe_file"
        raise FileRejected(exc.status, code, f"文件未通过安全检查：{exc}") from exc
    except unreadable as exc:
        raise _not_xlsx(exc) from exc
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (*unreadable, ParseError) as exc:
        raise _not_xlsx(exc) from exc
    try:
        if not wb.worksheets:
            raise FileRejected(422, "empty_file", "表格中没有工作表")
        ws = wb.worksheets[0]
        rows: list[list[str]] = []
        # read_only parses the sheet while iterating: what defusedxml refuses surfaces here.
        try:
            for values in ws.iter_rows(values_only=True):
                rows.append([_cell(v) for v in values])
                if len(rows) > MAX_ROWS + 1:
                    break
        except (*unreadable, ParseError) as exc:
            raise _not_xlsx(exc) from exc
        return rows
    finally:
        wb.close()


def _not_xlsx(exc: Exception) -> FileRejected:
    return FileRejected(
        415,
        "unsupported_file",
        f"无法读取该文件：它不是有效的 XLSX 表格（{type(exc).__name__}）",
    )


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # Excel's "Unicode text" export.
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        # GB18030 is a superset of GBK and GB2312: what Excel on a Chinese Windows writes.
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise FileRejected(
            415,
            "unsupported_file",
            "无法识别文件编码：请使用 UTF-8 或 GB18030（GBK）编码的 CSV，或 XLSX",
        ) from exc


def _read_text(data: bytes) -> list[list[str]]:
    try:
        text = _decode(data)
    except UnicodeDecodeError as exc:
        raise FileRejected(415, "unsupported_file", "文件编码有误，无法读取") from exc
    head = text[:65536]
    # A binary file: NUL bytes, or control characters by the dozen. A few in a text file are
    # typed (or pasted) into cells, and each row reports its own (services.text).
    if "\x00" in head or len(_CONTROL.findall(head)) > _CONTROLS_IN_TEXT:
        raise FileRejected(
            415, "unsupported_file", "这不是表格文件：请上传 CSV 或 XLSX 格式的党员名单"
        )
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    try:
        rows = []
        for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            rows.append([c.strip() for c in r])
            if len(rows) > MAX_ROWS + 1:
                break
        return rows
    except csv.Error as exc:
        raise FileRejected(415, "unsupported_file", f"CSV 格式有误：{exc}") from exc


def read_sheet(data: bytes) -> list[list[str]]:
    """The file's rows as text cells, whatever its format and encoding; row 1 is the header."""
    if not data.strip():
        raise FileRejected(422, "empty_file", "文件是空的")
    if data.startswith(_XLSX_MAGIC):
        rows = _read_xlsx(data)
    elif data.startswith(_OLE_MAGIC):
        raise FileRejected(
            415,
            "unsupported_file",
            "不支持旧版 Excel（.xls）文件：请在 Excel 中另存为 .xlsx 或 CSV 后再上传",
        )
    elif data.startswith((b"%PDF", b"\x89PNG", b"\xff\xd8\xff", b"GIF8")):
        raise FileRejected(
            415, "unsupported_file", "这不是表格文件：请上传 CSV 或 XLSX 格式的党员名单"
        )
    else:
        rows = _read_text(data)
    if not any(any(c for c in r) for r in rows):
        raise FileRejected(422, "empty_file", "文件是空的")
    return rows


def header_map(
    header: list[str],
    required: tuple[str, ...] = REQUIRED_COLUMNS,
    optional: tuple[str, ...] = OPTIONAL_COLUMNS,
    aliases: dict[str, str] | None = None,
) -> dict[str, int]:
    """Column name -> index; raises naming every required column that is missing. Other sheets
    (a unit's roster) name their own columns and aliases."""
    known = (*required, *optional)
    aliases = ALIASES if aliases is None else aliases
    found: dict[str, int] = {}
    for i, raw in enumerate(header):
        name = re.sub(r"\s+", "", raw.replace("\ufeff", "").replace("*", ""))
        name = aliases.get(name, name)
        if name in known:
            if name in found:
                raise FileRejected(422, "bad_header", f"表头中“{name}”列出现了两次")
            found[name] = i
    missing = [c for c in required if c not in found]
    if missing:
        raise FileRejected(
            422,
            "bad_header",
            f"表头（第 1 行）缺少这些列：{'、'.join(missing)}。应有的列：{'、'.join(required)}",
        )
    return found


# ---- validating and writing ----------------------------------------------------------------


@dataclass
class _Lookups:
    units: dict[str, list[str]]
    communities: dict[str, list[str]]
    community_names: dict[str, str]
    grids: dict[tuple[str, str], list[str]]


def _by_name(records: list[RegistryRecord]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in records:
        out.setdefault(getattr(r, "name", ""), []).append(r.id)
    return out


def _load_lookups(registry: Registry) -> _Lookups:
    communities = registry.all_of(COMMUNITY.name)
    grids: dict[tuple[str, str], list[str]] = {}
    for g in registry.all_of(GRID.name):
        assert isinstance(g, Grid)
        grids.setdefault((g.community_id, g.name), []).append(g.id)
    return _Lookups(
        units=_by_name(registry.all_of(UNIT.name)),
        communities=_by_name(communities),
        community_names={c.id: getattr(c, "name", "") for c in communities},
        grids=grids,
    )


def _one(ids: list[str] | None, what: str, name: str) -> tuple[str | None, str | None]:
    if not ids:
        return None, f"找不到名为“{name}”的{what}，请先在系统中建立"
    if len(ids) > 1:
        return None, f"系统中有 {len(ids)} 个名为“{name}”的{what}，无法区分，请联系管理员"
    return ids[0], None


def _parse_date(value: str) -> tuple[date | None, str | None]:
    m = _DATE.match(value)
    if not m:
        return None, f"“{value}”不是 YYYY-MM-DD 格式的日期"
    try:
        d = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None, f"“{value}”不是有效的日期"
    if d > datetime.now(CHINA_TZ).date():
        return None, "报到日期不能晚于今天"
    if d.year < 1949:
        return None, "报到日期早于 1949 年，请检查"
    return d, None


def import_members(
    registry: Registry,
    data: bytes,
    p: Principal,
    dry_run: bool = False,
    partial: bool = False,
) -> ImportReport:
    """Validates every row, then writes (all good rows, or none if any is bad and not partial)."""
    if not access.may_ever_change(p, "import"):
        # The route gates first; this keeps any other caller of the core to the same rule.
        raise FileRejected(403, "forbidden", "只有管理员和社区管理员可以导入党员名单")
    rows = read_sheet(data)
    cols = header_map(rows[0])
    body = [(i + 1, r) for i, r in enumerate(rows) if i > 0 and any(c for c in r)]
    if not body:
        raise FileRejected(422, "no_rows", "文件只有表头，没有党员数据")
    if len(body) > MAX_ROWS:
        raise FileRejected(
            413, "too_many_rows", f"一次最多导入 {MAX_ROWS} 行，请把名单拆成几个文件"
        )

    report = ImportReport(dry_run=dry_run)
    # Under the registry's write lock: two imports of one file at once must not both create.
    with registry.write_lock:
        look = _load_lookups(registry)

        def get(r: list[str], col: str) -> str:
            i = cols.get(col)
            return r[i].strip() if i is not None and i < len(r) else ""

        phones_in_file: dict[str, int] = {}
        parsed: list[tuple[int, dict[str, Any]]] = []
        for rownum, r in body:
            errs: list[RowError] = []

            def bad(col: str, msg: str, rownum: int = rownum, errs: list[RowError] = errs) -> None:
                errs.append(RowError(rownum, col, msg))

            # Checked before anything else of the row, so no message below repeats such a cell.
            for col in TEMPLATE_COLUMNS:
                value = get(r, col)
                at = first_unsafe(value)
                if at is not None:
                    bad(col, f"含有不可见的控制字符（{describe(value[at])}），请删除后重新上传")
            if errs:
                report.errors.extend(errs)
                report.rejected += 1
                continue

            name = get(r, NAME)
            if not name:
                bad(NAME, "姓名不能为空")
            elif len(name) > NAME_MAX:
                bad(NAME, f"姓名过长（最多 {NAME_MAX} 个字）")
            raw_phone = get(r, PHONE)
            phone = normalize_phone(raw_phone) if raw_phone else None
            if not raw_phone:
                bad(PHONE, "手机号码不能为空")
            elif phone is None:
                bad(PHONE, f"“{raw_phone}”不是 11 位大陆手机号码")
            elif phone in phones_in_file:
                bad(PHONE, f"与第 {phones_in_file[phone]} 行的手机号码重复")
            else:
                phones_in_file[phone] = rownum
            unit_name = get(r, UNIT_COL)
            unit_id = None
            if not unit_name:
                bad(UNIT_COL, "工作单位不能为空")
            else:
                unit_id, msg = _one(look.units.get(unit_name), "单位", unit_name)
                if msg:
                    bad(UNIT_COL, msg)
            comm_name = get(r, COMMUNITY_COL)
            community_id = None
            if not comm_name:
                bad(COMMUNITY_COL, "居住社区不能为空")
            else:
                community_id, msg = _one(look.communities.get(comm_name), "社区", comm_name)
                if msg:
                    bad(COMMUNITY_COL, msg)
                elif not access.allows(p, "import", "change", Facts(community_id=community_id)):
                    bad(COMMUNITY_COL, f"您只能导入本社区的党员，不能导入到“{comm_name}”")
                    community_id = None
            grid_name = get(r, GRID_COL)
            grid_id = None
            if grid_name and community_id is not None:
                grid_id, msg = _one(
                    look.grids.get((community_id, grid_name)),
                    f"网格（在“{comm_name}”中）",
                    grid_name,
                )
                if msg:
                    bad(GRID_COL, msg)
            reported_raw = get(r, REPORTED)
            reported = None
            if reported_raw:
                reported, msg = _parse_date(reported_raw)
                if msg:
                    bad(REPORTED, msg)
            branch = get(r, BRANCH)
            if len(branch) > NAME_MAX:
                bad(BRANCH, f"党支部名称过长（最多 {NAME_MAX} 个字）")
            if errs:
                report.errors.extend(errs)
                report.rejected += 1
                continue
            fields: dict[str, Any] = {
                "name": name,
                "phone": phone,
                "unit_id": unit_id,
                "community_id": community_id,
            }
            if grid_id is not None:
                fields["grid_id"] = grid_id
            if reported is not None:
                fields["reported_on"] = reported
            if branch:
                fields["party_branch"] = branch
            parsed.append((rownum, fields))

        existing = registry.members_by_phone(f["phone"] for _, f in parsed)
        changes: list[Change] = []
        for rownum, fields in parsed:
            before = existing.get(fields["phone"])
            if before is not None and not access.allows(
                p, "member", "change", facts_of(MEMBER, before.model_dump())
            ):
                # Moving a member between communities is the admin's call.
                report.errors.append(
                    RowError(
                        rownum,
                        PHONE,
                        "该手机号码已登记为其他社区的党员，不能由本社区导入；如需迁移请联系管理员",
                    )
                )
                report.rejected += 1
                continue
            if before is None:
                after = Member(id=new_id(MEMBER.prefix), **fields, **registry.stamp(None, p))
                changes.append(Change(MEMBER, None, after))
                report.created += 1
            else:
                merged = before.model_dump()
                if fields["community_id"] != before.community_id and "grid_id" not in fields:
                    merged["grid_id"] = None  # the old grid belongs to the old community
                merged.update(fields)
                candidate = Member.model_validate({**merged, **registry.stamp(before, p)})
                if candidate.model_dump(exclude={"version", "updated_at", "updated_by"}) == (
                    before.model_dump(exclude={"version", "updated_at", "updated_by"})
                ):
                    report.unchanged += 1
                else:
                    changes.append(Change(MEMBER, before, candidate))
                    report.updated += 1
            report.accepted += 1

        report.errors.sort(
            key=lambda e: (
                e.row,
                REQUIRED_COLUMNS.index(e.column) if e.column in REQUIRED_COLUMNS else 99,
            )
        )
        if dry_run or (report.rejected and not partial):
            return report
        registry.commit(changes)
        report.written = True
    return report


# ---- the template --------------------------------------------------------------------------


def csv_template(columns: tuple[str, ...] | list[str]) -> bytes:
    """A spreadsheet import's CSV template: the header row alone."""
    # With a BOM, Excel on Windows opens the file as UTF-8 instead of guessing GBK.
    return ("\ufeff" + ",".join(columns) + "\r\n").encode("utf-8")


def xlsx_template(
    columns: tuple[str, ...] | list[str], title: str, widths: list[int], notes: tuple[str, ...]
) -> bytes:
    """A spreadsheet import's XLSX template: the bold header, text columns of these widths, and
    a sheet of filling notes."""
    import openpyxl
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title
    ws.append(list(columns))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for i, w in enumerate(widths, start=1):
        col = get_column_letter(i)
        ws.column_dimensions[col].width = w
        # Text columns: Excel would otherwise turn a phone number into 1.38E+10.
        ws.column_dimensions[col].number_format = "@"
    ws.freeze_panes = "A2"
    sheet = wb.create_sheet("填写说明")
    for line in notes:
        sheet.append([line])
    sheet.column_dimensions["A"].width = 90
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def template_csv() -> bytes:
    return csv_template(TEMPLATE_COLUMNS)


def template_xlsx() -> bytes:
    return xlsx_template(
        TEMPLATE_COLUMNS,
        "党员名单",
        [12, 16, 24, 16, 16, 14, 24],
        (
            "每行一名党员；第 1 行是表头，请勿修改。",
            "姓名、手机号码、工作单位、居住社区为必填。",
            "手机号码：11 位大陆手机号；同一手机号码再次导入时更新该党员的信息，不会重复建档。",
            "工作单位、居住社区、网格：填写系统中已有的名称（网格须属于所填的居住社区）。",
            "报到日期：格式 YYYY-MM-DD，例如 2022-03-15；可留空。",
            "网格、报到日期、党支部留空时，已登记党员的原有信息保持不变。",
        ),
    )
