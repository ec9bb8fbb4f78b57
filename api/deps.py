"""Typed dependencies: the process context and the authenticated caller."""

from __future__ import annotations

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


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]


def get_principal(
    ctx: Ctx, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if creds is None:
        raise ApiError(401, "unauthorized", "missing bearer token", {"WWW-Authenticate": "Bearer"})
    try:
        principal = verify_bearer(ctx.settings, creds.credentials)
    except InvalidToken as exc:
        raise ApiError(401, "unauthorized", str(exc), {"WWW-Authenticate": "Bearer"}) from exc
    if principal.expires_at is not None and ctx.revocations.is_revoked(principal.token_id):
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
