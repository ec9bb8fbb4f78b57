"""Typed dependencies: the process context and the authenticated caller."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.context import AppContext
from api.errors import ApiError
from services.events import Member
from services.ratelimit import RateLimiter, retry_after_header
from services.registry import NotFound
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


async def get_caller_and_ctx(request: Request, creds: Bearer) -> tuple[Principal, AppContext]:
    """`Caller` and `Ctx` as one dependency, for the check-in route: FastAPI's resolution costs
    tens of µs per dependency and request, measurable at check-in rates. Still a dependency, so
    a request without a valid token gets its 401 before its body is validated."""
    ctx: AppContext = request.app.state.ctx
    return await authenticate(ctx, creds), ctx


CallerAndCtx = Annotated[tuple[Principal, AppContext], Depends(get_caller_and_ctx)]


async def authenticate(ctx: AppContext, creds: HTTPAuthorizationCredentials | None) -> Principal:
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
    if principal.role not in roles:
        raise ApiError(403, "forbidden", f"this action needs the role {' or '.join(roles)}")


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
    return caller.role == "admin" or (
        caller.role == "organizer" and caller.subject_id == community_id
    )


def hidden(kind: str, id_: str) -> ApiError:
    """A 404 that does not tell a caller outside the scope whether the id exists."""
    return ApiError(404, f"{kind}_not_found", f"no {kind} {id_!r} visible to this caller")


def readable_member(ctx: AppContext, caller: Principal, member_id: str) -> Member:
    """The member, if the caller may read their data; 404 otherwise, so ids can't be probed."""
    try:
        m = ctx.registry.member(member_id)
    except NotFound:
        m = None
    allowed = m is not None and (
        caller.role == "admin"
        or (caller.role == "member" and caller.subject_id == m.id)
        or (caller.role == "organizer" and caller.subject_id == m.community_id)
        or (caller.role == "hr" and caller.subject_id == m.unit_id)
    )
    if not allowed or m is None:
        raise ApiError(404, "member_not_found", f"no member {member_id!r} visible to this caller")
    return m


def readable_unit(ctx: AppContext, caller: Principal, unit_id: str) -> None:
    """Passes for the unit's HR and the admin, for a unit that exists; the same 404 otherwise."""
    allowed = caller.role == "admin" or (caller.role == "hr" and caller.subject_id == unit_id)
    if not allowed or not ctx.registry.exists("unit", unit_id):
        raise hidden("unit", unit_id)
