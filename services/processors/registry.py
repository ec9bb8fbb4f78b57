"""Registry change events into the latest-version tables."""

from __future__ import annotations

from services import topics
from services.events import (
    CommunityUpserted,
    MemberUpserted,
    StationUpserted,
    UnitUpserted,
)
from services.processors.base import Route, route

_REG = ("version", "updated_at", "updated_by")

UNITS = route(
    Route(
        topics.UNITS,
        "units",
        ("id", "name", *_REG),
        (UnitUpserted,),
        lambda e: (
            e.record.id,
            e.record.name,
            e.record.version,
            e.record.updated_at,
            e.record.updated_by,
        ),
    )
)

COMMUNITIES = route(
    Route(
        topics.COMMUNITIES,
        "communities",
        ("id", "name", *_REG),
        (CommunityUpserted,),
        lambda e: (
            e.record.id,
            e.record.name,
            e.record.version,
            e.record.updated_at,
            e.record.updated_by,
        ),
    )
)

STATIONS = route(
    Route(
        topics.STATIONS,
        "stations",
        ("id", "community_id", "name", "kind", "lat", "lon", *_REG),
        (StationUpserted,),
        lambda e: (
            e.record.id,
            e.record.community_id,
            e.record.name,
            e.record.kind,
            e.record.lat,
            e.record.lon,
            e.record.version,
            e.record.updated_at,
            e.record.updated_by,
        ),
    )
)

MEMBERS = route(
    Route(
        topics.MEMBERS,
        "members",
        ("id", "name", "unit_id", "community_id", *_REG),
        (MemberUpserted,),
        lambda e: (
            e.record.id,
            e.record.name,
            e.record.unit_id,
            e.record.community_id,
            e.record.version,
            e.record.updated_at,
            e.record.updated_by,
        ),
    )
)
