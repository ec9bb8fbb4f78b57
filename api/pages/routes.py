"""People-facing pages (Simplified Chinese), served with their scripts and styles by this app."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.deps import Ctx
from services.registry import NotFound
from services.tokens import InvalidToken, verify_station

router = APIRouter(include_in_schema=False)

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
KIND_LABEL = {"service_station": "党群服务站", "member_post": "党员驿站"}


def _page(
    title: str, subtitle: str, body: str, station_token: str = "", status: int = 200
) -> HTMLResponse:
    text = (
        (TEMPLATES / "scan.html")
        .read_text(encoding="utf-8")
        .format(
            title=html.escape(title),
            subtitle=html.escape(subtitle),
            body=body,
            station_token=html.escape(station_token),
        )
    )
    return HTMLResponse(text, status_code=status)


@router.get("/s/{station_token}", response_class=HTMLResponse)
def scan_page(station_token: str, ctx: Ctx) -> HTMLResponse:
    """What a phone opens after scanning a station's QR code."""
    try:
        station = ctx.registry.station(verify_station(ctx.settings, station_token))
    except (InvalidToken, NotFound):
        return _page("二维码无效", "请扫描站点张贴的最新二维码", "", status=400)
    buttons = (
        '<div class="buttons"><button data-action="in">签到</button>'
        '<button data-action="out">签退</button></div>'
    )
    return _page(station.name, KIND_LABEL.get(station.kind, "服务站点"), buttons, station_token)


@router.get("/me", response_class=HTMLResponse)
def member_page() -> HTMLResponse:
    """The member's own page; `/me?t=<token>` binds this phone first."""
    return _page("我的志愿服务", "在职党员到居住地社区报到服务", "")
