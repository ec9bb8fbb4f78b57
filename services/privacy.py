"""Personal information care (个人信息保护法): the minimum shown per purpose, and how long it is kept.

A phone number is shown masked (138****0004) in every answer, page and export, except where the
reader must call the person: the organizer's not-served and on-site lists reveal one phone on a
tap, and the not-served file lists them in full; each such read is logged (`AccessKind`,
`services.events.PersonalDataRead`) and the admin reads the log. This module is the one place
that masks, and the one place that says how long raw scans and the log are kept.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from services import topics
from services.events import AccessKind, Member, PersonalDataRead, utcnow

if TYPE_CHECKING:
    from services.publisher import Publisher

M = TypeVar("M")


def mask_phone(phone: str | None) -> str | None:
    """138****0004: enough to tell two members apart and to match a number someone gives."""
    if not phone:
        return None
    digits = phone.strip()
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


def mask_volunteer_no(number: str | None) -> str | None:
    """A national volunteer number with its middle masked (the ends match it against the
    member's own record); short ones keep less."""
    if not number:
        return None
    n = len(number)
    if n <= 4:
        return "*" * n
    keep = 2 if n <= 8 else 4
    return f"{number[:keep]}{'*' * (n - 2 * keep)}{number[-keep:]}"


# Phone-like runs in free text: 7 or more digits, spaces and dashes allowed between them.
_PHONE_RUN = re.compile(r"(?:\+?86[\s-]?)?\d(?:[\s-]?\d){6,}")


def mask_contact(text: str | None) -> str | None:
    """Free-text contact details (a micro-wish's `resident_contact`) with every phone-like run
    masked as `mask_phone` masks a phone; the rest (an address, a name) as it is."""
    if not text:
        return text

    def masked(m: re.Match[str]) -> str:
        digits = re.sub(r"[\s+-]", "", m.group())
        if m.group().startswith("+86") or (len(digits) == 13 and digits.startswith("86")):
            digits = digits[2:]
        return mask_phone(digits) or ""

    return _PHONE_RUN.sub(masked, text)


# Two-character surnames (复姓) kept whole by `mask_name`: 欧阳** rather than 欧**, which would
# tell a reader less about who it is not and no more about who it is.
COMPOUND_SURNAMES = frozenset(
    [
        "欧阳",
        "司马",
        "上官",
        "诸葛",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "长孙",
        "宇文",
        "司徒",
        "司空",
        "夏侯",
        "轩辕",
        "令狐",
        "端木",
        "独孤",
        "南宫",
        "西门",
        "申屠",
        "澹台",
        "公冶",
        "呼延",
        "万俟",
        "赫连",
        "百里",
        "东郭",
        "太史",
        "闻人",
        "钟离",
        "宗政",
        "濮阳",
        "单于",
        "拓跋",
        "左丘",
        "梁丘",
        "第五",
        "段干",
        "公羊",
        "谷梁",
        "巫马",
        "乐正",
        "微生",
        "羊舌",
    ]
)


def mask_name(name: str | None) -> str | None:
    """A person's name with all but the surname withheld (王**, 欧阳**): enough for a member on
    their way to say "王奶奶" at the door, not enough to look the person up. Always two stars,
    so the length of the given name is withheld too."""
    if not name:
        return name
    n = name.strip()
    if not n:
        return ""
    keep = 2 if len(n) > 2 and n[:2] in COMPOUND_SURNAMES else 1
    return n[:keep] + "**"


def contact_phones(text: str | None) -> str:
    """What a micro-wish's reader sees of the resident's free-text contact: only its phone-like
    runs, masked (139****5678), joined by "、"; an address, a name or any other text in it is
    withheld (the logged reveal gives it in full)."""
    if not text:
        return ""
    return "、".join(m for m in (mask_contact(r.group()) for r in _PHONE_RUN.finditer(text)) if m)


def contact_withheld(text: str | None) -> bool:
    """Whether the contact holds more than `contact_phones` shows (an address, a name...)."""
    if not text:
        return False
    return bool(_PHONE_RUN.sub("", text).strip(" \t,，、;；:：/()（）-"))


def looks_like_citizen_id(value: str) -> bool:
    """Whether a value has the shape of a resident identity card number (居民身份证号码: 18
    characters, 17 digits and a digit or X, with a birth date at 7-14; or the old 15 digits with
    a six-digit date), which the registry never stores. The check digit is not required: a
    mistyped ID number is still someone's ID number."""
    v = value.strip().upper()
    if len(v) == 18 and v[:17].isdigit() and (v[17].isdigit() or v[17] == "X"):
        return _is_date(v[6:14])
    if len(v) == 15 and v.isdigit():
        return _is_date("19" + v[6:12])
    return False


def _is_date(yyyymmdd: str) -> bool:
    try:
        d = datetime.strptime(yyyymmdd, "%Y%m%d")
    except ValueError:
        return False
    return 1900 <= d.year <= 2100


def masked_member(m: M) -> M:
    """A member record as every answer shows it: the phone and the national volunteer number
    masked, the rest as it is."""
    if isinstance(m, Member) and (m.phone or m.volunteer_no):
        return m.model_copy(
            update={
                "phone": mask_phone(m.phone),
                "volunteer_no": mask_volunteer_no(m.volunteer_no),
            }
        )
    return m


def masked_change(kind: str, field: str, before: Any, after: Any) -> tuple[Any, Any]:
    """A registry history entry's values: a member's phone and volunteer number before and
    after, masked."""
    mask = {"phone": mask_phone, "volunteer_no": mask_volunteer_no}.get(field)
    if kind == "member" and mask is not None:
        return (
            mask(before) if isinstance(before, str) else before,
            mask(after) if isinstance(after, str) else after,
        )
    return before, after


# ---- the access log ------------------------------------------------------------------------------


def personal_data_read(
    kind: AccessKind,
    actor_role: str,
    actor_id: str,
    member_ids: list[str],
    route: str,
    detail: str = "",
) -> PersonalDataRead:
    # A fresh id per read: a client asking twice read twice.
    return PersonalDataRead(
        event_id=str(uuid.uuid4()),
        occurred_at=utcnow(),
        kind=kind,
        actor_role=actor_role,
        actor_id=actor_id,
        member_ids=member_ids,
        route=route,
        detail=detail,
    )


def log_read(publisher: Publisher, event: PersonalDataRead) -> None:
    """Publishes the read before the data is answered: if the log cannot be written (the broker
    away), the read is refused with the publisher's error rather than left unlogged."""
    publisher.send_sync(topics.ACCESS_LOG, event.actor_id, event)


# ---- retention ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retained:
    """A table whose rows are deleted `years` after the start of the (local) year of `column`."""

    table: str
    column: str
    years: int
    why: str


def retained_tables(scan_years: int, access_log_years: int) -> tuple[Retained, ...]:
    """What a ClickHouse TTL deletes, and after how long. Raw scans and what is derived from them
    scan by scan; never sessions, weekly totals, feedback or records of service: they are the
    record of service a member is owed and what every kept year's assessment is computed from
    (sessions carry their own times and credit, so a year's assessment needs no raw scan)."""
    return (
        Retained("checkins", "scanned_at", scan_years, "raw scans"),
        Retained("notifications", "created_at", scan_years, "reminders sent to inboxes"),
        Retained("notification_deliveries", "at", scan_years, "what became of each SMS"),
        Retained("access_log", "at", access_log_years, "who read whose personal data"),
    )


def ttl_statement(r: Retained) -> str:
    """The ALTER that sets (or, for 0 years, removes) a table's TTL. Years begin on 1 January in
    Asia/Shanghai, as the assessment's years do: a year's rows go together, once
    `years` years have begun since (4: 2022's scans are deleted on 2026-01-01)."""
    if r.years <= 0:
        return f"ALTER TABLE {r.table} REMOVE TTL"
    start = f"toStartOfYear(toTimeZone({r.column}, 'Asia/Shanghai'))"
    return f"ALTER TABLE {r.table} MODIFY TTL {start} + toIntervalYear({r.years})"


def first_kept_year(current_year: int, years: int) -> int | None:
    """The oldest year whose rows a retention of `years` still keeps (None: all are kept)."""
    return current_year - years + 1 if years > 0 else None
