"""Scans and the sessions made from them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from services import counting
from services.events.base import Event, UtcDatetime, event_type

# The printed poster's token, or the station screen's rotating code.
ScanProof = Literal["poster", "screen"]


@event_type
class CheckinScanned(Event):
    """A member scanned a station's code. `occurred_at` is when the phone scanned."""

    event_type: Literal["checkin.scanned"] = "checkin.scanned"
    member_id: str
    station_id: str
    # Where the station is, and the member's unit and community at the moment of the scan:
    # credit stays where and when it was earned even if the member moves later.
    station_community_id: str
    unit_id: str
    member_community_id: str
    # The member's level-4 grid at the moment of the scan (None while the member has none).
    member_grid_id: str | None = None
    action: Literal["in", "out"]
    client_event_id: str
    received_at: UtcDatetime
    # What the phone scanned: the printed poster's token or the station screen's rotating code
    # (whose window the API checked against `occurred_at`). None in scans recorded before.
    proof: ScanProof | None = None


SessionStatus = Literal["open", "closed", "auto_closed", "capped", "adjusted", "rejected"]


@event_type
class SessionRecorded(Event):
    """The latest revision of one volunteer session; a higher revision replaces a lower one."""

    event_type: Literal["session.recorded"] = "session.recorded"
    session_id: str
    revision: int = Field(ge=1)
    member_id: str
    unit_id: str
    member_community_id: str
    station_id: str
    station_community_id: str
    start: UtcDatetime
    end: UtcDatetime | None
    credited_seconds: int = Field(ge=0)
    status: SessionStatus
    flags: list[str] = Field(default_factory=list)
    checkin_event_id: str | None
    checkout_event_id: str | None
    # The member's level-4 grid when the session began (from the opening scan), for grid rollups.
    member_grid_id: str | None = None
    # A revision that withdraws the session: a late offline scan re-paired the member's scans and
    # this session no longer exists (e.g. a check-out without check-in whose check-in arrived
    # late). Kept as a revision, not a delete, so every copy downstream converges.
    voided: bool = False
    # Scans this session took in besides its check-in and check-out: a double tap within the
    # repeat window, a check-in again at the same station while the session is open. With
    # them every scan the rules applied is named by a session, which the reconciliation of raw
    # scans against sessions (services.reconcile) relies on. Empty in records written before.
    absorbed_event_ids: list[str] = Field(default_factory=list)

    @property
    def counted(self) -> bool:
        """Whether the session counts as a service (sessions count, weekly target): the rule of
        `services.counting.counted`.

        Open, rejected and voided sessions never count; an anomaly (a check-out without a
        check-in) counts only once an organizer adjusted it; a session credited below the weekly
        minimum (`below_minimum`) only once an organizer approved or adjusted it. Hours are `credited_seconds` of
        every non-voided, non-open, non-rejected session (an anomaly credits 0 until adjusted).
        """
        return counting.counted(self.status, self.flags, self.voided)
