"""Excused-week requests (请假) and the approved weeks, read from the `excusals` table.

A request's status is folded from its decisions with the core's rule (`services.excused`): the
first decision in time decides, so every reader agrees however decisions raced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.excused import Decision, Status, approved_weeks_sql, status
from services.reads._rows import utc
from services.warehouse.client import Warehouse


@dataclass(frozen=True)
class ExcusalRequest:
    request_id: str
    member_id: str
    community_id: str
    unit_id: str
    weeks: list[str]
    reason: str
    note: str
    requested_by: str
    requested_at: datetime
    status: Status
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None


_COLUMNS = (
    "request_id, action, member_id, community_id, unit_id, weeks, reason, note, "
    "actor_role, actor_id, occurred_at, event_id"
)


def _fold(rows: list[tuple[Any, ...]]) -> list[ExcusalRequest]:
    requests: dict[str, tuple[Any, ...]] = {}
    decisions: dict[str, list[tuple[Decision, tuple[Any, ...]]]] = {}
    for r in rows:
        rid, action = str(r[0]), str(r[1])
        if action == "request":
            requests.setdefault(rid, r)
        else:
            d = Decision(action, utc(r[10]) or r[10], str(r[11]))  # type: ignore[arg-type]
            decisions.setdefault(rid, []).append((d, r))
    out = []
    for rid, r in requests.items():
        ds = decisions.get(rid, [])
        st, first = status(d for d, _ in ds)
        row = next((x for d, x in ds if d is first), None)
        out.append(
            ExcusalRequest(
                request_id=rid,
                member_id=str(r[2]),
                community_id=str(r[3]),
                unit_id=str(r[4]),
                weeks=sorted(str(w) for w in r[5]),
                reason=str(r[6]),
                note=str(r[7]),
                requested_by=f"{r[8]}:{r[9]}",
                requested_at=utc(r[10]) or r[10],
                status=st,
                decided_by=f"{row[8]}:{row[9]}" if row else None,
                decided_at=(utc(row[10]) or row[10]) if row else None,
                decision_note=str(row[7]) if row else None,
            )
        )
    # Newest first, as a person reads a list of requests.
    out.sort(key=lambda x: (x.requested_at, x.request_id), reverse=True)
    return out


def requests(
    wh: Warehouse,
    *,
    member_id: str | None = None,
    community_id: str | None = None,
    unit_id: str | None = None,
    request_id: str | None = None,
) -> list[ExcusalRequest]:
    """Requests of one member, community (as it was when asked), unit or one request, with
    their status; each filter given restricts (none given: every request)."""
    conds, p = [], {}
    for col, v in (
        ("member_id", member_id),
        ("community_id", community_id),
        ("unit_id", unit_id),
        ("request_id", request_id),
    ):
        if v is not None:
            conds.append(f"{col} = %({col})s")
            p[col] = v
    where = " AND ".join(conds) or "1"
    rows = wh.query(
        f"SELECT {_COLUMNS} FROM excusals FINAL WHERE {where} ORDER BY occurred_at, event_id", p
    )
    return _fold(rows)


def request(wh: Warehouse, request_id: str) -> ExcusalRequest | None:
    found = requests(wh, request_id=request_id)
    return found[0] if found else None


def held_weeks(wh: Warehouse, member_id: str) -> set[str]:
    """Weeks of the member's pending or approved requests (a week is asked for once at a time)."""
    return {w for r in requests(wh, member_id=member_id) if r.status != "declined" for w in r.weeks}


def approved_weeks(wh: Warehouse, member_id: str, weeks: list[str]) -> set[str]:
    """Which of these weeks are approved excused weeks of the member (served or not)."""
    rows = wh.query(
        approved_weeks_sql("member_id = %(m)s AND week IN %(ws)s"), {"m": member_id, "ws": weeks}
    )
    return {str(w) for _, w in rows}
