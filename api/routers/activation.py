"""Binding a phone: an organizer issues a short activation code, the phone redeems it once.

Codes are stored durably: each state change is published to the compacted `activations` topic
(the log stays the source of truth) and written through to ClickHouse, so a code survives an
API restart and a redeemed code stays redeemed after a replay. A stateless code (an HMAC of
member and expiry) was rejected because it cannot be single use without stored state anyway.

Single use holds within one API process (a lock around read-check-write). Two processes that
redeem the same code in the same few milliseconds could both succeed; the damage is one extra
phone bound to the same member, and the window is that of one ClickHouse round trip.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Caller, Ctx, check, facts_of_member, gate, hidden
from api.errors import ApiError
from api.openapi import errors
from api.security import client_address
from services import topics
from services.events import ActivationRecorded, derived_id
from services.processors.activations import ACTIVATIONS
from services.ratelimit import ActivationLimiter
from services.reads.registry import activation as read_activation
from services.registry import NotFound, actor
from services.station_codes import (
    activation_code_hash,
    format_activation_code,
    new_activation_code,
    normalize_activation_code,
)
from services.tokens import issue_bearer, verify_bearer

router = APIRouter(prefix="/v1/activations", tags=["activations"])

_redeem_lock = threading.Lock()


class ActivationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    member_id: str = Field(min_length=1, max_length=64)


class ActivationOut(BaseModel):
    code: str = Field(description="8 characters, shown as ABCD-EFGH; read it aloud or send it")
    url: str = Field(description="{PUBLIC_URL}/bind/{code}: opening it on the phone binds it")
    member_id: str
    expires_at: datetime


class RedeemIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    code: str = Field(min_length=1, max_length=32)
    phone: str | None = Field(
        default=None,
        pattern=r"^1\d{10}$",
        description="re-binding on another browser: the member's registered mobile, which must "
        "match (a mismatch answers as an unknown code, and counts against the rate limit)",
    )


class RedeemOut(BaseModel):
    token: str = Field(description="the member's bearer token; the phone keeps it")
    member_id: str
    member_name: str
    expires_at: int | None


def _limiter(request: Request) -> ActivationLimiter:
    """One limiter per app instance (not per module), so test apps do not share counts."""
    state = request.app.state
    limiter: ActivationLimiter | None = getattr(state, "activation_limiter", None)
    if limiter is None:
        s = request.app.state.ctx.settings
        limiter = ActivationLimiter(
            per_client=s.activation_max_failures,
            per_code=s.activation_max_failures_per_code,
            total=s.activation_max_failures_total,
            window_s=s.activation_failure_window_s,
        )
        state.activation_limiter = limiter
    return limiter


def _too_many(ctx: Ctx) -> ApiError:
    return ApiError(
        429,
        "too_many_attempts",
        "too many failed activation attempts; try again later",
        {"Retry-After": str(ctx.settings.activation_failure_window_s)},
    )


def _record(ctx: Ctx, event: ActivationRecorded) -> None:
    """Publish (acks=all) first, then write through, so the table never holds what the log
    does not; the sink writes the same row again later, which the table collapses."""
    ctx.publisher.send_sync(topics.ACTIVATIONS, event.code_hash, event)
    ctx.warehouse.insert(ACTIVATIONS.table, [ACTIVATIONS.to_row(event)], ACTIVATIONS.columns)


@router.post("", response_model=ActivationOut, status_code=201, responses=errors(404))
def create_activation(body: ActivationIn, caller: Caller, ctx: Ctx) -> ActivationOut:
    """The member's organizer (or an admin) gets a code to read aloud or a link to send."""
    gate(caller, "member")
    try:
        member = ctx.registry.member(body.member_id)
    except NotFound:
        raise hidden("member", body.member_id) from None
    check(caller, "member", "change", facts_of_member(member), "member", body.member_id)
    if member.status != "active":
        raise ApiError(422, "member_inactive", "the member is no longer active here")
    code = new_activation_code()
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=ctx.settings.activation_ttl_s)
    h = activation_code_hash(ctx.settings, code)
    _record(
        ctx,
        ActivationRecorded(
            event_id=derived_id("activation", h, "1"),
            occurred_at=now,
            code_hash=h,
            revision=1,
            member_id=member.id,
            community_id=member.community_id,
            issued_by=actor(caller),
            issued_at=now,
            expires_at=expires,
        ),
    )
    return ActivationOut(
        code=format_activation_code(code),
        url=f"{ctx.settings.public_url}/bind/{code}",
        member_id=member.id,
        expires_at=expires,
    )


@router.post(
    "/redeem",
    response_model=RedeemOut,
    responses=errors(
        404,
        409,
        410,
        429,
        why={
            404: "no such code (counts against the rate limit)",
            409: "the code was already used",
            410: "the code has expired",
            429: "too many failed attempts (from this address, on this code or member); wait",
        },
    ),
)
def redeem_activation(body: RedeemIn, request: Request, ctx: Ctx) -> RedeemOut:
    """No auth: the code is the credential. Single use; failed attempts are limited per client
    address (forwarded addresses only from `TRUSTED_PROXIES`), per code and member, and in
    total without closing the door to everyone (services.ratelimit.ActivationLimiter)."""
    limiter = _limiter(request)
    client = client_address(request, ctx.settings)
    code = normalize_activation_code(body.code)
    h = activation_code_hash(ctx.settings, code) if code is not None else None
    if limiter.refused(client, h):
        raise _too_many(ctx)
    if code is None or h is None:
        limiter.failed(client)
        raise ApiError(404, "activation_not_found", "no such activation code")
    with _redeem_lock:
        found = read_activation(ctx.warehouse, h)
        if found is None:
            limiter.failed(client)
            raise ApiError(404, "activation_not_found", "no such activation code")
        row = found
        member_id = str(row["member_id"])
        if limiter.refused(client, h, member_id):
            raise _too_many(ctx)
        now = datetime.now(UTC)
        if row["redeemed_at"] is not None:
            limiter.failed(client, h, member_id)
            raise ApiError(409, "activation_used", "this activation code has already been used")
        expires_at = _utc(row["expires_at"])
        if expires_at <= now:
            limiter.failed(client, h, member_id)
            raise ApiError(410, "activation_expired", "this activation code has expired")
        try:
            member = ctx.registry.member(row["member_id"])
        except NotFound as exc:
            raise ApiError(404, "member_not_found", "the member no longer exists") from exc
        if member.status != "active":
            raise ApiError(422, "member_inactive", "the member is no longer active here")
        if body.phone is not None and body.phone != member.phone:
            # As an unknown code: the answer must not tell whose code this is.
            limiter.failed(client, h, member_id)
            raise ApiError(404, "activation_not_found", "no such activation code")
        _record(
            ctx,
            ActivationRecorded(
                event_id=derived_id("activation", h, "2"),
                occurred_at=now,
                code_hash=h,
                revision=2,
                member_id=member.id,
                community_id=row["community_id"],
                issued_by=row["issued_by"],
                issued_at=_utc(row["issued_at"]),
                expires_at=expires_at,
                redeemed_at=now,
            ),
        )
    token = issue_bearer(ctx.settings, "member", member.id, ttl_s=ctx.settings.phone_token_ttl_s)
    return RedeemOut(
        token=token,
        member_id=member.id,
        member_name=member.name,
        expires_at=verify_bearer(ctx.settings, token).expires_at,
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
