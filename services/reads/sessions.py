"""Single sessions and the organizer's review queue (过程纪实).

A voided revision is a session that re-pairing replaced: it is never listed, reviewed, rated or
taken as evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from services.counting import NOT_CREDITED_STATUSES
from services.reads._rows import utc_row
from services.reads.member_hours import SESSION_COLUMNS, session_item
from services.reads.registry import member_names
from services.warehouse.client import Warehouse


def session(wh: Warehouse, session_id: str) -> dict[str, Any] | None:
    """A live (not voided) session's latest revision, with its member, unit and communities."""
    rows = wh.query_dicts(
        f"SELECT {SESSION_COLUMNS}, member_id, unit_id, member_community_id, "
        "station_community_id FROM sessions FINAL WHERE session_id = %(s)s AND voided = 0 LIMIT 1",
        {"s": session_id},
    )
    return utc_row(rows[0]) if rows else None


def is_evidence(status: str) -> bool:
    """A session proves service once it ended and was not rejected."""
    return status not in NOT_CREDITED_STATUSES


def review_queue(
    wh: Warehouse,
    community_id: str,
    since: datetime,
    need_flags: list[str],
    done_flags: list[str],
    limit: int,
    offset: int,
    anomalous: Mapping[str, Sequence[str]] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Sessions at the community's stations that carry a flag needing review, or an anomaly
    flag (`anomalous`: session -> anomalies, services.reads.anomalies), and none saying it was
    reviewed, started since `since`, oldest first; with the member's name and its anomalies."""
    anomalous = anomalous or {}
    params = {
        "c": community_id,
        "since": since,
        "need": need_flags,
        "done": done_flags,
        # Never an empty list: `IN ()` is not valid SQL; no session id is empty.
        "anom": sorted(anomalous) or [""],
    }
    where = (
        "station_community_id = %(c)s AND voided = 0 AND start >= %(since)s "
        "AND status IN ('closed', 'capped', 'auto_closed') "
        "AND (hasAny(flags, %(need)s) OR session_id IN %(anom)s) "
        "AND NOT hasAny(flags, %(done)s)"
    )
    rows = wh.query_dicts(
        f"SELECT {SESSION_COLUMNS}, member_id FROM sessions FINAL WHERE {where} "
        f"ORDER BY start, session_id LIMIT {int(limit)} OFFSET {int(offset)}",
        params,
    )
    total = wh.query(f"SELECT count() FROM sessions FINAL WHERE {where}", params)
    names = member_names(wh, sorted({r["member_id"] for r in rows}))
    items = [
        {
            **session_item(r),
            "member_id": r["member_id"],
            "member_name": names.get(r["member_id"]),
            "anomalies": list(anomalous.get(r["session_id"], ())),
        }
        for r in rows
    ]
    return items, int(total[0][0])


def reviews(wh: Warehouse, session_id: str) -> list[dict[str, Any]]:
    """Every review decision on one session, oldest first."""
    rows = wh.query_dicts(
        "SELECT review_id, action, credited_seconds, reason, reviewer_role, reviewer_id, "
        "reviewed_at FROM session_reviews FINAL WHERE session_id = %(s)s "
        "ORDER BY reviewed_at, review_id",
        {"s": session_id},
    )
    return [utc_row(r) for r in rows]


def on_site(wh: Warehouse, community_id: str) -> list[tuple[Any, ...]]:
    """Open sessions at the community's stations: (member, name, phone, station, station name,
    since), oldest first."""
    rows = wh.query(
        """
        SELECT s.member_id, ifNull(m.name, ''), m.phone, s.station_id, ifNull(st.name, ''), s.start
        FROM (SELECT member_id, station_id, start FROM sessions FINAL
              WHERE station_community_id = %(c)s AND status = 'open' AND voided = 0) AS s
        LEFT JOIN (SELECT id, name, phone FROM members FINAL) AS m ON m.id = s.member_id
        LEFT JOIN (SELECT id, name FROM stations FINAL WHERE community_id = %(c)s) AS st
            ON st.id = s.station_id
        ORDER BY s.start
        """,
        {"c": community_id},
    )
    return [tuple(r) for r in rows]
