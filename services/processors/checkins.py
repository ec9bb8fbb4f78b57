"""Raw scans, sessions, reviews and weekly totals into their tables."""

from __future__ import annotations

from services import topics
from services.events import CheckinScanned, MemberWeekRecorded, SessionRecorded, SessionReviewed
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
        e.device_id,
        e.assist or "",
        e.assisted_by,
        e.activity_id,
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
        e.member_grid_id,
        int(e.voided),
        int(e.counted),
        e.absorbed_event_ids,
    )


def _review_row(e: SessionReviewed) -> Row:
    return (
        e.review_id,
        e.session_id,
        e.member_id,
        e.station_community_id,
        e.action,
        e.credited_seconds,
        e.reason,
        e.reviewer_role,
        e.reviewer_id,
        e.occurred_at,
    )


def _member_week_row(e: MemberWeekRecorded) -> Row:
    return (
        e.week,
        e.member_id,
        e.station_id,
        e.station_community_id,
        e.member_community_id,
        e.member_grid_id,
        e.unit_id,
        e.sessions,
        e.credited_seconds,
        e.version,
        e.as_of,
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
            "device_id",
            "assist",
            "assisted_by",
            "activity_id",
            "kafka_partition",
            "kafka_offset",
        ),
        (CheckinScanned,),
        _checkin_row,
        positioned=True,
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
            "member_grid_id",
            "voided",
            "counted",
            "absorbed_event_ids",
        ),
        (SessionRecorded,),
        _session_row,
    )
)

SESSION_REVIEWS = route(
    Route(
        topics.SESSION_REVIEWS,
        "session_reviews",
        (
            "review_id",
            "session_id",
            "member_id",
            "station_community_id",
            "action",
            "credited_seconds",
            "reason",
            "reviewer_role",
            "reviewer_id",
            "reviewed_at",
        ),
        (SessionReviewed,),
        _review_row,
    )
)

MEMBER_WEEKS = route(
    Route(
        topics.MEMBER_WEEKS,
        "member_weeks",
        (
            "week",
            "member_id",
            "station_id",
            "station_community_id",
            "member_community_id",
            "member_grid_id",
            "unit_id",
            "sessions",
            "credited_seconds",
            "version",
            "as_of",
        ),
        (MemberWeekRecorded,),
        _member_week_row,
    )
)
