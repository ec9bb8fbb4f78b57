"""What a community organizer watches: who is on site now, and the posters to print."""

from __future__ import annotations

import base64
import html
from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from api.deps import Caller, Ctx, community_desk
from services.qr import render, station_url
from services.reads.registry import community_stations
from services.reads.sessions import on_site

router = APIRouter(prefix="/v1/communities", tags=["organizer"])


class OnSite(BaseModel):
    member_id: str
    member_name: str
    phone: str | None
    station_id: str
    station_name: str
    since: datetime


class OnSiteList(BaseModel):
    community_id: str
    items: list[OnSite]
    total: int


def _community(ctx: Ctx, caller: Caller, community_id: str) -> None:
    community_desk(ctx, caller, community_id)


@router.get("/{community_id}/on-site", response_model=OnSiteList)
def on_site_now(community_id: str, caller: Caller, ctx: Ctx) -> OnSiteList:
    """Members checked in right now at this community's stations (open sessions)."""
    _community(ctx, caller, community_id)
    rows = on_site(ctx.warehouse, community_id)
    items = [
        OnSite(
            member_id=mid,
            member_name=name,
            phone=phone,
            station_id=sid,
            station_name=sname,
            since=start.replace(tzinfo=UTC),
        )
        for mid, name, phone, sid, sname, start in rows
    ]
    return OnSiteList(community_id=community_id, items=items, total=len(items))


@router.get(
    "/{community_id}/posters",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "A4 print sheet, one poster a page"}
    },
)
def poster_sheet(community_id: str, caller: Caller, ctx: Ctx) -> HTMLResponse:
    """Every station's QR poster for the community, A4, one per page: name, kind and code."""
    _community(ctx, caller, community_id)
    community = ctx.registry.community(community_id)
    stations = community_stations(ctx.warehouse, community_id)
    e = html.escape
    pages = []
    for sid, name, kind in stations:
        if ctx.registry.station(sid).accepts_poster:
            svg = render(station_url(ctx.settings, sid), "svg")
            src = "data:image/svg+xml;base64," + base64.b64encode(svg).decode()
            code = f'<img src="{src}" alt="{e(name)} 签到二维码">'
            hint = "在职党员请用手机相机扫码签到、签退"
        else:
            # The station takes only its screen's rotating code: a printed code would be refused.
            code = '<p class="screen-only">本站点不使用纸质二维码</p>'
            hint = "请扫描站点屏幕上的动态二维码签到、签退"
        pages.append(
            f'<section class="poster"><p class="kind">{e(ctx.registry.station_kind_label(kind))}</p>'
            f'<h1>{e(name)}</h1>{code}<p class="hint">{hint}</p>'
            f'<p class="community">{e(community.name)}</p></section>'
        )
    body = "".join(pages) or '<p class="empty">本社区尚无站点</p>'
    page = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>{e(community.name)} 站点二维码</title><style>
@page {{ size: A4; margin: 15mm; }}
body {{ margin: 0; font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; }}
.poster {{ page-break-after: always; text-align: center; padding-top: 10mm; }}
.poster:last-child {{ page-break-after: auto; }}
.kind {{ font-size: 28px; color: #c8102e; margin: 0; letter-spacing: .3em; }}
h1 {{ font-size: 40px; margin: 8mm 0; }}
img {{ width: 140mm; height: 140mm; }}
.hint {{ font-size: 22px; }} .screen-only {{ font-size: 28px; margin: 40mm 0; }} .community {{ font-size: 18px; color: #555; }}
</style></head><body>{body}</body></html>"""
    return HTMLResponse(page)
