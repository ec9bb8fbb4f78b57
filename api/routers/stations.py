"""Station QR codes for posters."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import Caller, Ctx, station_tokens
from services.qr import render, station_url

router = APIRouter(prefix="/v1/stations", tags=["stations"])


@router.get(
    "/{station_id}/qr",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}, "image/svg+xml": {}}, "description": "the QR code"}
    },
)
def station_qr(
    station_id: str,
    caller: Caller,
    ctx: Ctx,
    format: Annotated[Literal["png", "svg"], Query()] = "png",
) -> Response:
    """The station's QR code: it encodes `{PUBLIC_URL}/s/{station_token}` (the station's
    organizer and the admin only, like every answer carrying a station's token)."""
    station = station_tokens(ctx, caller, station_id)
    data = render(station_url(ctx.settings, station.id), format)
    media = "image/svg+xml" if format == "svg" else "image/png"
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=300"})
