"""The registry's kinds of entry, its errors, and what a change is (ids, authors, diffs)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from services import topics
from services.events import (
    Community,
    CommunityUpserted,
    Event,
    FieldChange,
    Grid,
    GridUpserted,
    Member,
    MemberUpserted,
    RegistryRecord,
    Station,
    StationKindDef,
    StationKindUpserted,
    StationUpserted,
    Town,
    TownUpserted,
    Unit,
    UnitUpserted,
)
from services.tokens import Principal

# The two kinds every county has; a county's admin may add more (POST /v1/station-kinds).
BUILTIN_STATION_KINDS: dict[str, str] = {
    "service_station": "党群服务站",
    "member_post": "党员驿站",
}


class NotFound(LookupError):
    def __init__(self, kind: str, id_: str) -> None:
        super().__init__(f"{kind} {id_!r} does not exist")
        self.kind = kind
        self.id = id_


class RegistryError(Exception):
    """A refused change or read; the API turns it into `{"error": {code, message}}`."""

    status = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Invalid(RegistryError):
    status = 422


class Conflict(RegistryError):
    status = 409


class Forbidden(RegistryError):
    status = 403


@dataclass(frozen=True)
class Kind:
    name: str  # "station_kind": used in event ids, history rows and error codes
    table: str
    model: type[RegistryRecord]
    event: type[Event]
    topic: topics.TopicSpec
    prefix: str  # of new ids

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")


UNIT = Kind("unit", "units", Unit, UnitUpserted, topics.UNITS, "unit")
TOWN = Kind("town", "towns", Town, TownUpserted, topics.TOWNS, "town")
COMMUNITY = Kind(
    "community", "communities", Community, CommunityUpserted, topics.COMMUNITIES, "comm"
)
GRID = Kind("grid", "grids", Grid, GridUpserted, topics.GRIDS, "grid")
STATION_KIND = Kind(
    "station_kind", "station_kinds", StationKindDef, StationKindUpserted, topics.STATION_KINDS, ""
)
STATION = Kind("station", "stations", Station, StationUpserted, topics.STATIONS, "st")
MEMBER = Kind("member", "members", Member, MemberUpserted, topics.MEMBERS, "mem")
KINDS: dict[str, Kind] = {
    k.name: k for k in (UNIT, TOWN, COMMUNITY, GRID, STATION_KIND, STATION, MEMBER)
}

# Fields a record carries for bookkeeping; they change on every version and are not "changes".
_BOOKKEEPING = ("id", "version", "updated_at", "updated_by")


def new_id(prefix: str) -> str:
    # Opaque and unguessable: ids appear in URLs and QR codes.
    return f"{prefix}_{secrets.token_hex(8)}"


def actor(p: Principal) -> str:
    """How a change's author is recorded: role and subject, e.g. `organizer:comm_…`."""
    return f"{p.role}:{p.subject_id}"


def _json(value: Any) -> str:
    return json.dumps(value.isoformat() if isinstance(value, date) else value, ensure_ascii=False)


def diff(before: RegistryRecord | None, after: RegistryRecord) -> list[FieldChange]:
    """The fields that differ; on creation every field that has a value."""
    out = []
    for f in type(after).model_fields:
        if f in _BOOKKEEPING:
            continue
        a = getattr(after, f)
        if before is None:
            if a is not None:
                out.append(FieldChange(field=f, before=None, after=_json(a)))
            continue
        b = getattr(before, f)
        if a != b:
            out.append(FieldChange(field=f, before=_json(b), after=_json(a)))
    return out


@dataclass(frozen=True)
class Change:
    kind: Kind
    before: RegistryRecord | None
    after: RegistryRecord


@dataclass(frozen=True)
class HistoryEntry:
    version: int
    operation: str
    changed_by: str
    changed_at: datetime
    changes: list[tuple[str, Any, Any]]


def builtin_station_kind(code: str) -> StationKindDef:
    return StationKindDef(
        id=code,
        label=BUILTIN_STATION_KINDS[code],
        version=0,
        updated_at=datetime(2022, 1, 1, tzinfo=UTC),
        updated_by="builtin",
    )
