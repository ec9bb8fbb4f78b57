"""Registry records (units, communities, grids, station kinds, stations, members), their change
events, and the history event every change also emits."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from services.events.base import Event, UtcDatetime, event_type

# A station kind is a code from the station-kind list: two built in, more added by a county's
# admin (services.registry.BUILTIN_STATION_KINDS); existence is checked by the registry.
StationKind = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
MemberStatus = Literal["active", "transferred", "left"]
# What a station does with a poster scan dated long before it arrived (services.sessions).
BackdatedPosterPolicy = Literal["flag", "refuse"]
GridLevel = Literal[4, 5]


class RegistryRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    version: int  # monotonic per record: the update time in microseconds
    updated_at: UtcDatetime
    updated_by: str


class Unit(RegistryRecord):
    name: str


class Town(RegistryRecord):
    """A town (镇) or subdistrict (街道): the county's level above its communities."""

    name: str


class Community(RegistryRecord):
    name: str
    # Shown to members who need the community (no activation code, status changed); a landline
    # or a mobile, as the community writes it. Added later: the default keeps old events valid.
    phone: Annotated[str, StringConstraints(pattern=r"^[0-9+() -]{3,32}$")] | None = None
    # Named on the records of service it issues (the civil-affairs certificate template: its
    # person in charge and the handler). Added later (issue 15): old events stay valid.
    person_in_charge: str | None = None
    handler: str | None = None
    # The town the community lies in (issue 15); None for communities entered before towns.
    town_id: str | None = None


class Grid(RegistryRecord):
    """A level-4 grid inside a community, or a level-5 grid (a building, a courtyard) inside a
    level-4 grid of the same community."""

    community_id: str
    name: str
    level: GridLevel
    parent_id: str | None = None


class StationKindDef(RegistryRecord):
    """A kind of station; `id` is the code stored on stations (e.g. `service_station`)."""

    label: str


class Station(RegistryRecord):
    community_id: str
    name: str
    kind: StationKind
    lat: float | None = None
    lon: float | None = None
    # Presence policy (issue 17), added later: the defaults keep older events parseable and
    # older stations as they were. `accepts_poster` False: only the screen's rotating code
    # checks in here. `backdated_poster`: a poster scan dated more than POSTER_BACKDATE_S before
    # it arrived is flagged for the organizer's review, or refused.
    accepts_poster: bool = True
    backdated_poster: BackdatedPosterPolicy = "flag"
    # Screen keys carry the generation they were issued under; revoking bumps it.
    screen_key_generation: int = 0


class Member(RegistryRecord):
    name: str
    unit_id: str
    community_id: str
    # Added after the first release: defaults keep the events already in the log parseable.
    phone: str | None = None
    grid_id: str | None = None
    party_branch: str | None = None
    reported_on: date | None = None
    status: MemberStatus = "active"
    # The member's team leader (a member of the same community, set by its organizer), who may
    # check the member in with the team (POST /v1/team-checkins).
    team_leader_id: str | None = None
    # The national volunteer number (志愿者编号) the national volunteer service information system
    # issued, set by the member or their unit's HR (issue 15); never a citizen ID number.
    volunteer_no: str | None = None


@event_type
class UnitUpserted(Event):
    event_type: Literal["unit.upserted"] = "unit.upserted"
    record: Unit


@event_type
class TownUpserted(Event):
    event_type: Literal["town.upserted"] = "town.upserted"
    record: Town


@event_type
class CommunityUpserted(Event):
    event_type: Literal["community.upserted"] = "community.upserted"
    record: Community


@event_type
class GridUpserted(Event):
    event_type: Literal["grid.upserted"] = "grid.upserted"
    record: Grid


@event_type
class StationKindUpserted(Event):
    event_type: Literal["station_kind.upserted"] = "station_kind.upserted"
    record: StationKindDef


@event_type
class StationUpserted(Event):
    event_type: Literal["station.upserted"] = "station.upserted"
    record: Station


@event_type
class MemberUpserted(Event):
    event_type: Literal["member.upserted"] = "member.upserted"
    record: Member
    # The version (µs) of the member's latest change of unit, community, grid or status: 0 when
    # none since creation, None when the writer did not know (values written before it was
    # carried, issue 16). On the event, not the record: it is what a check-in edge reads from
    # the compacted topic instead of the whole `registry.history` (services.edge_feed); the
    # warehouse has it in `registry_history` already.
    moved_at: int | None = None


class FieldChange(BaseModel):
    """One field's value before and after, JSON-encoded (`before` is None on creation)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    before: str | None
    after: str | None


@event_type
class RegistryChanged(Event):
    """Who changed which fields of which entry, and when: the registry's audit trail.

    The compacted registry topics keep only the latest version of an entry; this event is on a
    topic that keeps everything, so the history survives compaction."""

    event_type: Literal["registry.changed"] = "registry.changed"
    entity_kind: str
    entity_id: str
    version: int
    operation: Literal["create", "update"]
    changed_by: str
    changes: list[FieldChange]
