"""The counting rules of `services.counting` as plain functions (their SQL twins are checked in
chDB by `tests/integration/test_counting_sql.py`)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services import counting
from services.timeutil import iso_week


@pytest.mark.parametrize(
    ("status", "flags", "voided", "want"),
    [
        ("closed", [], False, (1, 3600)),
        ("capped", ["over_cap"], False, (1, 3600)),
        ("auto_closed", ["forgotten_checkout"], False, (1, 3600)),
        ("adjusted", ["checkout_without_checkin", "adjusted"], False, (1, 3600)),
        ("closed", ["checkout_without_checkin"], False, (0, 3600)),
        ("open", [], False, (0, 0)),
        ("rejected", [], False, (0, 0)),
        ("closed", [], True, (0, 0)),
        ("adjusted", ["adjusted"], True, (0, 0)),
        # Credited below the weekly minimum: its time is hours, but it is no service (no
        # session counted, no week served) until an organizer approved or adjusted it.
        ("closed", ["below_minimum"], False, (0, 3600)),
        ("auto_closed", ["forgotten_checkout", "below_minimum"], False, (0, 3600)),
        ("closed", ["below_minimum", "approved"], False, (1, 3600)),
        ("adjusted", ["below_minimum", "adjusted"], False, (1, 3600)),
        ("closed", ["below_minimum", "rejected"], False, (0, 3600)),
        ("rejected", ["below_minimum", "rejected"], False, (0, 0)),
        ("closed", ["below_minimum", "approved"], True, (0, 0)),
        # Approving an anomaly is not adjusting it: it still needs its real time.
        ("closed", ["checkout_without_checkin", "below_minimum", "approved"], False, (0, 3600)),
    ],
)
def test_what_counts_and_what_credits(
    status: str, flags: list[str], voided: bool, want: tuple[int, int]
) -> None:
    assert counting.contribution(status, flags, voided, 3600) == want
    assert counting.counted(status, flags, voided) == bool(want[0])


def test_week_year_is_the_year_of_the_thursday() -> None:
    # 2027-01-01 is a Friday: its week is 2026-W53, a week of 2026; 2025-12-29 (Monday) opens
    # 2026-W01, a week of 2026.
    assert iso_week(datetime(2026, 12, 31, 17, tzinfo=UTC)) == "2026-W53"
    assert counting.week_year("2026-W53") == 2026
    assert iso_week(datetime(2025, 12, 29, 1, tzinfo=UTC)) == "2026-W01"
    assert counting.weeks_in_year(2026) == 53
    assert counting.last_day_of_week_year(2026) == date(2027, 1, 3)


def test_registered_in_a_week() -> None:
    end = date(2026, 11, 22)
    assert counting.registered("active", None, end)
    assert counting.registered("active", end, end)
    assert not counting.registered("active", date(2026, 11, 23), end)
    assert not counting.registered("left", None, end)
    now = datetime(2026, 11, 30, 3, tzinfo=UTC)
    # A past week: the end of its last local day; the current week: now.
    assert counting.week_cutoff(end, now) == datetime(2026, 11, 22, 16, tzinfo=UTC)
    assert counting.week_cutoff(date(2026, 12, 6), now) == now


def test_a_session_belongs_to_the_local_calendar_year() -> None:
    assert counting.session_year(datetime(2025, 12, 31, 16, tzinfo=UTC)) == 2026
    assert counting.session_year(datetime(2025, 12, 31, 15, 59, tzinfo=UTC)) == 2025
    lo, hi = counting.iso_year_bounds(2026)
    assert lo == datetime(2025, 12, 28, 16, tzinfo=UTC) and hi == datetime(
        2027, 1, 3, 16, tzinfo=UTC
    )


def test_hours_is_one_rounding() -> None:
    assert counting.hours(3 * 3600) == 3.0
    assert counting.hours(10_799) == 3.0
    assert counting.hours(1800 + 18) == 0.51
    assert counting.seconds_of_hours(1.5) == 5400


def test_parts_rounded_from_their_own_seconds_agree_with_their_total() -> None:
    # The community's breakdown the consistency test met: a minute at one of its stations and a
    # minute elsewhere read 0.02 h each beside the week's 0.03 h (two minutes), each figure the
    # rounding of its own seconds; a sum of the rounded parts would say 0.04.
    station, elsewhere, week = counting.hours(60), counting.hours(60), counting.hours(120)
    assert (station, elsewhere, week) == (0.02, 0.02, 0.03)
    assert counting.parts_agree([station, elsewhere], week)
    assert round(station + elsewhere, 2) != week
    # More than rounding is a disagreement.
    assert not counting.parts_agree([0.02, 0.02], 0.06)
    assert not counting.parts_agree([0.02, 0.02], 0.01)
    # A part missing (a station left out of the parts) is a disagreement, however small.
    assert not counting.parts_agree([0.5], 0.53)
    assert counting.parts_agree([], 0.0) and not counting.parts_agree([], 0.01)


@given(st.lists(st.integers(0, 40 * 3600), max_size=30))
def test_parts_always_agree_with_their_exact_total(seconds: list[int]) -> None:
    assert counting.parts_agree([counting.hours(s) for s in seconds], counting.hours(sum(seconds)))


def test_what_the_week_still_needs() -> None:
    now = datetime(2026, 11, 30, 3, tzinfo=UTC)
    assert counting.still_needed_seconds(True, None, now, 1800) == 0
    # Nothing open: one whole service of the minimum (a 4-minute gesture does not shorten it).
    assert counting.still_needed_seconds(False, None, now, 1800) == 1800
    # Checked in 4 minutes ago: 26 more minutes in this session.
    open_since = datetime(2026, 11, 30, 2, 56, tzinfo=UTC)
    assert counting.still_needed_seconds(False, open_since, now, 1800) == 1560
    assert (
        counting.still_needed_seconds(False, datetime(2026, 11, 30, 2, tzinfo=UTC), now, 1800) == 0
    )


def test_below_minimum_is_what_awaits_the_organizer() -> None:
    assert counting.below_minimum("closed", ["below_minimum"], False)
    assert not counting.below_minimum("closed", ["below_minimum", "approved"], False)
    assert not counting.below_minimum("rejected", ["below_minimum", "rejected"], False)
    assert not counting.below_minimum("closed", ["below_minimum"], True)
    assert not counting.below_minimum("closed", [], False)
