"""services.reads.registry.member_then: whose a member's service was when a late scan was made."""

from __future__ import annotations

from datetime import UTC, datetime

from services.reads.registry import Change, MemberThen, member_then

NOW = MemberThen("unit_new", "comm_new", None, "left")
T = datetime(2026, 11, 30, 8, tzinfo=UTC)


def at(h: int) -> datetime:
    return T.replace(hour=h)


def test_before_any_change_the_member_is_as_they_were() -> None:
    changes = [
        Change(at(10), "unit_id", "unit_old"),
        Change(at(10), "community_id", "comm_old"),
        Change(at(10), "grid_id", "grid_old"),
        Change(at(12), "status", "active"),
    ]
    assert member_then(NOW, changes, at(9)) == MemberThen(
        "unit_old", "comm_old", "grid_old", "active"
    )
    # Between the move and leaving: the new unit, still active.
    assert member_then(NOW, changes, at(11)) == MemberThen("unit_new", "comm_new", None, "active")
    # After everything: as now.
    assert member_then(NOW, changes, at(13)) == NOW


def test_two_moves_after_the_scan_take_the_value_before_the_first() -> None:
    changes = [Change(at(10), "unit_id", "unit_a"), Change(at(11), "unit_id", "unit_b")]
    assert member_then(NOW, changes, at(9)).unit_id == "unit_a"
    assert member_then(NOW, changes, at(10)).unit_id == "unit_b"
