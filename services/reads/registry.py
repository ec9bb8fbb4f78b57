"""Small registry reads the pages, exports and weekly lists need (names, a community's stations).

Single records by id come from `services.registry` (cached); these read lists of them."""

from __future__ import annotations

from typing import Any

from services.warehouse.client import Warehouse


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
