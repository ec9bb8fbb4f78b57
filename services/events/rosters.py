"""A unit's roster of its in-service party members, and a community's receipt of a member's
report (报到回执)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from services.events.base import Event, event_type


@event_type
class RosterEntrySet(Event):
    """One line of a unit's roster as an upload left it: `present` False when a later upload of
    the unit's whole roster no longer lists the phone. Keyed unit|phone: the latest wins."""

    event_type: Literal["unit_roster.entry"] = "unit_roster.entry"
    unit_id: str
    phone: str
    name: str
    party_branch: str
    position: str | None = None
    present: bool = True
    upload_id: str
    set_by: str
    # Monotonic per entry (microseconds of the upload): the table keeps the highest.
    version: int


@event_type
class ReportConfirmed(Event):
    """A community confirms that a member reported to it (报到回执): who confirmed, and when, is
    the audit trail the unit reads."""

    event_type: Literal["report.confirmed"] = "report.confirmed"
    member_id: str
    community_id: str
    unit_id: str
    reported_on: date | None = None
    confirmed_by: str
