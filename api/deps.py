"""Typed dependencies: the process context and the authenticated caller."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.context import AppContext, AuthContext, ScanContext
from api.errors import ApiError
from services import access
from services.events import AccessKind, Grid, Member, Station
from services.privacy import log_read, personal_data_read
from services.ratelimit import RateLimiter, retry_after_header
from services.registry import NotFound
from services.station_codes import verify_screen_key
from services.tokens import InvalidToken, Principal, Role, verify_bearer

_bearer = HTTPBearer(
    auto_error=False, description="A token from POST /v1/auth/tokens, or ADMIN_TOKEN"
)


# Both dependencies are `async def` because they never block: a plain `def` dependency costs
# every request a hop to the thread pool and back, which at check-in rates is a large part of
# the work (see bench/findings.md, section 2).
async def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]


Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def get_principal(ctx: Ctx, creds: Bearer) -> Principal:
    return await authenticate(ctx, creds)


async def get_caller_and_ctx(request: Request, creds: Bearer) -> tuple[Principal, ScanContext]:
    """`Caller` and `Ctx` as one dependency, for the check-in route: FastAPI's resolution costs
    tens of µs per dependency and request, measurable at check-in rates. Still a dependency, so
    a request without a valid token gets its 401 before its body is validated. The context is
    the reads process's or an edge's (api.edge): the route needs only `ScanContext`."""
    ctx: ScanContext = request.app.state.ctx
    return await authenticate(ctx, creds), ctx


CallerAndCtx = Annotated[tuple[Principal, ScanContext], Depends(get_caller_and_ctx)]


async def authenticate(ctx: AuthContext, creds: HTTPAuthorizationCredentials | None) -> Principal:
    """The caller of a request, or a 401."""
    if creds is None:
        raise ApiError(401, "unauthorized", "missing bearer token", {"WWW-Authenticate": "Bearer"})
    try:
        # An HMAC over a short string (tens of µs): cheaper on the loop than a thread hop.
        principal = verify_bearer(ctx.settings, creds.credentials)
    except InvalidToken as exc:
        raise ApiError(401, "unauthorized", str(exc), {"WWW-Authenticate": "Bearer"}) from exc
    if principal.expires_at is not None:
        # A set lookup; the list is refreshed in the background (services.revocations). Only
        # before its first load does a request wait for the database, in a thread.
        revoked = ctx.revocations.check_nowait(principal.token_id)
        if revoked is None:
            revoked = await asyncio.to_thread(ctx.revocations.is_revoked, principal.token_id)
        if revoked:
            raise ApiError(401, "unauthorized", "token revoked", {"WWW-Authenticate": "Bearer"})
    return principal


Caller = Annotated[Principal, Depends(get_principal)]


def require(principal: Principal, *roles: Role) -> None:
    """A coarse role gate, checked before anything is looked up, so it tells nothing about any
    id (403). For code that names roles; the routers gate by resource instead (`gate`)."""
    if not access.has_role(principal, roles):
        raise ApiError(403, "forbidden", f"this action needs the role {' or '.join(roles)}")


def gate(principal: Principal, resource: access.Resource) -> None:
    """The policy's role gate for changing a resource: 403 for a role that never makes it."""
    if not access.may_ever_change(principal, resource):
        raise ApiError(
            403, "forbidden", f"this action needs the role {access.roles_text(resource)}"
        )


def check(
    caller: Principal,
    resource: access.Resource,
    action: access.Action,
    facts: access.Facts,
    kind: str,
    id_: str,
    *,
    hideable: bool = True,
    message: str | None = None,
) -> None:
    """Passes if the policy allows; otherwise the policy's refusal: 403 (with `message`), or the
    404 a caller outside the scope gets for an id that does not exist."""
    decision = access.decide(caller, resource, action, facts, hideable=hideable)
    if decision is access.Decision.FORBID:
        raise ApiError(403, "forbidden", message or f"this {kind} is outside the caller's scope")
    if decision is access.Decision.HIDE:
        raise hidden(kind, id_)


def rate_limit(limiter: RateLimiter, key: str, what: str) -> None:
    wait = limiter.acquire(key)
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            f"too many {what}; retry after {retry_after_header(wait)} s",
            {"Retry-After": retry_after_header(wait)},
        )


def may_manage_community(caller: Principal, community_id: str) -> bool:
    """The admin, or the organizer of this community."""
    return access.manages_community(caller, community_id)


def hidden(kind: str, id_: str) -> ApiError:
    """A 404 that does not tell a caller outside the scope whether the id exists."""
    return ApiError(404, f"{kind}_not_found", f"no {kind} {id_!r} visible to this caller")


def may_read(caller: Principal, resource: access.Resource, facts: access.Facts) -> bool:
    return access.allows(caller, resource, "read", facts)


def known_to(
    caller: Principal, resource: access.Resource, facts: access.Facts, unknown: ApiError
) -> None:
    """For an object named in a request body: passes if the caller may read it; otherwise raises
    the route's own answer for an id that does not exist (`unknown`), so "not yours" and "does
    not exist" answer the same to a caller outside the scope."""
    if not access.allows(caller, resource, "read", facts):
        raise unknown


def readable_member(
    ctx: AppContext,
    caller: Principal,
    member_id: str,
    resource: access.Resource = "member_service",
    action: access.Action = "read",
) -> Member:
    """The member, if the caller may read (or change) their `resource`; 404 otherwise, so ids
    can't be probed."""
    try:
        m = ctx.registry.member(member_id)
    except NotFound:
        raise hidden("member", member_id) from None
    town = town_of(ctx, caller, m.community_id)
    check(caller, resource, action, facts_of_member(m, town), "member", member_id)
    return m


def facts_of_member(m: Member, town_id: str | None = None) -> access.Facts:
    """A member's facts; `town_id` (`town_of`) only where a town office may read the member."""
    return access.member_facts(m.id, m.community_id, m.unit_id, town_id)


def readable_unit(ctx: AppContext, caller: Principal, unit_id: str) -> None:
    """Passes for the unit's HR and the admin, for a unit that exists; the same 404 otherwise."""
    check(caller, "unit_desk", "read", access.Facts(unit_id=unit_id), "unit", unit_id)
    if not ctx.registry.exists("unit", unit_id):
        raise hidden("unit", unit_id)


def community_desk(ctx: AppContext, caller: Principal, community_id: str) -> None:
    """Passes for the community's organizer and the admin, for a community that exists; the same
    404 otherwise (its weeks, breakdowns, on-site list, posters, review queue, feedback)."""
    facts = community_facts(ctx, caller, community_id)
    check(caller, "community_desk", "read", facts, "community", community_id)
    if not ctx.registry.exists("community", community_id):
        raise hidden("community", community_id)


def town_of(ctx: AppContext, caller: Principal, community_id: str) -> str | None:
    """The town a community lies in, looked up only for a caller the policy judges by town
    (`access.scoped_by_town`); None otherwise, and for a community that does not exist."""
    if not access.scoped_by_town(caller):
        return None
    try:
        return ctx.registry.community(community_id).town_id
    except NotFound:
        return None


def community_facts(ctx: AppContext, caller: Principal, community_id: str) -> access.Facts:
    """The facts of something of this community, its town included where it matters."""
    return access.Facts(community_id=community_id, town_id=town_of(ctx, caller, community_id))


def _station_for(
    ctx: AppContext, caller: Principal, station_id: str, resource: access.Resource
) -> Station:
    try:
        station = ctx.registry.station(station_id)
    except NotFound:
        raise hidden("station", station_id) from None
    check(
        caller,
        resource,
        "read",
        community_facts(ctx, caller, station.community_id),
        "station",
        station_id,
    )
    return station


def managed_station(ctx: AppContext, caller: Principal, station_id: str) -> Station:
    """The station, for its community's organizer and the admin; 404 otherwise (its QR code,
    its week, its screen keys)."""
    return _station_for(ctx, caller, station_id, "community_desk")


def sees_station_token(caller: Principal, community_id: str) -> bool:
    """Whether an answer to this caller may carry the signed tokens of a station of this
    community (its `qr_url`): its organizer and the admin, nobody else."""
    return access.allows(caller, "station_token", "read", access.Facts(community_id=community_id))


def station_tokens(ctx: AppContext, caller: Principal, station_id: str) -> Station:
    """The station, for those who may hold its signed tokens (its QR code, poster, screen keys);
    the same 404 as an unknown station otherwise."""
    return _station_for(ctx, caller, station_id, "station_token")


# ---- a station's tablet, as the live-code route and the screen page both check it ----------


class ScreenKeyForAnotherStation(InvalidToken):
    """A genuine screen key, of another station."""


def screen_station(ctx: AppContext, key: str, station_id: str) -> Station:
    """The station a screen key opens, checked on every request: signed, not expired, for this
    station and not revoked (issued under the station's current screen-key generation). Raises
    InvalidToken (ScreenKeyForAnotherStation), or NotFound for a station that does not exist."""
    screen = verify_screen_key(ctx.settings, key)
    if screen.station_id != station_id:
        raise ScreenKeyForAnotherStation("screen key is for another station")
    station = ctx.registry.station(station_id)
    if screen.revoked_by(screen_key_generation(ctx, station)):
        raise InvalidToken("screen key revoked")
    return station


def screen_key_generation(ctx: AppContext, station: Station) -> int:
    """The station's current screen-key generation. Generations only grow, so the higher of the
    replica's copy (refreshed every REGISTRY_REFRESH_S with every process's changes) and the
    cached record (this process's changes at once) is the current one."""
    ref = ctx.registry.replica.station(station.id)
    return max(station.screen_key_generation, ref.screen_key_generation if ref else 0)


def managed_grid(ctx: AppContext, caller: Principal, grid_id: str) -> Grid:
    """The grid, for its community's organizer and the admin; 404 otherwise (its week)."""
    try:
        grid = ctx.registry.grid(grid_id)
    except NotFound:
        raise hidden("grid", grid_id) from None
    check(
        caller,
        "community_desk",
        "read",
        community_facts(ctx, caller, grid.community_id),
        "grid",
        grid_id,
    )
    return grid


def scope_of_list(caller: Principal, resource: access.Resource) -> access.ListScope:
    """What the caller's list is confined to; 403 for a role that may not list it."""
    scope = access.list_scope(caller, resource)
    if scope is None:
        raise ApiError(403, "forbidden", f"the role {caller.role} may not list these")
    return scope


def confine(requested: str | None, confined: str | None, field: str) -> str | None:
    """The filter a list applies: the caller's scope, or what they asked for within it; a filter
    outside the scope is refused (403) rather than silently emptied."""
    if not access.within(requested, confined):
        raise ApiError(403, "forbidden", f"{field}: outside the caller's scope")
    return confined if confined is not None else requested


# ---- the personal-data access log (issue 15) ---------------------------------------------------


class PersonalDataLog:
    """Records, for one request, that its caller read personal data of some members: the one way
    a route writes the access log (`AccessLog` below), so every entry names the caller and the
    route the same way."""

    def __init__(self, ctx: AppContext, caller: Principal, route: str) -> None:
        self.ctx, self.route = ctx, route
        # A role, or "station" for a station's tablet.
        self.role: str = caller.role
        self.actor_id = caller.subject_id

    @classmethod
    def of_station(cls, ctx: AppContext, station_id: str, route: str) -> PersonalDataLog:
        """For a station's tablet (its screen key, no bearer): the station is the reader."""
        log = cls.__new__(cls)
        log.ctx, log.route, log.role, log.actor_id = ctx, route, "station", station_id
        return log

    def record(self, kind: AccessKind, member_ids: list[str], detail: str = "") -> None:
        """Call after the access check passed and before the data is answered (blocks on the
        broker's acknowledgement: routes calling it are plain `def`)."""
        if not member_ids:
            return
        event = personal_data_read(kind, self.role, self.actor_id, member_ids, self.route, detail)
        log_read(self.ctx.publisher, event)

    def record_unless_own(self, kind: AccessKind, member_id: str, detail: str = "") -> None:
        """A member's record read by anyone but the member themself."""
        if not (self.role == "member" and self.actor_id == member_id):
            self.record(kind, [member_id], detail)

    def record_list(self, member_ids: list[str], detail: str = "") -> None:
        """A list of members by name (and masked phone) read: one entry for the whole answer,
        naming every member on it but the caller themself (issue 15)."""
        own = self.actor_id if self.role == "member" else None
        self.record("member_list", [m for m in dict.fromkeys(member_ids) if m != own], detail)

    def record_about(self, kind: AccessKind, detail: str) -> None:
        """Personal data of someone who is no member (a resident's contact on a wish), named in
        `detail`."""
        event = personal_data_read(kind, self.role, self.actor_id, [], self.route, detail)
        log_read(self.ctx.publisher, event)


async def personal_data_log(request: Request, ctx: Ctx, caller: Caller) -> PersonalDataLog:
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    return PersonalDataLog(ctx, caller, f"{request.method} {path}")


AccessLog = Annotated[PersonalDataLog, Depends(personal_data_log)]
