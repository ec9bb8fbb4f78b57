"""The tablet at a station: an organizer issues it a screen key; with it, the tablet fetches
the station's current rotating QR code (rendered by the server, no script library). The
organizer revokes every screen key of a station at once (a lost or stolen tablet)."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header
from pydantic import BaseModel, Field

from api.deps import (
    Caller,
    Ctx,
    ScreenKeyForAnotherStation,
    gate,
    screen_key_generation,
    screen_station,
    station_tokens,
)
from api.errors import ApiError
from api.openapi import errors
from services.events import Station
from services.qr import render
from services.registry import NotFound, RegistryError
from services.station_codes import (
    current_window,
    issue_screen_key,
    sign_window,
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


class ScreenKeysRevoked(BaseModel):
    station_id: str
    screen_key_generation: int = Field(
        description="keys issued before (under a lower generation) are refused from now on"
    )
    revoked_at: datetime


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


@router.post("/{station_id}/screen-keys", response_model=ScreenKeyOut, status_code=201)
def create_screen_key(station_id: str, caller: Caller, ctx: Ctx) -> ScreenKeyOut:
    """The station's organizer (or an admin) gets a key for the station's tablet, valid
    `SCREEN_KEY_TTL_S` (30 days) unless the station's keys are revoked before."""
    gate(caller, "station_token")
    station = station_tokens(ctx, caller, station_id)
    key, exp = issue_screen_key(ctx.settings, station.id, screen_key_generation(ctx, station))
    return ScreenKeyOut(
        key=key,
        url=f"{ctx.settings.public_url}/stations/{station.id}/screen?key={key}",
        expires_at=datetime.fromtimestamp(exp, UTC),
    )


@router.post("/{station_id}/screen-keys/revoke", response_model=ScreenKeysRevoked)
def revoke_screen_keys(station_id: str, caller: Caller, ctx: Ctx) -> ScreenKeysRevoked:
    """Revokes every screen key issued so far for this station (the station's organizer or an
    admin): each tablet must be given a new key. Checked on every request of a screen; other
    API processes see it within `REGISTRY_REFRESH_S`. Recorded in the station's history."""
    gate(caller, "station_token")
    station = station_tokens(ctx, caller, station_id)
    try:
        after = ctx.registry.update(
            "station",
            station.id,
            {"screen_key_generation": screen_key_generation(ctx, station) + 1},
            caller,
        )
    except RegistryError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    except NotFound as exc:
        raise ApiError(404, "station_not_found", str(exc)) from exc
    assert isinstance(after, Station)
    return ScreenKeysRevoked(
        station_id=after.id,
        screen_key_generation=after.screen_key_generation,
        revoked_at=after.updated_at,
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
    """The current rotating code; the screen key (header `X-Screen-Key`) must name this station
    and not be revoked (checked on every request)."""
    if not x_screen_key:
        raise ApiError(401, "unauthorized", "missing screen key")
    try:
        station = screen_station(ctx, x_screen_key, station_id)
    except ScreenKeyForAnotherStation as exc:
        raise ApiError(
            404, "station_not_found", f"no station {station_id!r} for this screen key"
        ) from exc
    except InvalidToken as exc:
        raise ApiError(401, "unauthorized", str(exc)) from exc
    except NotFound:
        raise ApiError(
            404, "station_not_found", f"no station {station_id!r} visible to this caller"
        ) from None
    return live_code(ctx, station)
