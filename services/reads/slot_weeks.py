"""Reads of the slot-attendance roll-up (`slot_weeks`, m0020): the tallies stored per week."""

from __future__ import annotations

from services.warehouse.client import Warehouse

# A member's week's no-shows, as the roll-up holds them: for the drill-down to join on.
NO_SHOWS_SQL = (
    "SELECT member_id, no_shows AS n FROM slot_weeks FINAL WHERE week = %(w)s AND no_shows > 0"
)


def tallies(wh: Warehouse, week: str) -> dict[str, tuple[int, int, int]]:
    """Member -> (placed, attended, no-shows) of the week, as last tallied."""
    rows = wh.query(
        "SELECT member_id, placed, attended, no_shows FROM slot_weeks FINAL WHERE week = %(w)s",
        {"w": week},
    )
    return {str(m): (int(p), int(a), int(n)) for m, p, a, n in rows}
