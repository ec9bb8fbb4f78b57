"""Raw scans and sessions into their tables."""

from __future__ import annotations

from services import topics
from services.events import CheckinScanned, SessionRecorded
from services.processors.base import Route, Row, route


def _checkin_row(e: CheckinScanned) -> Row:
    return (
        e.event_id,
        e.member_id,
        e.station_id,
        e.station_community_id,
        e.unit_id,
        e.member_community_id,
        e.action,
        e.client_event_id,
        e.occurred_at,
        e.received_at,
    )


def _session_row(e: SessionRecorded) -> Row:
    return (
        e.session_id,
        e.revision,
        e.member_id,
        e.unit_id,
        e.member_community_id,
        e.station_id,
        e.station_community_id,
        e.start,
        e.end,
        e.credited_seconds,
        e.status,
        e.flags,
        e.checkin_event_id,
        e.checkout_event_id,
    )


CHECKINS = route(
    Route(
        topics.CHECKINS,
        "checkins",
        (
            "event_id",
            "member_id",
            "station_id",
            "station_community_id",
            "unit_id",
            "member_community_id",
            "action",
            "client_event_id",
            "scanned_at",
            "received_at",
        ),
        (CheckinScanned,),
        _checkin_row,
    )
)

SESSIONS = route(
    Route(
        topics.SESSIONS,
        "sessions",
        (
            "session_id",
            "revision",
            "member_id",
            "unit_id",
            "member_community_id",
            "station_id",
            "station_community_id",
            "start",
            "end",
            "credited_seconds",
            "status",
            "flags",
            "checkin_event_id",
            "checkout_event_id",
        ),
        (SessionRecorded,),
        _session_row,
    )
)
