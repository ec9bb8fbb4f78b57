from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import Caller, Ctx, require
from api.errors import ApiError
from api.schemas import TokenRequest, TokenResponse
from services.tokens import issue_bearer, verify_bearer

router = APIRouter(prefix="/v1/auth", tags=["auth"])

# The kind of registry entry each role's subject must be.
_SUBJECT_KIND = {"member": "member", "organizer": "community", "hr": "unit"}


@router.post("/tokens", response_model=TokenResponse, status_code=201)
def create_token(body: TokenRequest, caller: Caller, ctx: Ctx) -> TokenResponse:
    """Admin only: a signed bearer token for a member, an organizer (community) or HR (unit)."""
    require(caller, "admin")
    kind = _SUBJECT_KIND.get(body.role)
    if kind is not None and not ctx.registry.exists(kind, body.subject_id):
        raise ApiError(422, "unknown_subject", f"{body.role} subject must be an existing {kind} id")
    if body.role == "admin" and body.subject_id != "admin":
        raise ApiError(422, "unknown_subject", "an admin token's subject_id is 'admin'")
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
