"""A unit's roster against the registry: who reported to a community (and which), who has not
(未报到), who reported and has lapsed (`services.counting.lapsed`), and which reports the
community confirmed (报到回执). Also the communities' own view of the reports to confirm.

Lines are matched to members by phone. A phone registered to a member of another unit is shown
as such and nothing more: that member's community and figures belong to their own unit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Literal

from services.counting import LAST_SERVICE_SQL, lapsed, lapsed_cutoff
from services.natural import natural_key
from services.reads._rows import utc
from services.timeutil import LOCAL_TZ
from services.unit_roster import RosterLine
from services.warehouse.client import Warehouse

RosterStatus = Literal[
    "reported", "lapsed", "not_reported", "not_registered", "other_unit", "inactive"
]
# 未报到: on the roster and not reported to any community.
NOT_REPORTED: frozenset[str] = frozenset({"not_reported", "not_registered"})


@dataclass(frozen=True)
class RosterRow:
    phone: str
    name: str
    party_branch: str
    position: str | None
    status: RosterStatus
    member_id: str | None = None
    community_id: str | None = None
    community_name: str | None = None
    reported_on: date | None = None
    last_service: datetime | None = None
    confirmed_at: datetime | None = None
    confirmed_by: str | None = None


def current_lines(wh: Warehouse, unit_id: str) -> dict[str, RosterLine]:
    """The unit's roster as it stands: phone -> line."""
    rows = wh.query(
        "SELECT phone, name, party_branch, position FROM unit_roster FINAL "
        "WHERE unit_id = %(u)s AND present",
        {"u": unit_id},
    )
    return {str(p): RosterLine(str(p), str(n), str(b), pos or None) for p, n, b, pos in rows}


def last_services(wh: Warehouse, member_ids: list[str]) -> dict[str, datetime]:
    """Each member's latest counted session start (UTC), for the lapsed rule."""
    if not member_ids:
        return {}
    rows = wh.query(LAST_SERVICE_SQL, {"members": member_ids})
    return {str(m): utc(t) or t for m, t in rows}


def receipts(wh: Warehouse, member_ids: list[str]) -> dict[tuple[str, str], tuple[datetime, str]]:
    """(member, community) -> (confirmed at, confirmed by) of the reports confirmed."""
    if not member_ids:
        return {}
    rows = wh.query(
        "SELECT member_id, community_id, confirmed_at, confirmed_by FROM report_receipts FINAL "
        "WHERE member_id IN %(ids)s",
        {"ids": member_ids},
    )
    return {(str(m), str(c)): (utc(at) or at, str(by)) for m, c, at, by in rows}


def _community_names(wh: Warehouse) -> dict[str, str]:
    return {str(i): str(n) for i, n in wh.query("SELECT id, name FROM communities FINAL")}


def _today() -> date:
    return datetime.now(LOCAL_TZ).date()


def roster_status(
    wh: Warehouse, unit_id: str, lapsed_weeks: int, today: date | None = None
) -> list[RosterRow]:
    """The unit's roster lines with their status, by name (natural order)."""
    lines = current_lines(wh, unit_id)
    if not lines:
        return []
    members: dict[str, dict[str, Any]] = {}
    for row in wh.query_dicts(
        "SELECT id, phone, unit_id, community_id, reported_on, toString(status) AS status "
        "FROM members FINAL WHERE phone IN %(p)s",
        {"p": list(lines)},
    ):
        members[str(row["phone"])] = row
    own = [str(m["id"]) for m in members.values() if m["unit_id"] == unit_id]
    last = last_services(wh, own)
    confirmed = receipts(wh, own)
    names = _community_names(wh)
    cutoff = lapsed_cutoff(today or _today(), lapsed_weeks)
    out: list[RosterRow] = []
    for phone, line in lines.items():
        base = RosterRow(phone, line.name, line.party_branch, line.position, "not_registered")
        m = members.get(phone)
        if m is None:
            out.append(base)
            continue
        if m["unit_id"] != unit_id:
            out.append(replace(base, status="other_unit"))
            continue
        mid, cid, reported_on = str(m["id"]), str(m["community_id"]), m["reported_on"]
        last_at = last.get(mid)
        status: RosterStatus
        if m["status"] != "active":
            status = "inactive"
        elif reported_on is None:
            status = "not_reported"
        elif lapsed(reported_on, last_at.astimezone(LOCAL_TZ).date() if last_at else None, cutoff):
            status = "lapsed"
        else:
            status = "reported"
        receipt = confirmed.get((mid, cid))
        out.append(
            replace(
                base,
                status=status,
                member_id=mid,
                community_id=cid,
                community_name=names.get(cid),
                reported_on=reported_on,
                last_service=last_at,
                confirmed_at=receipt[0] if receipt else None,
                confirmed_by=receipt[1] if receipt else None,
            )
        )
    out.sort(key=lambda r: (natural_key(r.name), r.phone))
    return out


@dataclass(frozen=True)
class ReportRow:
    member_id: str
    name: str
    unit_id: str
    reported_on: date | None
    confirmed_at: datetime | None
    confirmed_by: str | None


def community_reports(wh: Warehouse, community_id: str) -> list[ReportRow]:
    """The community's active members who reported, with the receipt each has (or not)."""
    rows = wh.query(
        """
        SELECT m.id, m.name, m.unit_id, m.reported_on, r.confirmed_at, r.confirmed_by, r.found
        FROM (SELECT id, name, unit_id, reported_on FROM members FINAL
              WHERE community_id = %(c)s AND status = 'active' AND reported_on IS NOT NULL) AS m
        LEFT JOIN (SELECT member_id, confirmed_at, confirmed_by, 1 AS found
                   FROM report_receipts FINAL WHERE community_id = %(c)s) AS r
          ON r.member_id = m.id
        ORDER BY m.reported_on DESC, m.id
        SETTINGS join_use_nulls = 1
        """,
        {"c": community_id},
    )
    out = [
        ReportRow(
            str(mid),
            str(name),
            str(uid),
            rep,
            (utc(at) or at) if found else None,
            str(by) if found else None,
        )
        for mid, name, uid, rep, at, by, found in rows
    ]
    return out
