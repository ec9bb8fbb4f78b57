"""The slot-attendance roll-up's pieces that need no warehouse: which weeks the job re-tallies,
the tally's event and row, and the heatmap's window of weeks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services import topics
from services.events import SlotWeekTallied, parse_event
from services.processors import ROUTES
from services.reads.drilldown import MAX_HEAT_WEEKS, weeks_between
from services.slot_weeks_job import weeks_to_tally


def test_the_job_retallies_this_week_and_the_look_back() -> None:
    # Monday 2026-01-05 01:00 in Shanghai is still Sunday 2026-01-04 in UTC: the local week.
    now = datetime(2026, 1, 4, 17, 0, tzinfo=UTC)
    assert weeks_to_tally(now, 2) == ["2025-W52", "2026-W01", "2026-W02"]
    assert weeks_to_tally(now, 0) == ["2026-W02"]


def _tally(**kw: int) -> SlotWeekTallied:
    figures = {"placed": 2, "attended": 1, "no_shows": 1, **kw}
    return SlotWeekTallied(
        event_id=SlotWeekTallied.id_for("2026-W02", "m1", *figures.values()),
        occurred_at=datetime(2026, 1, 9, tzinfo=UTC),
        week="2026-W02",
        member_id="m1",
        **figures,
    )


def test_the_same_tally_is_the_same_event_and_a_new_one_is_not() -> None:
    assert _tally().event_id == _tally().event_id
    assert _tally(attended=2, no_shows=0).event_id != _tally().event_id
    e = _tally()
    assert parse_event(e.model_dump_json().encode()) == e


def test_a_tally_becomes_a_roll_up_row() -> None:
    route = ROUTES[topics.SLOT_WEEKS.name]
    assert topics.SLOT_WEEKS.compacted and topics.SLOT_WEEKS in topics.ALL_TOPICS
    row = dict(zip(route.columns, route.to_row(_tally()), strict=True))
    assert (row["week"], row["member_id"], row["placed"], row["attended"], row["no_shows"]) == (
        "2026-W02",
        "m1",
        2,
        1,
        1,
    )
    assert row["decided_at"] == datetime(2026, 1, 9, tzinfo=UTC)


def test_the_heatmap_window_spans_weeks() -> None:
    assert weeks_between("2026-W10", "2026-W10") == 1
    assert weeks_between("2025-W52", "2026-W02") == 3
    assert weeks_between("2025-W03", "2026-W02") == MAX_HEAT_WEEKS
    with pytest.raises(ValueError, match=r"^to: "):
        weeks_between("2025-W02", "2026-W02")
    with pytest.raises(ValueError, match=r"^from: "):
        weeks_between("2026-W03", "2026-W02")
