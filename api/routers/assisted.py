"""Check-ins made for a member: by an organizer or a station's tablet for a member without a
smartphone (代签到), and by a team leader for the team (团队签到).

Each is an ordinary scan on `checkins`, made now at the station, that names who made it
(`assist`, `assisted_by`); the session agent pairs it like any scan and flags the session
`assisted` or `team` with who did it (services.sessions). What counts is unchanged
(services.counting): an organizer who checks a member in vouches for the service as the
reviewer would; a team leader is set by the organizer, must scan the station's code, and the
session names them. Scans made for someone carry no device id, so they never raise the
shared-phone anomaly.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import (
    AccessLog,
    Caller,
    Ctx,
    PersonalDataLog,
    ScreenKeyForAnotherStation,
    check,
    gate,
    hidden,
    rate_limit,
    screen_station,
)
from api.errors import ApiError
from api.openapi import errors
from services import access, topics
from services.access import Facts
from services.events import AssistKind, CheckinScanned, Event, Member, Station, derived_id, utcnow
from services.privacy import mask_phone
from services.reads import assisted as assisted_reads
from services.registry import NotFound
from services.station_codes import ScanBeforeCodeWindow, StationCodeExpired, verify_scan
from services.tokens import InvalidToken, Principal
from services.topics import TopicSpec

router = APIRouter(prefix="/v1", tags=["assisted check-in"])

SearchQuery = Annotated[
    str,
    Query(
        min_length=1,
        max_length=40,
        description="part of the name, or 3-11 digits of the phone (e.g. its last four)",
    ),
]
ScreenKey = Annotated[str | None, Header(description="the station's screen key")]


class FoundMember(BaseModel):
    member_id: str
    name: str
    phone: str | None = Field(description="masked (138****0004): to tell two members apart")
    open_station_id: str | None = Field(
        description="the station of the member's open session (check out rather than in)"
    )


class FoundMembers(BaseModel):
    items: list[FoundMember]
    total: int


class AssistedCheckinIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    member_id: str = Field(min_length=1, max_length=64)
    station_id: str = Field(min_length=1, max_length=64)
    action: Literal["in", "out"]
    client_event_id: UUID = Field(description="re-sending the same id is the same scan")


class KioskCheckinIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    member_id: str = Field(min_length=1, max_length=64)
    action: Literal["in", "out"]
    client_event_id: UUID = Field(description="re-sending the same id is the same scan")


class TeamCheckinIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    station_token: str = Field(
        min_length=1, max_length=200, description="the station's code, as the leader scanned it"
    )
    action: Literal["in", "out"]
    member_ids: list[str] = Field(min_length=1, max_length=200)
    client_event_id: UUID = Field(description="re-sending the same id is the same scans")
    activity_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="the activity (slot) the team serves, if any: stored with each scan",
    )


class AssistedAccepted(BaseModel):
    event_ids: list[str]
    assisted_by: str


class TeamMember(BaseModel):
    member_id: str
    name: str


class TeamOut(BaseModel):
    leader_id: str
    items: list[TeamMember]
    total: int
    max_per_checkin: int


def _found(ctx: Ctx, community_id: str, q: str, audit: PersonalDataLog) -> FoundMembers:
    rows = assisted_reads.search_members(
        ctx.warehouse, community_id, q, ctx.settings.assisted_search_limit
    )
    # Names and masked phones of whoever matched: logged, one entry per search.
    audit.record_list([r.member_id for r in rows], "search")
    items = [
        FoundMember(
            member_id=r.member_id,
            name=r.name,
            phone=mask_phone(r.phone),
            open_station_id=r.open_station_id,
        )
        for r in rows
    ]
    return FoundMembers(items=items, total=len(items))


def _scan(
    ctx: Ctx,
    member: Member,
    station: Station,
    action: Literal["in", "out"],
    client_event_id: str,
    assist: AssistKind,
    by: str,
    activity_id: str | None = None,
) -> CheckinScanned:
    """The scan made for `member` now at `station` by `by` (validated, not yet published)."""
    if member.status != "active":
        raise ApiError(
            422, "member_not_active", f"member status is {member.status!r}; check-ins need 'active'"
        )
    now = utcnow()
    return CheckinScanned(
        # Derived from the member, who made it and the request's id: a re-send is the same scan.
        event_id=derived_id("checkin", member.id, by, client_event_id),
        occurred_at=now,
        member_id=member.id,
        station_id=station.id,
        station_community_id=station.community_id,
        unit_id=member.unit_id,
        member_community_id=member.community_id,
        member_grid_id=ctx.registry.level4_grid_id(member),
        action=action,
        client_event_id=client_event_id,
        received_at=now,
        assist=assist,
        assisted_by=by,
        activity_id=activity_id,
    )


def _member(ctx: Ctx, member_id: str) -> Member:
    try:
        return ctx.registry.member(member_id)
    except NotFound:
        raise hidden("member", member_id) from None


def _publish(ctx: Ctx, scans: list[CheckinScanned], by: str) -> AssistedAccepted:
    items: list[tuple[TopicSpec, str, Event]] = [(topics.CHECKINS, s.member_id, s) for s in scans]
    ctx.publisher.send_many_sync(items)
    return AssistedAccepted(event_ids=[s.event_id for s in scans], assisted_by=by)


# ---- an organizer --------------------------------------------------------------------------


def _assisting(caller: Principal, community_id: str) -> None:
    # The search is the community's: its organizer (and the admin) only, the same 404 otherwise.
    check(
        caller,
        "assisted_checkin",
        "read",
        Facts(community_id=community_id, also_community_id=community_id),
        "community",
        community_id,
    )


@router.get(
    "/communities/{community_id}/assisted/members",
    response_model=FoundMembers,
    responses=errors(503),
)
def search_for_assisted(
    community_id: str, q: SearchQuery, caller: Caller, ctx: Ctx, audit: AccessLog
) -> FoundMembers:
    """Members of the community to check in for (代签到), by name or phone digits; phones
    masked; at most ASSISTED_SEARCH_LIMIT."""
    _assisting(caller, community_id)
    if not ctx.registry.exists("community", community_id):
        raise hidden("community", community_id)
    return _found(ctx, community_id, q, audit)


@router.post(
    "/communities/{community_id}/assisted/checkins",
    response_model=AssistedAccepted,
    status_code=202,
    responses=errors(429),
)
def assisted_checkin(
    community_id: str, body: AssistedCheckinIn, caller: Caller, ctx: Ctx
) -> AssistedAccepted:
    """The organizer checks a member of the community in or out at one of its stations, now.
    The session is flagged `assisted` and names the organizer (`by:organizer:<community>`)."""
    gate(caller, "assisted_checkin")
    _assisting(caller, community_id)
    if not ctx.registry.exists("community", community_id):
        raise hidden("community", community_id)
    member = _member(ctx, body.member_id)
    try:
        station = ctx.registry.station(body.station_id)
    except NotFound:
        raise hidden("station", body.station_id) from None
    check(
        caller,
        "assisted_checkin",
        "change",
        Facts(
            community_id=station.community_id,
            also_community_id=member.community_id,
            member_id=member.id,
        ),
        "member",
        member.id,
    )
    if community_id != station.community_id or community_id != member.community_id:
        raise ApiError(
            422,
            "not_in_community",
            "member_id, station_id: the member and the station must both be of this community",
        )
    by = f"{caller.role}:{caller.subject_id}"
    rate_limit(ctx.limits.checkins_station, station.id, "check-ins at this station")
    scan = _scan(ctx, member, station, body.action, str(body.client_event_id), "assisted", by)
    return _publish(ctx, [scan], by)


# ---- a station's tablet (kiosk) --------------------------------------------------------------


def _kiosk(ctx: Ctx, station_id: str, key: str | None) -> Station:
    if not key:
        raise ApiError(401, "unauthorized", "missing screen key")
    try:
        return screen_station(ctx, key, station_id)
    except ScreenKeyForAnotherStation as exc:
        raise hidden("station", station_id) from exc
    except InvalidToken as exc:
        raise ApiError(401, "unauthorized", str(exc)) from exc
    except NotFound:
        raise hidden("station", station_id) from None


@router.get(
    "/stations/{station_id}/kiosk/members",
    response_model=FoundMembers,
    responses=errors(401, 404, 429, 503),
)
def kiosk_search(
    station_id: str, q: SearchQuery, ctx: Ctx, x_screen_key: ScreenKey = None
) -> FoundMembers:
    """The station's tablet (header `X-Screen-Key`) finds a member of the station's community to
    check in for (代签到); phones masked. At most LIMIT_KIOSK_SEARCH_BURST searches at once and
    LIMIT_KIOSK_SEARCH_PER_MIN a minute per screen key (429 `rate_limited`, `Retry-After`)."""
    station = _kiosk(ctx, station_id, x_screen_key)
    # Per screen key, counted only for a key that verified (a forged key costs nothing to
    # refuse and must not use up a real key's searches); the key itself is never kept.
    key = hashlib.sha256((x_screen_key or "").encode()).hexdigest()[:32]
    rate_limit(ctx.limits.kiosk_search, key, "member searches from this screen")
    audit = PersonalDataLog.of_station(
        ctx, station.id, "GET /v1/stations/{station_id}/kiosk/members"
    )
    return _found(ctx, station.community_id, q, audit)


@router.post(
    "/stations/{station_id}/kiosk/checkins",
    response_model=AssistedAccepted,
    status_code=202,
    responses=errors(401, 404, 429),
)
def kiosk_checkin(
    station_id: str, body: KioskCheckinIn, ctx: Ctx, x_screen_key: ScreenKey = None
) -> AssistedAccepted:
    """The station's tablet checks a member of the station's community in or out, now. The
    session is flagged `assisted` and names the station (`by:station:<station>`)."""
    station = _kiosk(ctx, station_id, x_screen_key)
    try:
        member = ctx.registry.member(body.member_id)
    except NotFound:
        member = None
    if member is None or not access.screen_may_assist(
        station.community_id, access.member_facts(member.id, member.community_id, member.unit_id)
    ):
        # One answer for unknown and for another community's member: the tablet can't probe.
        raise ApiError(
            422, "unknown_member", f"member_id: no member {body.member_id!r} of this community"
        )
    by = f"station:{station.id}"
    rate_limit(ctx.limits.checkins_station, station.id, "check-ins at this station")
    scan = _scan(ctx, member, station, body.action, str(body.client_event_id), "assisted", by)
    return _publish(ctx, [scan], by)


# ---- a team leader -------------------------------------------------------------------------


@router.get("/me/team", response_model=TeamOut, responses=errors(503))
def my_team(caller: Caller, ctx: Ctx, audit: AccessLog) -> TeamOut:
    """The calling member's team: the members whose team leader the organizer set to them
    (logged: one access-log entry naming them)."""
    gate(caller, "team_checkin")
    rows = assisted_reads.team(ctx.warehouse, caller.subject_id)
    audit.record_list([i for i, _ in rows], "team")
    items = [TeamMember(member_id=i, name=n) for i, n in rows]
    return TeamOut(
        leader_id=caller.subject_id,
        items=items,
        total=len(items),
        max_per_checkin=ctx.settings.team_checkin_max,
    )


@router.post(
    "/team-checkins",
    response_model=AssistedAccepted,
    status_code=202,
    responses=errors(404, 429, why={404: "the station of a signed code no longer exists"}),
)
def team_checkin(body: TeamCheckinIn, caller: Caller, ctx: Ctx) -> AssistedAccepted:
    """A team leader, at the station (its code as scanned: poster or screen), checks members of
    the team in or out, now, optionally for an activity. Each session is flagged `team` and
    names the leader (`by:member:<leader>`). At most TEAM_CHECKIN_MAX members at once."""
    gate(caller, "team_checkin")
    cap = ctx.settings.team_checkin_max
    if len(body.member_ids) > cap:
        raise ApiError(422, "team_too_large", f"member_ids: at most {cap} members at once")
    if len(set(body.member_ids)) != len(body.member_ids):
        raise ApiError(422, "invalid_request", "member_ids: a member is named twice")
    try:
        verified = verify_scan(ctx.settings, body.station_token, None)
    except (StationCodeExpired, ScanBeforeCodeWindow) as exc:
        raise ApiError(400, "station_code_expired", str(exc)) from exc
    except InvalidToken as exc:
        raise ApiError(400, "invalid_station_token", str(exc)) from exc
    try:
        station = ctx.registry.station(verified.station_id)
    except NotFound as exc:
        raise ApiError(404, "station_not_found", str(exc)) from exc
    if verified.proof == "poster" and not station.accepts_poster:
        raise ApiError(
            403,
            "poster_not_accepted",
            "this station accepts only the rotating code shown on its screen",
        )
    try:
        leader = ctx.registry.member(caller.subject_id)
    except NotFound:
        leader = None
    if leader is None or leader.status != "active":
        raise ApiError(403, "member_not_active", "the team leader is not an active member")
    by = f"member:{leader.id}"
    members: list[Member] = []
    for member_id in body.member_ids:
        try:
            m = ctx.registry.member(member_id)
        except NotFound:
            m = None
        if m is None or not access.allows(
            caller,
            "team_checkin",
            "change",
            Facts(
                member_id=m.id,
                community_id=m.community_id,
                members=frozenset({m.team_leader_id} if m.team_leader_id else ()),
            ),
        ):
            # The same answer for an unknown member and one of another team.
            raise ApiError(
                422, "not_in_team", f"member_ids: {member_id!r} is not a member of your team"
            )
        members.append(m)
    rate_limit(ctx.limits.checkins_station, station.id, "check-ins at this station")
    # Every scan validated before the first is published: nothing half-written.
    scans = [
        _scan(ctx, m, station, body.action, str(body.client_event_id), "team", by, body.activity_id)
        for m in members
    ]
    return _publish(ctx, scans, by)
