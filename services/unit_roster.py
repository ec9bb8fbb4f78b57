"""A unit's roster of its in-service party members (在职党员名单), as its HR office hands it over.

The same file rules as the member import (`services.member_import`: CSV in UTF-8, GB18030 or
UTF-16, or a checked XLSX; the header is row 1; every bad row reported with its row number and a
Chinese message; nothing written while any row is bad unless `partial`; a dry run writes
nothing). An upload is the unit's whole roster: a phone the roster listed before and the new file
does not is marked as no longer listed, except when rows were rejected (a broken file says
nothing about who left). Lines are matched to registered members by phone, when read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.member_import import (
    FileRejected,
    RowError,
    csv_template,
    header_map,
    read_sheet,
    xlsx_template,
)
from services.registry import NAME_MAX, normalize_phone
from services.text import describe, first_unsafe

NAME, PHONE, BRANCH, POSITION = "姓名", "手机号码", "党支部", "职务"
REQUIRED_COLUMNS = (NAME, PHONE, BRANCH)
OPTIONAL_COLUMNS = (POSITION,)
TEMPLATE_COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
ALIASES = {
    "手机号": PHONE,
    "手机": PHONE,
    "联系电话": PHONE,
    "所在党支部": BRANCH,
    "党组织": BRANCH,
    "现任职务": POSITION,
}
MAX_ROWS = 50_000


@dataclass(frozen=True)
class RosterLine:
    phone: str
    name: str
    party_branch: str
    position: str | None = None


@dataclass
class RosterReport:
    accepted: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    written: bool = False
    dry_run: bool = False


def parse_roster(data: bytes) -> tuple[list[RosterLine], RosterReport]:
    """Every row validated: the good lines and a report counting and naming the bad ones."""
    rows = read_sheet(data)
    cols = header_map(rows[0], REQUIRED_COLUMNS, OPTIONAL_COLUMNS, ALIASES)
    body = [(i + 1, r) for i, r in enumerate(rows) if i > 0 and any(c for c in r)]
    if not body:
        raise FileRejected(422, "no_rows", "文件只有表头，没有党员数据")
    if len(body) > MAX_ROWS:
        raise FileRejected(
            413, "too_many_rows", f"一次最多导入 {MAX_ROWS} 行，请把名单拆成几个文件"
        )

    def get(r: list[str], col: str) -> str:
        i = cols.get(col)
        return r[i].strip() if i is not None and i < len(r) else ""

    report = RosterReport()
    lines: list[RosterLine] = []
    phones: dict[str, int] = {}
    for rownum, r in body:
        errs: list[RowError] = []
        for col in TEMPLATE_COLUMNS:
            value = get(r, col)
            at = first_unsafe(value)
            if at is not None:
                errs.append(
                    RowError(
                        rownum,
                        col,
                        f"含有不可见的控制字符（{describe(value[at])}），请删除后重新上传",
                    )
                )
        if not errs:
            name, raw_phone = get(r, NAME), get(r, PHONE)
            branch, position = get(r, BRANCH), get(r, POSITION)
            if not name:
                errs.append(RowError(rownum, NAME, "姓名不能为空"))
            elif len(name) > NAME_MAX:
                errs.append(RowError(rownum, NAME, f"姓名过长（最多 {NAME_MAX} 个字）"))
            phone = normalize_phone(raw_phone) if raw_phone else None
            if not raw_phone:
                errs.append(RowError(rownum, PHONE, "手机号码不能为空"))
            elif phone is None:
                errs.append(RowError(rownum, PHONE, f"“{raw_phone}”不是 11 位大陆手机号码"))
            elif phone in phones:
                errs.append(RowError(rownum, PHONE, f"与第 {phones[phone]} 行的手机号码重复"))
            else:
                phones[phone] = rownum
            if not branch:
                errs.append(RowError(rownum, BRANCH, "党支部不能为空"))
            elif len(branch) > NAME_MAX:
                errs.append(RowError(rownum, BRANCH, f"党支部名称过长（最多 {NAME_MAX} 个字）"))
            if len(position) > NAME_MAX:
                errs.append(RowError(rownum, POSITION, f"职务过长（最多 {NAME_MAX} 个字）"))
            if not errs and phone is not None:
                lines.append(RosterLine(phone, name, branch, position or None))
                report.accepted += 1
                continue
        report.errors.extend(errs)
        report.rejected += 1
    report.errors.sort(key=lambda e: (e.row, TEMPLATE_COLUMNS.index(e.column)))
    return lines, report


@dataclass(frozen=True)
class RosterPlan:
    """What an upload changes: lines to set (new or changed) and phones no longer listed."""

    set: list[RosterLine]
    removed: list[RosterLine]


def plan_upload(
    lines: list[RosterLine], current: dict[str, RosterLine], report: RosterReport
) -> RosterPlan:
    """The changes against the unit's current roster (phone -> line); counts them in `report`."""
    changed: list[RosterLine] = []
    for line in lines:
        before = current.get(line.phone)
        if before is None:
            report.added += 1
            changed.append(line)
        elif before != line:
            report.updated += 1
            changed.append(line)
        else:
            report.unchanged += 1
    removed: list[RosterLine] = []
    if not report.rejected:
        listed = {line.phone for line in lines}
        removed = [c for p, c in sorted(current.items()) if p not in listed]
    report.removed = len(removed)
    return RosterPlan(changed, removed)


def template_csv() -> bytes:
    return csv_template(TEMPLATE_COLUMNS)


def template_xlsx() -> bytes:
    return xlsx_template(
        TEMPLATE_COLUMNS,
        "在职党员名单",
        [12, 16, 24, 16],
        (
            "每行一名本单位在职党员；第 1 行是表头，请勿修改。",
            "姓名、手机号码、党支部为必填，职务可留空。",
            "手机号码：11 位大陆手机号，用于与党员在社区的报到登记对应。",
            "每次上传的是本单位完整名单：上次名单中有、本次没有的党员，将标记为不再在册。",
        ),
    )
