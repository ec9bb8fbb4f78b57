"""Finding the member to check in for (代签到) and a team leader's team."""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.natural import natural_sorted
from services.warehouse.client import Warehouse

_DIGITS = re.compile(r"^\d{3,11}$")


@dataclass(frozen=True)
class Found:
    member_id: str
    name: str
    phone: str | None  # in full: the caller masks it
    # The station of the member's open session, if any (签退 rather than 签到).
    open_station_id: str | None


def search_members(wh: Warehouse, community_id: str, q: str, limit: int) -> list[Found]:
    """Active members of the community whose name contains `q`, or, for 3-11 digits, whose
    phone contains them (a member tells the last four digits); by name, at most `limit`."""
    q = q.strip()
    if _DIGITS.match(q):
        match = "position(ifNull(phone, ''), %(q)s) > 0"
    else:
        match = "positionCaseInsensitiveUTF8(name, %(q)s) > 0"
    rows = wh.query(
        f"""
        SELECT m.id, m.name, m.phone, o.station_id
        FROM (SELECT id, name, phone FROM members FINAL
              WHERE community_id = %(c)s AND status = 'active' AND {match}
              ORDER BY name, id LIMIT {int(limit)}) AS m
        LEFT JOIN (SELECT member_id, any(station_id) AS station_id FROM sessions FINAL
                   WHERE status = 'open' AND voided = 0 GROUP BY member_id) AS o
            ON o.member_id = m.id
        """,
        {"c": community_id, "q": q},
    )
    found = [Found(str(i), str(n), p, s or None) for i, n, p, s in rows]
    return natural_sorted(found, key=lambda f: f.name)


def team(wh: Warehouse, leader_id: str) -> list[tuple[str, str]]:
    """(id, name) of the active members whose team leader is `leader_id`, by name."""
    rows = wh.query(
        "SELECT id, name FROM members FINAL WHERE team_leader_id = %(l)s AND status = 'active'",
        {"l": leader_id},
    )
    return natural_sorted([(str(i), str(n)) for i, n in rows], key=lambda r: r[1])
