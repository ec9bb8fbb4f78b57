"""Station QR codes for posters."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import Caller, Ctx
from api.errors import ApiError
from services.qr import render, station_url
from services.registry import NotFound

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
    """The station's QR code: it encodes `{PUBLIC_URL}/s/{station_token}`."""
    try:
        station = ctx.registry.station(station_id)
    except NotFound:
        station = None
    if station is None or not (
        caller.role == "admin"
        or (caller.role == "organizer" and caller.subject_id == station.community_id)
    ):
        raise ApiError(
            404, "station_not_found", f"no station {station_id!r} visible to this caller"
        )
    data = render(station_url(ctx.settings, station.id), format)
    media = "image/svg+xml" if format == "svg" else "image/png"
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=300"})
