"""The slot-attendance roll-up's job (issue 15), run where the sink runs (it reads the
warehouse), like the reminders: each SLOT_WEEKS_INTERVAL_S it tallies every member's slots of
this week and the SLOT_WEEKS_LOOK_BACK weeks before (placed, attended, no-shows, with the one
attendance rule: `services.reads.activities.no_shows`) and publishes the tallies that differ
from the roll-up's to `slot-weeks`; the sink writes them to `slot_weeks`.

Why a job and not a materialised view: attendance is decided from sessions (a review that voids
one turns an attendance into a no-show), a rule in Python, so the roll-up is re-tallied over
the weeks a review may still change. A week older than the look-back keeps its last tally.
Several sink processes may run it: the same tally is the same event (its id is derived from it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from services import periodic, topics
from services.events import SlotWeekTallied, utcnow
from services.publisher import Publisher
from services.reads.activities import no_shows
from services.reads.slot_weeks import tallies
from services.reads.weeks import parse_week
from services.settings import Settings
from services.timeutil import iso_week, local_midnight
from services.warehouse.client import Warehouse

log = logging.getLogger(__name__)


def weeks_to_tally(now: datetime, look_back: int) -> list[str]:
    """This week and the `look_back` weeks before it, oldest first."""
    return [iso_week(now - timedelta(weeks=i)) for i in range(look_back, -1, -1)]


def tally(wh: Warehouse, now: datetime, look_back: int) -> list[SlotWeekTallied]:
    """The tallies that differ from the roll-up's, over the weeks re-tallied."""
    out: list[SlotWeekTallied] = []
    for week in weeks_to_tally(now, look_back):
        _, last_day = parse_week(week)
        since = local_midnight(last_day - timedelta(days=6))
        until = local_midnight(last_day + timedelta(days=1))
        fresh = {
            c.member_id: (c.placed, c.attended, c.no_shows) for c in no_shows(wh, now, since, until)
        }
        stored = tallies(wh, week)
        # A member tallied before and no longer placed in any slot of the week: zero.
        for member in stored.keys() - fresh.keys():
            fresh[member] = (0, 0, 0)
        for member, (placed, attended, missed) in sorted(fresh.items()):
            if stored.get(member) == (placed, attended, missed):
                continue
            out.append(
                SlotWeekTallied(
                    event_id=SlotWeekTallied.id_for(week, member, placed, attended, missed),
                    occurred_at=now,
                    week=week,
                    member_id=member,
                    placed=placed,
                    attended=attended,
                    no_shows=missed,
                )
            )
    return out


class Tallier:
    def __init__(
        self,
        settings: Settings,
        wh: Warehouse,
        publisher: Publisher,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.wh = wh
        self.publisher = publisher
        self.clock = clock

    def run_once(self) -> int:
        due = tally(self.wh, self.clock(), self.settings.slot_weeks_look_back)
        self.publisher.send_many_sync(
            [(topics.SLOT_WEEKS, f"{t.member_id}|{t.week}", t) for t in due]
        )
        if due:
            log.info("slot weeks: %d tallies published", len(due))
        return len(due)


def start(settings: Settings, wh: Warehouse, stop: threading.Event) -> list[threading.Thread]:
    """Starts the tallier in a daemon thread that ends when `stop` is set; nothing when
    SLOT_WEEKS_INTERVAL_S=0."""
    if not settings.slot_weeks_interval_s:
        return []
    tallier = Tallier(settings, wh, Publisher(settings))
    t = periodic.every("slot-weeks", settings.slot_weeks_interval_s, stop, tallier.run_once)
    t.start()
    return [t]
