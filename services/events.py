"""The event contract: every message on Kafka is one of these models, on both sides of the log.

Each event carries `event_id`, `event_type`, `schema_version` and `occurred_at` (UTC). Ids are
deterministic where a retry must map to the same event (a re-sent scan, a re-emitted session),
which is what makes every consumer's duplicates harmless.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

# Namespace for ids derived from other ids (uuid5), fixed forever: changing it would re-key
# every derived id and break idempotency against data already stored.
ID_NAMESPACE = uuid.UUID("6f1c2d7e-4b5a-4c3e-9d2f-1a8b7c6d5e4f")


def derived_id(*parts: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, "\x1f".join(parts)))


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a time zone offset")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_to_utc)]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str
    event_type: str
    schema_version: int = 1
    occurred_at: UtcDatetime

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class CheckinScanned(Event):
    """A member scanned a station's code. `occurred_at` is when the phone scanned."""

    event_type: Literal["checkin.scanned"] = "checkin.scanned"
    member_id: str
    station_id: str
    # Where the station is, and the member's unit and community at the moment of the scan:
    # credit stays where and when it was earned even if the member moves later.
    station_community_id: str
    unit_id: str
    member_community_id: str
    action: Literal["in", "out"]
    client_event_id: str
    received_at: UtcDatetime


SessionStatus = Literal["open", "closed", "auto_closed", "capped", "adjusted", "rejected"]


class SessionRecorded(Event):
    """The latest revision of one volunteer session; a higher revision replaces a lower one."""

    event_type: Literal["session.recorded"] = "session.recorded"
    session_id: str
    revision: int = Field(ge=1)
    member_id: str
    unit_id: str
    member_community_id: str
    station_id: str
    station_community_id: str
    start: UtcDatetime
    end: UtcDatetime | None
    credited_seconds: int = Field(ge=0)
    status: SessionStatus
    flags: list[str] = Field(default_factory=list)
    checkin_event_id: str | None
    checkout_event_id: str | None


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


class UnitUpserted(Event):
    event_type: Literal["unit.upserted"] = "unit.upserted"
    record: Unit


class CommunityUpserted(Event):
    event_type: Literal["community.upserted"] = "community.upserted"
    record: Community


class StationUpserted(Event):
    event_type: Literal["station.upserted"] = "station.upserted"
    record: Station


class MemberUpserted(Event):
    event_type: Literal["member.upserted"] = "member.upserted"
    record: Member


AnyEvent = Annotated[
    CheckinScanned
    | SessionRecorded
    | UnitUpserted
    | CommunityUpserted
    | StationUpserted
    | MemberUpserted,
    Field(discriminator="event_type"),
]

_any_event: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def parse_event(raw: bytes | str) -> AnyEvent:
    """Decode one message; raises pydantic.ValidationError naming what is wrong."""
    return _any_event.validate_json(raw)
