"""The personal-data access log (the admin's, filtered and paged) and everything held about one
member (their own data download)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.reads._rows import utc, utc_row
from services.warehouse.client import Warehouse


@dataclass(frozen=True)
class AccessLogFilter:
    member_id: str | None = None
    actor_role: str | None = None
    actor_id: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> tuple[str, dict[str, Any]]:
        parts: list[str] = ["1"]
        params: dict[str, Any] = {}
        if self.member_id is not None:
            parts.append("has(member_ids, %(member_id)s)")
            params["member_id"] = self.member_id
        for name in ("actor_role", "actor_id", "kind"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name} = %({name})s")
                params[name] = value
        if self.since is not None:
            parts.append("at >= %(since)s")
            params["since"] = self.since
        if self.until is not None:
            parts.append("at < %(until)s")
            params["until"] = self.until
        return " AND ".join(parts), params


@dataclass(frozen=True)
class AccessLogEntry:
    event_id: str
    kind: str
    actor_role: str
    actor_id: str
    member_ids: list[str]
    route: str
    detail: str
    at: datetime


def access_log(
    wh: Warehouse, f: AccessLogFilter, limit: int, offset: int
) -> tuple[list[AccessLogEntry], int]:
    """Newest first; the total of the filter for paging."""
    where, params = f.where()
    total = wh.query(f"SELECT count() FROM access_log FINAL WHERE {where}", params)
    rows = wh.query(
        "SELECT event_id, kind, actor_role, actor_id, member_ids, route, detail, at "
        f"FROM access_log FINAL WHERE {where} ORDER BY at DESC, event_id "
        "LIMIT %(limit)s OFFSET %(offset)s",
        {**params, "limit": limit, "offset": offset},
    )
    items = [
        AccessLogEntry(e, k, r, a, list(m), route, d, utc(at) or at)
        for e, k, r, a, m, route, d, at in rows
    ]
    return items, int(total[0][0]) if total else 0


# ---- one member's own data ---------------------------------------------------------------------

# Each part of the download: the table, its columns, the condition naming the member, the order.
# Wishes name a resident (their name and contact): that is the resident's data, not the
# member's, so only the wish itself is given.
_MY_DATA: dict[str, tuple[str, str, str, str]] = {
    "registry_history": (
        "registry_history",
        "version, operation, changed_by, changed_at, fields, before, after",
        "entity_kind = 'member' AND entity_id = %(m)s",
        "version",
    ),
    "scans": (
        "checkins",
        "event_id, station_id, station_community_id, unit_id, member_community_id, action, "
        "client_event_id, scanned_at, received_at",
        "member_id = %(m)s",
        "scanned_at",
    ),
    "sessions": (
        "sessions",
        "session_id, station_id, station_community_id, unit_id, member_community_id, start, "
        "end, credited_seconds, status, flags",
        "member_id = %(m)s",
        "start",
    ),
    "feedback": (
        "feedback",
        "feedback_id, kind, session_id, period, rating, grade, comment, author_role, recorded_at",
        "member_id = %(m)s OR (author_role = 'member' AND author_id = %(m)s)",
        "recorded_at",
    ),
    "wishes": (
        "wishes",
        "wish_id, status, community_id, title, description, assignee_kind, assignee_id, "
        "fulfilled_by_member_id, rating, created_at, done_at, confirmed_at",
        "assignee_id = %(m)s OR fulfilled_by_member_id = %(m)s",
        "created_at",
    ),
    "notifications": (
        "notifications",
        "notification_id, kind, week, title, body, created_at",
        "recipient_kind = 'member' AND recipient_id = %(m)s",
        "created_at",
    ),
    "notification_deliveries": (
        "notification_deliveries",
        "notification_id, channel, status, attempts, at",
        "recipient_id = %(m)s",
        "at",
    ),
    "preferences": (
        "reminder_preferences",
        "kind, enabled, set_by, set_at",
        "member_id = %(m)s",
        "kind",
    ),
    "access_log": (
        "access_log",
        "event_id, kind, actor_role, actor_id, route, detail, at",
        "has(member_ids, %(m)s)",
        "at",
    ),
}
MY_DATA_PARTS: tuple[str, ...] = tuple(_MY_DATA)


def my_data(wh: Warehouse, member_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every row held about the member, part by part (MY_DATA_PARTS), oldest first. Raw scans
    older than the retention are gone (SCAN_RETENTION_YEARS); their sessions remain."""
    out = {}
    for part, (table, columns, cond, order) in _MY_DATA.items():
        rows = wh.query_dicts(
            f"SELECT {columns} FROM {table} FINAL WHERE {cond} ORDER BY {order}", {"m": member_id}
        )
        out[part] = [utc_row(r) for r in rows]
    return out
