"""Message processors for the sink: pure functions from one Kafka message to warehouse rows.

Each topic has one route: the event types it may carry, the table and the row. A message that
does not parse, or carries a type its topic must not carry, raises `InvalidMessage` and goes to
the dead-letter topic with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from services import topics
from services.events import (
    AnyEvent,
    CheckinScanned,
    CommunityUpserted,
    MemberUpserted,
    SessionRecorded,
    StationUpserted,
    UnitUpserted,
    parse_event,
)

Row = tuple[Any, ...]


class InvalidMessage(ValueError):
    pass


@dataclass(frozen=True)
class Route:
    table: str
    columns: tuple[str, ...]
    event_type: type[Any]
    to_row: Callable[[Any], Row]


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


_REG = ("version", "updated_at", "updated_by")

ROUTES: dict[str, Route] = {
    topics.CHECKINS.name: Route(
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
        CheckinScanned,
        _checkin_row,
    ),
    topics.SESSIONS.name: Route(
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
        SessionRecorded,
        _session_row,
    ),
    topics.UNITS.name: Route(
        "units",
        ("id", "name", *_REG),
        UnitUpserted,
        lambda e: (
            e.record.id,
            e.record.name,
            e.record.version,
            e.record.updated_at,
            e.record.updated_by,
        ),
    ),
    topics.COMMUNITIES.name: Route(
        "communities",
        ("id", "name", *_REG),
        CommunityUpserted,
        lambda e: (
            e.record.id,
            e.record.name,
            e.record.version,
            e.record.updated_at,
            e.record.updated_by,
        ),
    ),
    topics.STATIONS.name: Route(
        "stations",
        ("id", "community_id", "name", "kind", "lat", "lon", *_REG),
        StationUpserted,
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
    ),
    topics.MEMBERS.name: Route(
        "members",
        ("id", "name", "unit_id", "community_id", *_REG),
        MemberUpserted,
        lambda e: (
            e.record.id,
            e.record.name,
            e.record.unit_id,
            e.record.community_id,
            e.record.version,
            e.record.updated_at,
            e.record.updated_by,
        ),
    ),
}


def route_for_event(event: AnyEvent) -> Route:
    for route in ROUTES.values():
        if isinstance(event, route.event_type):
            return route
    raise InvalidMessage(f"no table for event type {event.event_type}")


def process(topic: str, raw: bytes | None) -> tuple[Route, Row]:
    """`topic` is the declared name, without the deployment's prefix."""
    route = ROUTES.get(topic)
    if route is None:
        raise InvalidMessage(f"no route for topic {topic!r}")
    if raw is None:
        raise InvalidMessage("empty message (tombstone) on a topic that keeps every version")
    try:
        event = parse_event(raw)
    except ValidationError as exc:
        raise InvalidMessage(f"invalid event: {exc.errors(include_url=False)}") from exc
    if not isinstance(event, route.event_type):
        raise InvalidMessage(f"event type {event.event_type} does not belong on topic {topic!r}")
    return route, route.to_row(event)
