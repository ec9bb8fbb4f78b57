"""The rule of an excused week (请假): the window a week may be asked for in, the first decision
deciding, served wins, and the weeks that leave a year's required weeks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.excused import (
    AHEAD_WEEKS,
    MAX_WEEKS,
    REASON_LABELS,
    REASONS,
    Decision,
    ExcusalRefused,
    check_weeks,
    excused,
    excused_weeks_in_year,
    overlapping,
    status,
    week_name,
    window,
)

# Wednesday 2026-12-02 10:00 in Shanghai (02:00 UTC): week 2026-W49.
NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)


def test_the_window_is_seven_days_back_and_eight_weeks_ahead() -> None:
    # W48 ended Sunday Nov 29 (3 days ago): allowed; W47 ended Nov 22 (10 days ago): not.
    assert window(NOW) == ("2026-W48", "2027-W04")
    assert check_weeks(["2026-W49", "2026-W48", "2026-W49"], NOW) == ["2026-W48", "2026-W49"]
    with pytest.raises(ExcusalRefused) as late:
        check_weeks(["2026-W47"], NOW)
    assert late.value.code == "week_too_late" and "2026-W47" in late.value.message
    with pytest.raises(ExcusalRefused) as far:
        check_weeks(["2027-W05"], NOW)
    assert far.value.code == "week_too_far"
    assert check_weeks([f"2027-W0{AHEAD_WEEKS - 4}"], NOW) == ["2027-W04"]


def test_the_seventh_day_after_the_week_is_the_last() -> None:
    # W48's Sunday is Nov 29: asking on Dec 6 (local) still counts, Dec 7 does not.
    sunday_6 = datetime(2026, 12, 6, 15, 59, tzinfo=UTC)  # 23:59 local
    monday_7 = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)  # 00:00 local, Dec 7
    assert check_weeks(["2026-W48"], sunday_6) == ["2026-W48"]
    with pytest.raises(ExcusalRefused):
        check_weeks(["2026-W48"], monday_7)


def test_a_request_names_some_weeks_and_not_too_many() -> None:
    with pytest.raises(ExcusalRefused) as none:
        check_weeks([], NOW)
    assert none.value.code == "invalid_weeks"
    many = [week_name(date(2026, 11, 23) + timedelta(weeks=i)) for i in range(MAX_WEEKS + 1)]
    with pytest.raises(ExcusalRefused) as too_many:
        check_weeks(many, NOW)
    assert too_many.value.code == "invalid_weeks"


def test_the_year_boundary_names_weeks_by_their_iso_year() -> None:
    assert week_name(date(2026, 12, 31)) == "2026-W53"
    assert week_name(date(2027, 1, 4)) == "2027-W01"


def test_the_first_decision_in_time_decides() -> None:
    t = datetime(2026, 12, 2, tzinfo=UTC)
    assert status([]) == ("pending", None)
    approve = Decision("approve", t + timedelta(seconds=1), "b")
    decline = Decision("decline", t + timedelta(seconds=2), "a")
    assert status([decline, approve])[0] == "approved"
    assert status([decline])[0] == "declined"
    # At the same instant the event id orders them: every reader picks the same one.
    tie = Decision("decline", approve.occurred_at, "a")
    assert status([approve, tie]) == ("declined", tie)


def test_served_wins() -> None:
    assert excused(approved=True, served=False)
    assert not excused(approved=True, served=True)
    assert not excused(approved=False, served=False)


def test_overlapping_weeks() -> None:
    assert overlapping(["2026-W49", "2026-W50"], {"2026-W50"}) == ["2026-W50"]
    assert overlapping(["2026-W49"], set()) == []


def test_excused_weeks_leave_only_required_unserved_weeks() -> None:
    approved = ["2026-W10", "2026-W11", "2026-W20", "2026-W30", "2025-W52"]
    # Reported in W11 (so W10 was never required), served in W20, as of W25 (W30 not yet).
    n = excused_weeks_in_year(
        2026, approved, ["2026-W20"], date.fromisocalendar(2026, 11, 3), date(2026, 6, 17)
    )
    assert n == 1  # W11 only
    assert excused_weeks_in_year(2026, approved, [], None, date(2026, 12, 31)) == 4
    # Repeats count once.
    assert excused_weeks_in_year(2026, ["2026-W10", "2026-W10"], [], None, date(2026, 12, 31)) == 1


def test_every_reason_has_its_chinese_label() -> None:
    assert set(REASON_LABELS) == set(REASONS)
    assert REASON_LABELS["deployment"] == "下沉/应急"
