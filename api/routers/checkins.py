"""Check-ins: a member's scan becomes one event on Kafka, acknowledged before we answer 202."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import APIRouter

from api.deps import CallerAndCtx, gate, rate_limit
from api.errors import ApiError, error_body
from api.openapi import errors
from api.schemas import CheckinAccepted, CheckinIn
from services import topics
from services.events import CheckinScanned, derived_id, utcnow
from services.metrics import CHECKINS as CHECKIN_METRIC
from services.reads.registry import MemberThen
from services.registry import NotFound
from services.sessions import backdated_poster
from services.station_codes import ScanBeforeCodeWindow, StationCodeExpired, verify_scan
from services.tokens import InvalidToken

router = APIRouter(prefix="/v1", tags=["checkins"])
_ACCEPTED = CHECKIN_METRIC.labels(result="accepted")


def _err(description: str, code: str, message: str) -> dict[str, object]:
    return {
        "description": description,
        "content": {"application/json": {"example": error_body(code, message)}},
    }


def _outside_window() -> ApiError:
    return ApiError(
        422,
        "scanned_at_outside_code_window",
        "scanned_at lies outside the window in which this station code was shown; "
        "scan the code on the screen again",
    )


@router.post(
    "/checkins",
    response_model=CheckinAccepted,
    status_code=202,
    responses={
        **errors(404, 429),
        400: _err(
            "the station token is not one this server signed (`invalid_station_token`), or a"
            " screen's rotating code sent after its window and grace (`station_code_expired`)",
            "invalid_station_token",
            "station token signature does not match",
        ),
        403: _err(
            "the caller is not a member (`forbidden`), a member not active"
            " (`member_not_active`), or a poster token at a station that accepts only its"
            " screen's rotating code (`poster_not_accepted`)",
            "poster_not_accepted",
            "this station accepts only the rotating code shown on its screen",
        ),
        422: _err(
            "scanned_at out of range (`scanned_at_out_of_range`), outside the rotating code's"
            " window (`scanned_at_outside_code_window`), a poster scan back-dated at a station"
            " that refuses them (`poster_scan_backdated`), or a malformed body",
            "scanned_at_outside_code_window",
            "scanned_at lies outside the window in which this station code was shown",
        ),
        503: _err(
            "Kafka did not acknowledge; retry with the same client_event_id",
            "kafka_unavailable",
            "...",
        ),
    },
)
async def check_in(body: CheckinIn, auth: CallerAndCtx) -> CheckinAccepted:
    """Records a scan. Re-sending the same `client_event_id` returns the same `event_id` and is
    never counted twice; `scanned_at` lets a phone send a scan it queued while offline."""
    caller, ctx = auth  # one dependency rather than `Caller` and `Ctx`: the hottest route
    gate(caller, "checkin")
    rate_limit(ctx.limits.checkins_member, caller.subject_id, "check-ins from this member")
    settings = ctx.settings
    if body.scanned_at is not None and body.scanned_at.tzinfo is None:
        raise ApiError(422, "scanned_at_invalid", "scanned_at must carry a time zone offset")
    claimed = None if body.scanned_at is None else body.scanned_at.timestamp()
    try:
        # A poster token, or a station screen's rotating code: that one counts only if the time
        # the scan claims falls in the code's window (plus the grace), so a scan queued offline
        # proves the screen was seen when it says.
        verified = verify_scan(settings, body.station_token, claimed)
    except StationCodeExpired as exc:
        if claimed is None:  # sent at once, as before: the code on the screen changed since
            raise ApiError(400, "station_code_expired", str(exc)) from exc
        raise _outside_window() from exc
    except ScanBeforeCodeWindow as exc:
        raise _outside_window() from exc
    except InvalidToken as exc:
        raise ApiError(400, "invalid_station_token", str(exc)) from exc
    station_id = verified.station_id

    # The in-memory replica answers on the event loop; the context (the database in the reads
    # process, a catch-up with the log on an edge) only when it has no answer, e.g. for a
    # member created a moment ago through another process.
    refs = ctx.replica.lookup(station_id, caller.subject_id)
    if refs is None:
        try:
            refs = await ctx.checkin_refs(station_id, caller.subject_id)
        except NotFound as exc:
            raise ApiError(404, f"{exc.kind}_not_found", str(exc)) from exc
    station, member, member_grid_id = refs
    if verified.proof == "poster" and not station.accepts_poster:
        raise ApiError(
            403,
            "poster_not_accepted",
            "this station accepts only the rotating code shown on its screen",
        )
    now = utcnow()
    scanned_at = body.scanned_at or now
    if scanned_at > now + timedelta(seconds=settings.max_clock_skew_s):
        raise ApiError(422, "scanned_at_out_of_range", "scanned_at lies in the future")
    if scanned_at < now - timedelta(hours=settings.max_scan_age_h):
        raise ApiError(
            422,
            "scanned_at_out_of_range",
            f"scanned_at lies more than {settings.max_scan_age_h:g} h in the past",
        )
    # Service belongs to the unit and community the member had when it was done: a scan queued
    # offline before the member's record changed (a move, leaving) is read against the registry
    # as it stood then. Rare (a late scan of a member moved since), so the history is read only
    # then.
    now_member = MemberThen(member.unit_id, member.community_id, member_grid_id, member.status)
    then = now_member
    if member.moved_after(scanned_at):
        then = await asyncio.to_thread(
            ctx.member_history.at, now_member, member.id, member.version, scanned_at
        )
    unit_id, community_id, member_grid_id, status = (
        then.unit_id,
        then.community_id,
        then.grid_id,
        then.status,
    )
    if status != "active":
        # A member who left or was transferred away serves no longer here; nothing is credited.
        raise ApiError(
            403, "member_not_active", f"member status is {status!r}; check-ins need 'active'"
        )

    if station.backdated_poster == "refuse" and backdated_poster(
        verified.proof, scanned_at, now, ctx.session_rules
    ):
        raise ApiError(
            422,
            "poster_scan_backdated",
            f"this station refuses poster scans sent more than {settings.poster_backdate_s} s"
            " after they were made; scan again on site",
        )

    rate_limit(ctx.limits.checkins_station, station.id, "check-ins at this station")

    event = CheckinScanned(
        # Derived from the member and the phone's id for this scan: a re-send is the same event.
        event_id=derived_id("checkin", member.id, str(body.client_event_id)),
        occurred_at=scanned_at,
        member_id=member.id,
        station_id=station.id,
        station_community_id=station.community_id,
        unit_id=unit_id,
        member_community_id=community_id,
        member_grid_id=member_grid_id,
        action=body.action,
        client_event_id=str(body.client_event_id),
        received_at=now,
        proof=verified.proof,
        device_id=body.device_id,
    )
    await ctx.publisher.send(topics.CHECKINS, member.id, event)
    _ACCEPTED.inc()
    return CheckinAccepted(event_id=event.event_id)
