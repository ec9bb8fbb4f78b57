"""Small registry reads the pages, exports and weekly lists need (names, a community's stations).

Single records by id come from `services.registry` (cached); these read lists of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.counting import MEMBERS_AS_OF_SQL
from services.warehouse.client import Warehouse


@dataclass(frozen=True)
class MemberThen:
    """Whose a member's service was at an instant: the registry as it stood then."""

    unit_id: str
    community_id: str
    grid_id: str | None
    status: str


def member_at(wh: Warehouse, member_id: str, at: datetime) -> MemberThen | None:
    """The member's unit, community, grid and status as they stood at `at` (from
    `registry_history`, the one rule of `services.counting.MEMBERS_AS_OF_SQL`); None if the
    member is unknown. For a scan made before a move and sent later (queued offline)."""
    rows = wh.query(
        f"SELECT unit_id, community_id, grid_id, status FROM ({MEMBERS_AS_OF_SQL}) "
        "WHERE id = %(m)s",
        {"cutoff": at, "m": member_id},
    )
    if not rows:
        return None
    unit_id, community_id, grid_id, status = rows[0]
    return MemberThen(str(unit_id), str(community_id), grid_id and str(grid_id), str(status))


def community_names(wh: Warehouse, ids: list[str] | None = None) -> list[tuple[str, str]]:
    """(id, name) of the given communities (None: all), by name."""
    where = "" if ids is None else "WHERE id IN %(cs)s"
    rows = wh.query(
        f"SELECT id, name FROM communities FINAL {where} ORDER BY name, id", {"cs": ids or []}
    )
    return [(str(c), str(n)) for c, n in rows]


def community_stations(wh: Warehouse, community_id: str) -> list[tuple[str, str, str]]:
    """(id, name, kind) of the community's stations, by name."""
    rows = wh.query(
        "SELECT id, name, kind FROM stations FINAL WHERE community_id = %(c)s ORDER BY name, id",
        {"c": community_id},
    )
    return [(str(i), str(n), str(k)) for i, n, k in rows]


def activation(wh: Warehouse, code_hash: str) -> dict[str, Any] | None:
    """An activation code's latest state (issued, or redeemed), by the code's HMAC."""
    rows = wh.query_dicts(
        "SELECT * FROM activations FINAL WHERE code_hash = %(h)s", {"h": code_hash}
    )
    return rows[0] if rows else None
