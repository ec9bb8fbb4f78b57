"""Units' roster lines and communities' report receipts into their tables."""

from __future__ import annotations

from services import topics
from services.events import ReportConfirmed, RosterEntrySet
from services.processors.base import Route, route

ROSTERS = route(
    Route(
        topics.UNIT_ROSTERS,
        "unit_roster",
        (
            "unit_id",
            "phone",
            "name",
            "party_branch",
            "position",
            "present",
            "upload_id",
            "set_by",
            "set_at",
            "version",
        ),
        (RosterEntrySet,),
        lambda e: (
            e.unit_id,
            e.phone,
            e.name,
            e.party_branch,
            e.position,
            e.present,
            e.upload_id,
            e.set_by,
            e.occurred_at,
            e.version,
        ),
    )
)

RECEIPTS = route(
    Route(
        topics.REPORT_RECEIPTS,
        "report_receipts",
        (
            "event_id",
            "member_id",
            "community_id",
            "unit_id",
            "reported_on",
            "confirmed_by",
            "confirmed_at",
        ),
        (ReportConfirmed,),
        lambda e: (
            e.event_id,
            e.member_id,
            e.community_id,
            e.unit_id,
            e.reported_on,
            e.confirmed_by,
            e.occurred_at,
        ),
    )
)
