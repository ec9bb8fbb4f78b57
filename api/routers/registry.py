"""Create, read, update (PATCH), list and history for every registry kind, plus bulk creation.

The rules (validation and who may do what) live in `services.registry`; this module maps HTTP
to them. Lists are `{"items": [...], "total": N}`, paged with `limit` (≤ 500) and `offset`, and
always confined to the caller's scope whatever filter is passed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from api.deps import AccessLog, Caller, Ctx, sees_station_token
from api.errors import ApiError
from api.openapi import errors
from api.schemas import CommunityIn, StationIn, UnitIn
from services.events import (
    BackdatedPosterPolicy,
    Community,
    Grid,
    Member,
    MemberStatus,
    RegistryRecord,
    Station,
    StationKind,
    StationKindDef,
    Town,
    Unit,
)
from services.privacy import masked_change, masked_member
from services.qr import station_url
from services.registry import MAX_BATCH, RegistryError
from services.settings import Settings
from services.text import Line

router = APIRouter(prefix="/v1", tags=["registry"])

T = TypeVar("T")
Limit = Annotated[int, Query(ge=1, le=500, description="page size (max 500)")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="items to skip")]
Name = Field(min_length=1, max_length=100)
OptName = Field(default=None, min_length=1, max_length=100)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class GridIn(_In):
    community_id: str
    name: Line = Name
    level: Literal[4, 5]
    parent_id: str | None = Field(default=None, description="the level-4 grid of a level-5 grid")


class StationKindIn(_In):
    code: StationKind = Field(description="stored on stations, e.g. `neighbourhood_center`")
    label: Line = Field(min_length=1, max_length=20, description="Chinese label, e.g. 邻里中心")


class MemberCreate(_In):
    name: Line = Name
    unit_id: str
    community_id: str
    phone: str | None = Field(default=None, description="11-digit mainland mobile")
    grid_id: str | None = None
    party_branch: Line | None = Field(default=None, max_length=100)
    reported_on: date | None = Field(default=None, description="报到日期, YYYY-MM-DD")
    status: MemberStatus = "active"
    team_leader_id: str | None = Field(
        default=None, description="the member's team leader: a member of the same community"
    )


# PATCH bodies: every field optional; a field sent as null clears an optional value. Fields
# that may not change (a grid's or station's community, a grid's level) are not accepted.
class NamePatch(_In):
    name: Line | None = OptName


class CommunityPatch(_In):
    name: Line | None = OptName
    phone: str | None = Field(default=None, pattern=r"^[0-9+() -]{3,32}$")
    person_in_charge: Line | None = Field(default=None, min_length=1, max_length=50)
    handler: Line | None = Field(default=None, min_length=1, max_length=50)
    town_id: str | None = Field(default=None, description="the town it lies in; null: none")


class TownIn(_In):
    name: Line = Name


class GridPatch(_In):
    name: Line | None = OptName
    parent_id: str | None = None


class StationKindPatch(_In):
    label: Line | None = Field(default=None, min_length=1, max_length=20)


class StationPatch(_In):
    name: Line | None = OptName
    kind: StationKind | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    accepts_poster: StrictBool | None = Field(
        default=None, description="false: only the station screen's rotating code checks in"
    )
    backdated_poster: BackdatedPosterPolicy | None = Field(
        default=None,
        description="a poster scan dated more than POSTER_BACKDATE_S before it arrived:"
        " `flag` (for the organizer's review) or `refuse`",
    )


class MemberPatch(_In):
    name: Line | None = OptName
    unit_id: str | None = None
    community_id: str | None = None
    phone: str | None = None
    grid_id: str | None = None
    party_branch: Line | None = Field(default=None, max_length=100)
    reported_on: date | None = None
    status: MemberStatus | None = None
    team_leader_id: str | None = None


class StationView(Station):
    qr_url: str | None = Field(
        default=None,
        description="the poster's check-in link ({PUBLIC_URL}/s/{station_token}): only in answers"
        " to the station's organizer and the admin, null for everyone else",
    )


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int


class Bulk(_In, Generic[T]):
    items: list[T] = Field(min_length=1, max_length=MAX_BATCH)


class BulkOut(BaseModel, Generic[T]):
    items: list[T]


class ChangeOut(BaseModel):
    field: str
    before: Any
    after: Any


class HistoryItem(BaseModel):
    version: int
    operation: str
    changed_by: str
    changed_at: datetime
    changes: list[ChangeOut]


@contextmanager
def _rules() -> Iterator[None]:
    try:
        yield
    except RegistryError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc


def _station(ctx: Ctx, caller: Caller, s: RegistryRecord) -> StationView:
    assert isinstance(s, Station)
    return StationView(**s.model_dump(), qr_url=_qr_url(ctx.settings, caller, s))


def _qr_url(settings: Settings, caller: Caller, s: Station) -> str | None:
    # The signed token lets its holder check in from anywhere: the access policy decides who
    # sees it (services.access, `station_token`), the station itself is readable more widely.
    return station_url(settings, s.id) if sees_station_token(caller, s.community_id) else None


def _create(ctx: Ctx, caller: Caller, kind: str, body: BaseModel) -> RegistryRecord:
    with _rules():
        return masked_member(ctx.registry.create(kind, body.model_dump(), caller))


def _bulk(ctx: Ctx, caller: Caller, kind: str, body: Bulk[Any]) -> list[RegistryRecord]:
    with _rules():
        created = ctx.registry.create_many(kind, [i.model_dump() for i in body.items], caller)
    return [masked_member(r) for r in created]


def _patch(ctx: Ctx, caller: Caller, kind: str, id_: str, body: BaseModel) -> RegistryRecord:
    with _rules():
        return masked_member(
            ctx.registry.update(kind, id_, body.model_dump(exclude_unset=True), caller)
        )


def _page(
    ctx: Ctx,
    caller: Caller,
    kind: str,
    limit: int,
    offset: int,
    filters: dict[str, str | None] | None = None,
    q: str | None = None,
) -> dict[str, Any]:
    with _rules():  # a role that may not list this kind at all: 403
        items, total = ctx.registry.page(kind, caller, filters or {}, q, limit, offset)
    # Phones masked in every answer (services.privacy); only a logged reveal shows one in full.
    return {"items": [masked_member(i) for i in items], "total": total}


def _history(
    ctx: Ctx, caller: Caller, kind: str, id_: str, limit: int, offset: int
) -> dict[str, Any]:
    entries, total = ctx.registry.history(kind, id_, caller, limit, offset)
    return {
        "items": [
            HistoryItem(
                version=e.version,
                operation=e.operation,
                changed_by=e.changed_by,
                changed_at=e.changed_at,
                changes=[
                    ChangeOut(field=f, before=shown[0], after=shown[1])
                    for f, b, a in e.changes
                    for shown in [masked_change(kind, f, b, a)]
                ],
            )
            for e in entries
        ],
        "total": total,
    }


# ---- units ----------------------------------------------------------------------------------


@router.post("/units", response_model=Unit, status_code=201, responses=errors(409))
def create_unit(body: UnitIn, caller: Caller, ctx: Ctx) -> RegistryRecord:
    """Admin only."""
    return _create(ctx, caller, "unit", body)


@router.post("/units/bulk", response_model=BulkOut[Unit], status_code=201, responses=errors(409))
def create_units(body: Bulk[UnitIn], caller: Caller, ctx: Ctx) -> dict[str, Any]:
    """Admin only; all or nothing."""
    return {"items": _bulk(ctx, caller, "unit", body)}


@router.get("/units", response_model=Page[Unit])
def list_units(
    caller: Caller, ctx: Ctx, q: str | None = None, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    """Every unit (the county's directory), paged; any signed-in caller."""
    return _page(ctx, caller, "unit", limit, offset, q=q)


@router.get("/units/{unit_id}", response_model=Unit)
def get_unit(unit_id: str, caller: Caller, ctx: Ctx) -> RegistryRecord:
    """One unit; any signed-in caller."""
    return ctx.registry.get("unit", unit_id, caller, fresh=True)


@router.patch("/units/{unit_id}", response_model=Unit, responses=errors(409))
def update_unit(unit_id: str, body: NamePatch, caller: Caller, ctx: Ctx) -> RegistryRecord:
    """Admin only: rename a unit."""
    return _patch(ctx, caller, "unit", unit_id, body)


@router.get("/units/{unit_id}/history", response_model=Page[HistoryItem])
def unit_history(
    unit_id: str, caller: Caller, ctx: Ctx, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    """Who changed which fields of the unit, before and after, when."""
    return _history(ctx, caller, "unit", unit_id, limit, offset)


# ---- towns ----------------------------------------------------------------------------------


@router.post("/towns", response_model=Town, status_code=201, responses=errors(409))
def create_town(body: TownIn, caller: Caller, ctx: Ctx) -> RegistryRecord:
    """Admin only: a town (镇) or subdistrict (街道), the level above communities."""
    return _create(ctx, caller, "town", body)


@router.get("/towns", response_model=Page[Town])
def list_towns(
    caller: Caller, ctx: Ctx, q: str | None = None, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    """Every town (the county's directory), paged; any signed-in caller."""
    return _page(ctx, caller, "town", limit, offset, q=q)


@router.get("/towns/{town_id}", response_model=Town)
def get_town(town_id: str, caller: Caller, ctx: Ctx) -> RegistryRecord:
    """One town; any signed-in caller."""
    return ctx.registry.get("town", town_id, caller, fresh=True)


@router.patch("/towns/{town_id}", response_model=Town, responses=errors(409))
def update_town(town_id: str, body: NamePatch, caller: Caller, ctx: Ctx) -> RegistryRecord:
    """Admin only: rename a town."""
    return _patch(ctx, caller, "town", town_id, body)


@router.get("/towns/{town_id}/history", response_model=Page[HistoryItem])
def town_history(
    town_id: str, caller: Caller, ctx: Ctx, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    """Who changed the town's name, before and after, when."""
    return _history(ctx, caller, "town", town_id, limit, offset)


# ---- communities ----------------------------------------------------------------------------


@router.post("/communities", response_model=Community, status_code=201, responses=errors(409))
def create_community(body: CommunityIn, caller: Caller, ctx: Ctx) -> RegistryRecord:
    """Admin only."""
    return _create(ctx, caller, "community", body)


@router.post(
    "/communities/bulk", response_model=BulkOut[Community], status_code=201, responses=errors(409)
)
def create_communities(body: Bulk[CommunityIn], caller: Caller, ctx: Ctx) -> dict[str, Any]:
    """Admin only; all or nothing."""
    return {"items": _bulk(ctx, caller, "community", body)}


@router.get("/communities", response_model=Page[Community])
def list_communities(
    caller: Caller,
    ctx: Ctx,
    q: str | None = None,
    town_id: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Every community (the county's directory), paged, optionally of one town; any signed-in
    caller."""
    return _page(ctx, caller, "community", limit, offset, {"town_id": town_id}, q=q)


@router.get("/communities/{community_id}", response_model=Community)
def get_community(community_id: str, caller: Caller, ctx: Ctx) -> RegistryRecord:
    """One community; any signed-in caller."""
    return ctx.registry.get("community", community_id, caller, fresh=True)


@router.patch("/communities/{community_id}", response_model=Community, responses=errors(409))
def update_community(
    community_id: str, body: CommunityPatch, caller: Caller, ctx: Ctx
) -> RegistryRecord:
    """Admin only: rename a community, set or clear its phone, set its town."""
    return _patch(ctx, caller, "community", community_id, body)


@router.get("/communities/{community_id}/history", response_model=Page[HistoryItem])
def community_history(
    community_id: str, caller: Caller, ctx: Ctx, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    """Who changed which fields of the community, before and after, when."""
    return _history(ctx, caller, "community", community_id, limit, offset)


# ---- grids ----------------------------------------------------------------------------------


@router.post("/grids", response_model=Grid, status_code=201, responses=errors(409))
def create_grid(body: GridIn, caller: Caller, ctx: Ctx) -> RegistryRecord:
    """The admin, or the organizer of the grid's community."""
    return _create(ctx, caller, "grid", body)


@router.post("/grids/bulk", response_model=BulkOut[Grid], status_code=201, responses=errors(409))
def create_grids(body: Bulk[GridIn], caller: Caller, ctx: Ctx) -> dict[str, Any]:
    """All or nothing. Level-5 grids name their level-4 parent's id, so load level 4 first."""
    return {"items": _bulk(ctx, caller, "grid", body)}


@router.get("/grids", response_model=Page[Grid])
def list_grids(
    caller: Caller,
    ctx: Ctx,
    community_id: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Grids, paged; an organizer sees only their own community's."""
    return _page(ctx, caller, "grid", limit, offset, {"community_id": community_id})


@router.get("/grids/{grid_id}", response_model=Grid)
def get_grid(grid_id: str, caller: Caller, ctx: Ctx) -> RegistryRecord:
    """One grid; not visible to another community's organizer."""
    return ctx.registry.get("grid", grid_id, caller, fresh=True)


@router.patch("/grids/{grid_id}", response_model=Grid, responses=errors(409))
def update_grid(grid_id: str, body: GridPatch, caller: Caller, ctx: Ctx) -> RegistryRecord:
    """The admin, or the organizer of the grid's community."""
    return _patch(ctx, caller, "grid", grid_id, body)


@router.get("/grids/{grid_id}/history", response_model=Page[HistoryItem])
def grid_history(
    grid_id: str, caller: Caller, ctx: Ctx, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    """Who changed which fields of the grid, before and after, when."""
    return _history(ctx, caller, "grid", grid_id, limit, offset)


# ---- station kinds --------------------------------------------------------------------------


@router.get("/station-kinds", response_model=Page[StationKindDef])
def list_station_kinds(caller: Caller, ctx: Ctx) -> dict[str, Any]:
    """The built-in kinds (党群服务站, 党员驿站) and those the county added."""
    kinds = ctx.registry.station_kinds()
    return {"items": kinds, "total": len(kinds)}


@router.post(
    "/station-kinds", response_model=StationKindDef, status_code=201, responses=errors(409)
)
def create_station_kind(body: StationKindIn, caller: Caller, ctx: Ctx) -> RegistryRecord:
    """Admin only: a new kind of station, with its Chinese label."""
    return _create(ctx, caller, "station_kind", body)


@router.patch("/station-kinds/{code}", response_model=StationKindDef, responses=errors(409))
def update_station_kind(
    code: str, body: StationKindPatch, caller: Caller, ctx: Ctx
) -> RegistryRecord:
    """Admin only: relabel a kind the county added (built-in kinds are fixed)."""
    return _patch(ctx, caller, "station_kind", code, body)


@router.get("/station-kinds/{code}/history", response_model=Page[HistoryItem])
def station_kind_history(
    code: str, caller: Caller, ctx: Ctx, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    """Who changed the station kind's label, and when."""
    return _history(ctx, caller, "station_kind", code, limit, offset)


# ---- stations -------------------------------------------------------------------------------


@router.post("/stations", response_model=StationView, status_code=201, responses=errors(409))
def create_station(body: StationIn, caller: Caller, ctx: Ctx) -> StationView:
    """The admin, or the organizer of the station's community."""
    return _station(ctx, caller, _create(ctx, caller, "station", body))


@router.post(
    "/stations/bulk", response_model=BulkOut[StationView], status_code=201, responses=errors(409)
)
def create_stations(body: Bulk[StationIn], caller: Caller, ctx: Ctx) -> dict[str, Any]:
    """The admin, or an organizer for their own community; all or nothing."""
    return {"items": [_station(ctx, caller, s) for s in _bulk(ctx, caller, "station", body)]}


@router.get("/stations", response_model=Page[StationView])
def list_stations(
    caller: Caller,
    ctx: Ctx,
    community_id: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Stations, paged; an organizer sees only their own community's. `accepts_poster` says
    which take the printed poster; the QR link only for the station's organizer and the admin."""
    page = _page(ctx, caller, "station", limit, offset, {"community_id": community_id})
    page["items"] = [_station(ctx, caller, s) for s in page["items"]]
    return page


@router.get("/stations/{station_id}", response_model=StationView)
def get_station(station_id: str, caller: Caller, ctx: Ctx) -> StationView:
    """One station (its QR link only for its organizer and the admin); not visible to another
    community's organizer."""
    return _station(ctx, caller, ctx.registry.get("station", station_id, caller, fresh=True))


@router.patch("/stations/{station_id}", response_model=StationView, responses=errors(409))
def update_station(station_id: str, body: StationPatch, caller: Caller, ctx: Ctx) -> StationView:
    """The admin, or the organizer of the station's community; also its presence policy
    (`accepts_poster`, `backdated_poster`), recorded in its history like any field."""
    return _station(ctx, caller, _patch(ctx, caller, "station", station_id, body))


@router.get("/stations/{station_id}/history", response_model=Page[HistoryItem])
def station_history(
    station_id: str, caller: Caller, ctx: Ctx, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    """Who changed which fields of the station, before and after, when."""
    return _history(ctx, caller, "station", station_id, limit, offset)


# ---- members --------------------------------------------------------------------------------


@router.post("/members", response_model=Member, status_code=201, responses=errors(409))
def create_member(body: MemberCreate, caller: Caller, ctx: Ctx) -> RegistryRecord:
    """The admin, or the organizer of the member's residential community."""
    return _create(ctx, caller, "member", body)


@router.post(
    "/members/bulk", response_model=BulkOut[Member], status_code=201, responses=errors(409)
)
def create_members(body: Bulk[MemberCreate], caller: Caller, ctx: Ctx) -> dict[str, Any]:
    """The admin, or an organizer for their own community; all or nothing."""
    return {"items": _bulk(ctx, caller, "member", body)}


@router.get("/members", response_model=Page[Member], responses=errors(503))
def list_members(
    caller: Caller,
    ctx: Ctx,
    audit: AccessLog,
    unit_id: str | None = None,
    community_id: str | None = None,
    grid_id: str | None = None,
    q: Annotated[str | None, Query(max_length=50, description="part of a name or phone")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Confined to the caller: an organizer's community, an HR's unit, a member themself. The
    members a page names (but the caller) are logged, one access-log entry per request."""
    filters = {"unit_id": unit_id, "community_id": community_id, "grid_id": grid_id}
    page = _page(ctx, caller, "member", limit, offset, filters, q=q or None)
    audit.record_list([m.id for m in page["items"]], "members" + (" search" if q else ""))
    return page


@router.get("/members/{member_id}", response_model=Member, responses=errors(503))
def get_member(member_id: str, caller: Caller, ctx: Ctx, audit: AccessLog) -> RegistryRecord:
    """The member themself, their community's organizer, their unit's HR, or the admin; the
    phone masked. A read by anyone but the member is logged (the access log)."""
    m = ctx.registry.get("member", member_id, caller, fresh=True)
    audit.record_unless_own("member_record", member_id)
    return masked_member(m)


@router.patch("/members/{member_id}", response_model=Member, responses=errors(409))
def update_member(member_id: str, body: MemberPatch, caller: Caller, ctx: Ctx) -> RegistryRecord:
    """Moving a member (unit or community) starts a new version; scans already made keep the
    unit and community they were made under."""
    return _patch(ctx, caller, "member", member_id, body)


@router.get("/members/{member_id}/history", response_model=Page[HistoryItem], responses=errors(503))
def member_history(
    member_id: str,
    caller: Caller,
    ctx: Ctx,
    audit: AccessLog,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Who changed which fields of the member (moves included), before and after, when; phones
    masked. A read by anyone but the member is logged."""
    page = _history(ctx, caller, "member", member_id, limit, offset)
    audit.record_unless_own("member_record", member_id, "history")
    return page
