"""Scans and the sessions made from them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from services import counting
from services.events.base import Event, UtcDatetime, event_type

# The printed poster's token, or the station screen's rotating code.
ScanProof = Literal["poster", "screen"]
# A scan made for the member by someone else: an organizer or a station's tablet (代签到,
# `assisted`), or the member's team leader checking in the group (`team`).
AssistKind = Literal["assisted", "team"]

# Optional fields added with assisted check-in and the anomaly flags: left out of the message
# when unset, so an ordinary scan is the same bytes as before and a worker of the previous
# release (whose events forbid unknown fields) still reads it during a rolling upgrade.
_OPTIONAL_SCAN_FIELDS = frozenset({"device_id", "assist", "assisted_by", "activity_id"})


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
    # The phone's own id for this browser (kept in its local storage, sent with each scan): one
    # device scanning for several members is an anomaly flag (services.anomalies). None for
    # scans made by someone else (assisted, team) and in scans recorded before.
    device_id: str | None = Field(default=None, max_length=64)
    # Who made the scan when it was not the member: `assist` says how, `assisted_by` who
    # (`organizer:<community>`, `station:<station>` for its tablet, `member:<leader>`).
    assist: AssistKind | None = None
    assisted_by: str | None = Field(default=None, max_length=120)
    # A team check-in for an activity (a slot of /v1/activities): stored as given, not checked.
    activity_id: str | None = Field(default=None, max_length=64)

    def to_bytes(self) -> bytes:
        unset = {f for f in _OPTIONAL_SCAN_FIELDS if getattr(self, f) is None}
        return self.model_dump_json(exclude=unset).encode()


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
