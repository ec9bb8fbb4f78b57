"""Members' weekly slot attendance tallies into the drill-down's roll-up."""

from __future__ import annotations

from services import topics
from services.events import SlotWeekTallied
from services.processors.base import Route, route

SLOT_WEEKS = route(
    Route(
        topics.SLOT_WEEKS,
        "slot_weeks",
        ("week", "member_id", "placed", "attended", "no_shows", "event_id", "decided_at"),
        (SlotWeekTallied,),
        lambda e: (
            e.week,
            e.member_id,
            e.placed,
            e.attended,
            e.no_shows,
            e.event_id,
            e.occurred_at,
        ),
    )
)
