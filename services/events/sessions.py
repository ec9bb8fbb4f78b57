"""Organizer reviews of sessions, the session agent's clock, and per-member weekly activity."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from services.events.base import Event, UtcDatetime, event_type

ReviewAction = Literal["approve", "adjust", "reject"]


@event_type
class SessionReviewed(Event):
    """An organizer's (or the admin's) decision on one session; the latest review wins.

    Keyed by the session's member on the `session-reviews` topic, so it reaches the worker that
    owns the member's sessions; `occurred_at` is when the decision was made (the audit trail).
    """

    event_type: Literal["session.reviewed"] = "session.reviewed"
    review_id: str
    session_id: str
    member_id: str
    station_community_id: str
    action: ReviewAction
    # Only for "adjust": the hours the organizer credits instead of the computed ones.
    credited_seconds: int | None = Field(default=None, ge=0, le=24 * 3600)
    reason: str = Field(default="", max_length=500)
    reviewer_role: str
    reviewer_id: str

    @model_validator(mode="after")
    def _adjust_needs_credit(self) -> SessionReviewed:
        if self.action == "adjust" and self.credited_seconds is None:
            raise ValueError("an adjust review needs credited_seconds")
        if self.action != "adjust" and self.credited_seconds is not None:
            raise ValueError("only an adjust review carries credited_seconds")
        if self.action in ("adjust", "reject") and not self.reason.strip():
            raise ValueError(f"a {self.action} review needs a reason")
        return self


@event_type
class ClockTicked(Event):
    """The session agent's clock: `occurred_at` is a lower bound of "now" for one partition.

    A worker produces one into each `session-clock` partition it owns, every few seconds. Because
    time enters the agent only through the log (ticks and scans' `received_at`), replaying the
    log closes forgotten check-outs exactly as the live run did. The topic is compacted by
    partition: only the latest tick matters, since the agent uses the maximum it has seen.
    """

    event_type: Literal["clock.ticked"] = "clock.ticked"
    partition: int = Field(ge=0)


@event_type
class MemberWeekRecorded(Event):
    """The latest totals of one member's service in one ISO week (Asia/Shanghai) at one station.

    Emitted by the session agent from its own state, keyed by member + week + station + whose
    service it was (unit, community, grid: `services.sessions.week_key`), with a
    version that grows per member: the warehouse keeps the latest, so a re-emitted or
    re-delivered record can never be added twice (unlike a materialised view summing inserts).
    """

    event_type: Literal["member_week.recorded"] = "member_week.recorded"
    member_id: str
    week: str = Field(pattern=r"^\d{4}-W\d{2}$")
    station_id: str
    station_community_id: str
    member_community_id: str
    member_grid_id: str | None = None
    unit_id: str
    sessions: int = Field(ge=0)
    credited_seconds: int = Field(ge=0)
    version: int = Field(ge=1)
    as_of: UtcDatetime
