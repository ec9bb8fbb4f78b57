"""Registry records (units, communities, stations, members) and their change events."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from services.events.base import Event, UtcDatetime, event_type

StationKind = Literal["service_station", "member_post"]


class RegistryRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    version: int  # monotonic per record: the update time in microseconds
    updated_at: UtcDatetime
    updated_by: str


class Unit(RegistryRecord):
    name: str


class Community(RegistryRecord):
    name: str


class Station(RegistryRecord):
    community_id: str
    name: str
    kind: StationKind
    lat: float | None = None
    lon: float | None = None


class Member(RegistryRecord):
    name: str
    unit_id: str
    community_id: str


@event_type
class UnitUpserted(Event):
    event_type: Literal["unit.upserted"] = "unit.upserted"
    record: Unit


@event_type
class CommunityUpserted(Event):
    event_type: Literal["community.upserted"] = "community.upserted"
    record: Community


@event_type
class StationUpserted(Event):
    event_type: Literal["station.upserted"] = "station.upserted"
    record: Station


@event_type
class MemberUpserted(Event):
    event_type: Literal["member.upserted"] = "member.upserted"
    record: Member
