"""Small registry reads the pages, exports and weekly lists need (names, a community's stations).

Single records by id come from `services.registry` (cached); these read lists of them."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.natural import natural_sorted
from services.registry.replica import ATTRIBUTION_FIELDS
from services.warehouse.client import Warehouse


@dataclass(frozen=True)
class MemberThen:
    """Whose a member's service was at an instant: the registry as it stood then."""

    unit_id: str
    community_id: str
    grid_id: str | None
    status: str


@dataclass(frozen=True)
class Change:
    at: datetime
    field: str
    before: str | None  # the value before the change


def member_changes(wh: Warehouse, member_id: str) -> list[Change]:
    """The member's changes of unit, community, grid and status, oldest first (a key range of
    `registry_history`)."""
    rows = wh.query(
        """
        SELECT changed_at, tupleElement(x, 1), tupleElement(x, 2)
        FROM registry_history FINAL
        ARRAY JOIN arrayZip(fields, before) AS x
        WHERE entity_kind = 'member' AND entity_id = %(m)s AND operation = 'update'
          AND tupleElement(x, 1) IN %(f)s
        ORDER BY changed_at, version
        """,
        {"m": member_id, "f": list(ATTRIBUTION_FIELDS)},
    )
    out = []
    for at, name, before in rows:
        value = json.loads(before) if before is not None else None
        when = at if at.tzinfo else at.replace(tzinfo=UTC)
        out.append(Change(when, str(name), None if value is None else str(value)))
    return out


def member_then(now: MemberThen, changes: list[Change], at: datetime) -> MemberThen:
    """The member as they stood at `at`: each field's value before its earliest change after
    `at` (the rule `services.counting.MEMBERS_AS_OF_SQL` applies to every member at once)."""
    values = {f: getattr(now, f) for f in ATTRIBUTION_FIELDS}
    seen: set[str] = set()
    for c in changes:
        if c.at > at and c.field not in seen and c.field in values:
            seen.add(c.field)
            values[c.field] = c.before
    return MemberThen(
        unit_id=values["unit_id"] or "",
        community_id=values["community_id"] or "",
        grid_id=values["grid_id"],
        status=values["status"] or "",
    )


class MemberHistory:
    """`member_changes` remembered per member and record version (a changed record has a new
    version, so an entry never goes stale); at most `size` members, least recently used out."""

    def __init__(self, wh: Warehouse, size: int = 10_000) -> None:
        self.wh = wh
        self.size = size
        self._cache: OrderedDict[tuple[str, int], list[Change]] = OrderedDict()
        self._lock = threading.Lock()

    def at(self, now: MemberThen, member_id: str, version: int, at: datetime) -> MemberThen:
        key = (member_id, version)
        with self._lock:
            changes = self._cache.get(key)
            if changes is not None:
                self._cache.move_to_end(key)
        if changes is None:
            changes = member_changes(self.wh, member_id)
            with self._lock:
                self._cache[key] = changes
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        return member_then(now, changes, at)


def member_names(wh: Warehouse, ids: list[str]) -> dict[str, str]:
    """Member id -> name, for the given ids (unknown ones left out)."""
    if not ids:
        return {}
    rows = wh.query("SELECT id, name FROM members FINAL WHERE id IN %(ids)s", {"ids": ids})
    return {str(i): str(n) for i, n in rows}


def community_names(wh: Warehouse, ids: list[str] | None = None) -> list[tuple[str, str]]:
    """(id, name) of the given communities (None: all), by name in natural order."""
    where = "" if ids is None else "WHERE id IN %(cs)s"
    rows = wh.query(
        f"SELECT id, name FROM communities FINAL {where} ORDER BY id", {"cs": ids or []}
    )
    return natural_sorted([(str(c), str(n)) for c, n in rows], key=lambda r: r[1])


def community_stations(wh: Warehouse, community_id: str) -> list[tuple[str, str, str]]:
    """(id, name, kind) of the community's stations, by name."""
    rows = wh.query(
        "SELECT id, name, kind FROM stations FINAL WHERE community_id = %(c)s ORDER BY id",
        {"c": community_id},
    )
    return natural_sorted([(str(i), str(n), str(k)) for i, n, k in rows], key=lambda r: r[1])


def activation(wh: Warehouse, code_hash: str) -> dict[str, Any] | None:
    """An activation code's latest state (issued, or redeemed), by the code's HMAC."""
    rows = wh.query_dicts(
        "SELECT * FROM activations FINAL WHERE code_hash = %(h)s", {"h": code_hash}
    )
    return rows[0] if rows else None
