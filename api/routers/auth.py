from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Caller, Ctx, check, gate, rate_limit
from api.errors import ApiError
from api.openapi import errors
from api.schemas import TokenRequest, TokenResponse
from services.access import Facts
from services.tokens import InvalidToken, issue_bearer, verify_bearer

router = APIRouter(prefix="/v1/auth", tags=["auth"])

# The kind of registry entry each role's subject must be.
_SUBJECT_KIND = {"member": "member", "organizer": "community", "hr": "unit", "town": "town"}


@router.post("/tokens", response_model=TokenResponse, status_code=201, responses=errors(429))
def create_token(body: TokenRequest, caller: Caller, ctx: Ctx) -> TokenResponse:
    """Admin only: a signed bearer token for a member, an organizer (community) or HR (unit)."""
    gate(caller, "token_issue")
    rate_limit(ctx.limits.token_issue, caller.token_id, "tokens issued")
    kind = _SUBJECT_KIND.get(body.role)
    if kind is not None and not ctx.registry.exists(kind, body.subject_id):
        raise ApiError(422, "unknown_subject", f"{body.role} subject must be an existing {kind} id")
    if body.role == "admin" and body.subject_id != "admin":
        raise ApiError(422, "unknown_subject", "an admin token's subject_id is 'admin'")
    if body.role == "county" and body.subject_id != "county":
        raise ApiError(422, "unknown_subject", "a county office token's subject_id is 'county'")
    token = issue_bearer(ctx.settings, body.role, body.subject_id)
    return TokenResponse(token=token, expires_at=verify_bearer(ctx.settings, token).expires_at)


class WhoAmI(BaseModel):
    role: str
    subject_id: str
    expires_at: int | None


@router.get("/me", response_model=WhoAmI)
def who_am_i(caller: Caller) -> WhoAmI:
    """The caller's role and subject, as the token says."""
    return WhoAmI(role=caller.role, subject_id=caller.subject_id, expires_at=caller.expires_at)


class RevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str | None = Field(
        default=None, description="the token to withdraw; omitted: the caller's own token"
    )


class Revoked(BaseModel):
    token_id: str
    revoked: bool


@router.post(
    "/revoke",
    response_model=Revoked,
    responses={403: {"description": "only the admin may revoke another caller's token"}},
)
def revoke_token(body: RevokeRequest, caller: Caller, ctx: Ctx) -> Revoked:
    """Withdraws a token before it expires: the admin any token, anyone else their own."""
    if body.token is None:
        target = caller
    else:
        try:
            target = verify_bearer(ctx.settings, body.token)
        except InvalidToken as exc:
            raise ApiError(422, "invalid_token", f"token: {exc}") from exc
    if target.expires_at is None:
        raise ApiError(422, "invalid_token", "ADMIN_TOKEN is configuration; change it to revoke it")
    check(
        caller,
        "token",
        "change",
        Facts(token_id=target.token_id),
        "token",
        target.token_id,
        hideable=False,
        message="only the admin may revoke another caller's token",
    )
    ctx.revocations.revoke(target, by=f"{caller.role}:{caller.subject_id}")
    return Revoked(token_id=target.token_id, revoked=True)
