"""The tablet at a station: an organizer issues it a screen key; with it, the tablet fetches
the station's current rotating QR code (rendered by the server, no script library)."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header
from pydantic import BaseModel, Field

from api.deps import Caller, Ctx, gate, managed_station
from api.errors import ApiError
from api.openapi import errors
from services.events import Station
from services.qr import render
from services.registry import NotFound
from services.station_codes import (
    current_window,
    issue_screen_key,
    sign_window,
    verify_screen_key,
    window_valid_until,
)
from services.tokens import InvalidToken

router = APIRouter(prefix="/v1/stations", tags=["stations"])


class ScreenKeyOut(BaseModel):
    key: str
    url: str = Field(
        description="open it once on the tablet: {PUBLIC_URL}/stations/{id}/screen?key="
    )
    expires_at: datetime


class LiveCodeOut(BaseModel):
    station_id: str
    station_name: str
    token: str = Field(description="the rotating station token, accepted by POST /v1/checkins")
    url: str = Field(description="what the QR code encodes: {PUBLIC_URL}/s/{token}")
    window: int
    next_change_at: float = Field(description="epoch seconds when the next code starts")
    valid_until: float = Field(description="epoch seconds after which this code is refused")
    refresh_in_s: float = Field(description="seconds until the next code; fetch again then")
    server_time: float = Field(description="the server's clock (epoch seconds), for countdowns")
    qr_svg: str = Field(description="the QR code as a data: URI (image/svg+xml)")


def _visible_station(ctx: Ctx, station_id: str, community_id: str | None) -> Station:
    try:
        station = ctx.registry.station(station_id)
    except NotFound:
        station = None
    if station is None or (community_id is not None and station.community_id != community_id):
        raise ApiError(
            404, "station_not_found", f"no station {station_id!r} visible to this caller"
        )
    return station


@router.post("/{station_id}/screen-keys", response_model=ScreenKeyOut, status_code=201)
def create_screen_key(station_id: str, caller: Caller, ctx: Ctx) -> ScreenKeyOut:
    """The station's organizer (or an admin) gets a key for the station's tablet."""
    gate(caller, "community_desk")
    station = managed_station(ctx, caller, station_id)
    key, exp = issue_screen_key(ctx.settings, station.id)
    return ScreenKeyOut(
        key=key,
        url=f"{ctx.settings.public_url}/stations/{station.id}/screen?key={key}",
        expires_at=datetime.fromtimestamp(exp, UTC),
    )


def live_code(ctx: Ctx, station: Station) -> LiveCodeOut:
    s = ctx.settings
    now = time.time()
    window = current_window(s, now)
    token = sign_window(s, station.id, window)
    url = f"{s.public_url}/s/{token}"
    svg = base64.b64encode(render(url, "svg")).decode()
    return LiveCodeOut(
        station_id=station.id,
        station_name=station.name,
        token=token,
        url=url,
        window=window,
        next_change_at=float((window + 1) * s.station_code_window_s),
        valid_until=window_valid_until(s, window),
        refresh_in_s=round((window + 1) * s.station_code_window_s - now, 3),
        server_time=now,
        qr_svg=f"data:image/svg+xml;base64,{svg}",
    )


@router.get("/{station_id}/live-code", response_model=LiveCodeOut, responses=errors(401, 404))
def get_live_code(
    station_id: str,
    ctx: Ctx,
    x_screen_key: Annotated[str | None, Header(description="the station's screen key")] = None,
) -> LiveCodeOut:
    """The current rotating code; the screen key (header `X-Screen-Key`) must name this station."""
    if not x_screen_key:
        raise ApiError(401, "unauthorized", "missing screen key")
    try:
        key = verify_screen_key(ctx.settings, x_screen_key)
    except InvalidToken as exc:
        raise ApiError(401, "unauthorized", str(exc)) from exc
    if key.station_id != station_id:
        raise ApiError(404, "station_not_found", f"no station {station_id!r} for this screen key")
    return live_code(ctx, _visible_station(ctx, station_id, None))
