"""Create and read units, communities, stations and members."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Caller, Ctx, require
from api.errors import ApiError
from api.schemas import (
    CommunityIn,
    CommunityOut,
    MemberIn,
    MemberOut,
    StationIn,
    StationOut,
    UnitIn,
    UnitOut,
)
from services.events import Station
from services.qr import station_url
from services.registry import NotFound
from services.settings import Settings
from services.tokens import Principal

router = APIRouter(prefix="/v1", tags=["registry"])


def _station_out(settings: Settings, s: Station) -> StationOut:
    return StationOut(
        id=s.id,
        community_id=s.community_id,
        name=s.name,
        kind=s.kind,
        lat=s.lat,
        lon=s.lon,
        qr_url=station_url(settings, s.id),
    )


def _may_manage_community(caller: Principal, community_id: str) -> None:
    if caller.role == "admin":
        return
    if caller.role == "organizer" and caller.subject_id == community_id:
        return
    raise ApiError(403, "forbidden", "only the admin or this community's organizer may do this")


def _known(ctx: Ctx, kind: str, id_: str, field: str) -> None:
    # A reference to a missing entity is the caller's input error (422), not a missing URL.
    if not ctx.registry.exists(kind, id_):
        raise ApiError(422, f"unknown_{kind}", f"{field}: no {kind} with id {id_!r}")


@router.post("/units", response_model=UnitOut, status_code=201)
def create_unit(body: UnitIn, caller: Caller, ctx: Ctx) -> UnitOut:
    require(caller, "admin")
    u = ctx.registry.create_unit(body.name, caller.subject_id)
    return UnitOut(id=u.id, name=u.name)


@router.post("/communities", response_model=CommunityOut, status_code=201)
def create_community(body: CommunityIn, caller: Caller, ctx: Ctx) -> CommunityOut:
    require(caller, "admin")
    c = ctx.registry.create_community(body.name, caller.subject_id)
    return CommunityOut(id=c.id, name=c.name)


@router.post("/stations", response_model=StationOut, status_code=201)
def create_station(body: StationIn, caller: Caller, ctx: Ctx) -> StationOut:
    _may_manage_community(caller, body.community_id)
    _known(ctx, "community", body.community_id, "community_id")
    s = ctx.registry.create_station(
        body.community_id, body.name, body.kind, body.lat, body.lon, caller.subject_id
    )
    return _station_out(ctx.settings, s)


@router.post("/members", response_model=MemberOut, status_code=201)
def create_member(body: MemberIn, caller: Caller, ctx: Ctx) -> MemberOut:
    _may_manage_community(caller, body.community_id)
    _known(ctx, "community", body.community_id, "community_id")
    _known(ctx, "unit", body.unit_id, "unit_id")
    m = ctx.registry.create_member(body.name, body.unit_id, body.community_id, caller.subject_id)
    return MemberOut(id=m.id, name=m.name, unit_id=m.unit_id, community_id=m.community_id)


@router.get("/stations/{station_id}", response_model=StationOut)
def get_station(station_id: str, caller: Caller, ctx: Ctx) -> StationOut:
    try:
        s = ctx.registry.station(station_id)
    except NotFound:
        raise ApiError(404, "station_not_found", f"no station {station_id!r}") from None
    return _station_out(ctx.settings, s)
