"""Pairing scans into volunteer sessions: a pure function of one member's state and one scan.

The faust agent keeps `MemberState` per member in a changelog-backed table and calls `apply`;
everything here is deterministic given the log, so replaying it rebuilds the same sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from services.events import CheckinScanned, SessionRecorded, UtcDatetime, derived_id
from services.timeutil import end_of_local_day

# How many recent event ids a member's state remembers to drop redelivered scans. A duplicate
# arrives close to its original (a producer retry, a phone re-sending its queue), never after
# dozens of the same member's later scans.
RECENT_IDS = 64


@dataclass(frozen=True)
class SessionRules:
    # A second identical scan (same station, same action) this soon after the first is ignored.
    repeat_window: timedelta = timedelta(minutes=2)
    # A session longer than this is credited this much and flagged.
    cap: timedelta = timedelta(hours=8)
    # A session still open this long after the end of its check-in's local day had its
    # check-out forgotten: it is closed at the end of that day with this credit, and flagged.
    # The grace lets a real night duty (23:00 to 01:00) count in full.
    forgotten_checkout_grace: timedelta = timedelta(hours=4)
    forgotten_checkout_credit: timedelta = timedelta(0)

    def deadline(self, start: datetime) -> datetime:
        return end_of_local_day(start) + self.forgotten_checkout_grace


class OpenSession(BaseModel):
    model_config = ConfigDict(frozen=True)

    session_id: str
    revision: int
    station_id: str
    station_community_id: str
    unit_id: str
    member_community_id: str
    start: UtcDatetime
    checkin_event_id: str | None


class MemberState(BaseModel):
    model_config = ConfigDict(frozen=True)

    open: OpenSession | None = None
    recent_event_ids: tuple[str, ...] = ()
    last_station_id: str | None = None
    last_action: str | None = None
    last_scanned_at: UtcDatetime | None = None


def _record(
    scan: CheckinScanned,
    o: OpenSession,
    *,
    revision: int,
    end: datetime | None,
    credited: timedelta,
    status: str,
    flags: list[str],
    checkout_event_id: str | None,
) -> SessionRecorded:
    return SessionRecorded(
        event_id=derived_id("session", o.session_id, str(revision)),
        occurred_at=end or o.start,
        session_id=o.session_id,
        revision=revision,
        member_id=scan.member_id,
        unit_id=o.unit_id,
        member_community_id=o.member_community_id,
        station_id=o.station_id,
        station_community_id=o.station_community_id,
        start=o.start,
        end=end,
        credited_seconds=int(credited.total_seconds()),
        status=status,
        flags=flags,
        checkin_event_id=o.checkin_event_id,
        checkout_event_id=checkout_event_id,
    )


def _close(
    scan: CheckinScanned, o: OpenSession, end: datetime, rules: SessionRules, extra: list[str]
) -> SessionRecorded:
    if end >= rules.deadline(o.start):
        # The check-out came after the day was over: the member forgot to check out that day.
        return _record(
            scan,
            o,
            revision=o.revision + 1,
            end=end_of_local_day(o.start),
            credited=rules.forgotten_checkout_credit,
            status="auto_closed",
            flags=[*extra, "forgotten_checkout"],
            checkout_event_id=None,
        )
    duration = end - o.start
    if duration > rules.cap:
        return _record(
            scan,
            o,
            revision=o.revision + 1,
            end=end,
            credited=rules.cap,
            status="capped",
            flags=[*extra, "over_cap"],
            checkout_event_id=scan.event_id,
        )
    return _record(
        scan,
        o,
        revision=o.revision + 1,
        end=end,
        credited=duration,
        status="closed",
        flags=extra,
        checkout_event_id=scan.event_id,
    )


def _open(scan: CheckinScanned) -> OpenSession:
    return OpenSession(
        session_id=derived_id("session", scan.event_id),
        revision=1,
        station_id=scan.station_id,
        station_community_id=scan.station_community_id,
        unit_id=scan.unit_id,
        member_community_id=scan.member_community_id,
        start=scan.occurred_at,
        checkin_event_id=scan.event_id,
    )


def apply(
    state: MemberState, scan: CheckinScanned, rules: SessionRules
) -> tuple[MemberState, list[SessionRecorded]]:
    if scan.event_id in state.recent_event_ids:
        return state, []
    at = scan.occurred_at
    recent = (*state.recent_event_ids, scan.event_id)[-RECENT_IDS:]
    seen = state.model_copy(
        update={
            "recent_event_ids": recent,
            "last_station_id": scan.station_id,
            "last_action": scan.action,
            "last_scanned_at": at,
        }
    )
    if (
        state.last_scanned_at is not None
        and state.last_station_id == scan.station_id
        and state.last_action == scan.action
        and abs(at - state.last_scanned_at) < rules.repeat_window
    ):
        return seen, []

    out: list[SessionRecorded] = []
    o = state.open
    if scan.action == "in":
        if o is not None:
            if at < rules.deadline(o.start) and o.station_id == scan.station_id:
                # Checked in again at the same station the same day: the session goes on.
                return seen, []
            out.append(_close(scan, o, at, rules, ["closed_by_next_checkin"]))
        new = _open(scan)
        out.append(
            _record(
                scan,
                new,
                revision=1,
                end=None,
                credited=timedelta(0),
                status="open",
                flags=[],
                checkout_event_id=None,
            )
        )
        return seen.model_copy(update={"open": new}), out

    if o is None:
        anomaly = _open(scan).model_copy(update={"checkin_event_id": None})
        out.append(
            _record(
                scan,
                anomaly,
                revision=1,
                end=at,
                credited=timedelta(0),
                status="closed",
                flags=["checkout_without_checkin"],
                checkout_event_id=scan.event_id,
            )
        )
        return seen, out
    if at < o.start:
        # A check-out stamped before its check-in: a phone clock or an offline queue out of
        # order. Credit nothing and leave it to the organizer.
        out.append(
            _record(
                scan,
                o,
                revision=o.revision + 1,
                end=o.start,
                credited=timedelta(0),
                status="closed",
                flags=["checkout_before_checkin"],
                checkout_event_id=scan.event_id,
            )
        )
    else:
        out.append(_close(scan, o, at, rules, []))
    return seen.model_copy(update={"open": None}), out
