"""A member's attendance of service slots in one week, as the roll-up keeps it (issue 15).

Decided from the slots, sign-ups and sessions by `services.slot_weeks_job` with the one rule
(`services.activities.attendance`, through `services.reads.activities.no_shows`): the drill-down
reads the week's no-shows from this roll-up instead of re-deciding every slot's attendance.
"""

from __future__ import annotations

from typing import Literal

from services.events.base import Event, derived_id, event_type


@event_type
class SlotWeekTallied(Event):
    """Of the slots that started in `week` (ISO, Asia/Shanghai) and are over, how many the
    member had a place in, attended and did not show for. The latest tally of a member's week
    replaces the earlier ones (a review that voids a session turns an attendance into a no-show;
    a member withdrawn from every slot is tallied zero)."""

    event_type: Literal["slot_week.tallied"] = "slot_week.tallied"
    week: str
    member_id: str
    placed: int
    attended: int
    no_shows: int

    @staticmethod
    def id_for(week: str, member_id: str, placed: int, attended: int, no_shows: int) -> str:
        # The same tally decided twice (two sink processes, a re-run) is the same event.
        return derived_id("slot-week", week, member_id, str(placed), str(attended), str(no_shows))
