"""Typed dependencies: the process context and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.context import AppContext
from api.errors import ApiError
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
        return verify_bearer(ctx.settings, creds.credentials)
    except InvalidToken as exc:
        raise ApiError(401, "unauthorized", str(exc), {"WWW-Authenticate": "Bearer"}) from exc


Caller = Annotated[Principal, Depends(get_principal)]


def require(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles:
        raise ApiError(403, "forbidden", f"this action needs the role {' or '.join(roles)}")
