"""Registry change events into the latest-version tables, and every change into its history."""

from __future__ import annotations

from typing import Any

from services import topics
from services.events import (
    CommunityUpserted,
    GridUpserted,
    MemberUpserted,
    RegistryChanged,
    StationKindUpserted,
    StationUpserted,
    TownUpserted,
    UnitUpserted,
)
from services.processors.base import Route, Row, route


def _record_route(spec: topics.TopicSpec, table: str, event: type[Any]) -> Route:
    # A table's columns are exactly its record's fields, so adding a field to a record and a
    # column in a migration is the whole change; the row follows the field order.
    columns = tuple(event.model_fields["record"].annotation.model_fields)

    def to_row(e: Any) -> Row:
        return tuple(getattr(e.record, c) for c in columns)

    return route(Route(spec, table, columns, (event,), to_row))


UNITS = _record_route(topics.UNITS, "units", UnitUpserted)
COMMUNITIES = _record_route(topics.COMMUNITIES, "communities", CommunityUpserted)
TOWNS = _record_route(topics.TOWNS, "towns", TownUpserted)
GRIDS = _record_route(topics.GRIDS, "grids", GridUpserted)
STATION_KINDS = _record_route(topics.STATION_KINDS, "station_kinds", StationKindUpserted)
STATIONS = _record_route(topics.STATIONS, "stations", StationUpserted)
MEMBERS = _record_route(topics.MEMBERS, "members", MemberUpserted)


def _history_row(e: RegistryChanged) -> Row:
    return (
        e.event_id,
        e.entity_kind,
        e.entity_id,
        e.version,
        e.operation,
        e.changed_by,
        e.occurred_at,
        [c.field for c in e.changes],
        [c.before for c in e.changes],
        [c.after for c in e.changes],
    )


HISTORY = route(
    Route(
        topics.REGISTRY_HISTORY,
        "registry_history",
        (
            "event_id",
            "entity_kind",
            "entity_id",
            "version",
            "operation",
            "changed_by",
            "changed_at",
            "fields",
            "before",
            "after",
        ),
        (RegistryChanged,),
        _history_row,
    )
)
