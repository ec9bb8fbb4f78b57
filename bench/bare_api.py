"""The bare baseline of the check-in benchmark: `POST /v1/checkins` returning the same JSON
without Kafka. `uvicorn bench.bare_api:create_app --factory`.

Included (the same work as the real handler): bearer verification, body validation
(CheckinIn), station-token verification, the scan-time checks and building the event with its
derived id. Excluded: the registry lookups (an in-memory replica in the real API), the rate
limiters, the revocation check, the publish with acks=all, and what the real process runs
beside the handler (the embedded sink, the registry and revocation refreshes). The app is a
bare FastAPI with this one route; in the real API the 43 routes registered before it (of 111)
are tried first, each request.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse

from api.errors import ApiError, install
from api.schemas import CheckinAccepted, CheckinIn
from services.events import CheckinScanned, derived_id, utcnow
from services.settings import get_settings
from services.station_codes import verify_scan_token
from services.tokens import InvalidToken, verify_bearer


def create_app() -> FastAPI:
    settings = get_settings()
    app = FastAPI()
    install(app)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.post("/v1/checkins", response_model=CheckinAccepted, status_code=202)
    async def check_in(body: CheckinIn, authorization: str = Header("")) -> CheckinAccepted:
        try:
            caller = verify_bearer(settings, authorization.removeprefix("Bearer "))
            station_id = verify_scan_token(settings, body.station_token)
        except InvalidToken as exc:
            raise ApiError(401, "unauthorized", str(exc)) from exc
        now = utcnow()
        scanned_at = body.scanned_at or now
        if scanned_at > now + timedelta(seconds=settings.max_clock_skew_s):
            raise ApiError(422, "scanned_at_out_of_range", "scanned_at lies in the future")
        event = CheckinScanned(
            event_id=derived_id("checkin", caller.subject_id, str(body.client_event_id)),
            occurred_at=scanned_at,
            member_id=caller.subject_id,
            station_id=station_id,
            station_community_id="c",
            unit_id="u",
            member_community_id="c",
            member_grid_id=None,
            action=body.action,
            client_event_id=str(body.client_event_id),
            received_at=now,
        )
        event.to_bytes()  # the serialisation the real handler hands to the producer
        return CheckinAccepted(event_id=event.event_id)

    return app
