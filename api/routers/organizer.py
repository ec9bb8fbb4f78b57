"""What a community organizer watches: who is on site now, the roster of its members (and the
list of who has not served as a file), and the posters to print."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel, Field

from api.deps import AccessLog, Caller, Ctx, check, community_desk, community_facts, may_read
from api.openapi import errors
from api.weeks import WeekQuery, parse_week
from services import access
from services.events import utcnow
from services.exports import CSV_MEDIA, XLSX_MEDIA, csv_chunks, xlsx_chunks
from services.privacy import mask_phone
from services.qr import render, station_url
from services.reads.registry import community_stations
from services.reads.roster import Binding, RosterRow, community_roster
from services.reads.sessions import on_site
from services.text import escape_html
from services.timeutil import local

router = APIRouter(prefix="/v1/communities", tags=["organizer"])


class OnSite(BaseModel):
    member_id: str
    member_name: str
    phone: str | None = Field(description="masked (138****0004); `phone_revealable`: in full")
    phone_revealable: bool = Field(
        description="the caller may reveal it (GET /v1/members/{member_id}/phone, logged):"
        " members of the caller's own community"
    )
    station_id: str
    station_name: str
    since: datetime


class OnSiteList(BaseModel):
    community_id: str
    items: list[OnSite]
    total: int


def _revealable(ctx: Ctx, caller: Caller, member_id: str) -> bool:
    # A member serving at another community's station: that community may not call them.
    try:
        m = ctx.registry.member(member_id)
    except LookupError:
        return False
    return may_read(caller, "member_phone", access.member_facts(m.id, m.community_id, m.unit_id))


def _community(ctx: Ctx, caller: Caller, community_id: str) -> None:
    community_desk(ctx, caller, community_id)


@router.get("/{community_id}/on-site", response_model=OnSiteList, responses=errors(503))
def on_site_now(community_id: str, caller: Caller, ctx: Ctx, audit: AccessLog) -> OnSiteList:
    """Members checked in right now at this community's stations (open sessions); the members
    listed are logged (one access-log entry)."""
    _community(ctx, caller, community_id)
    rows = on_site(ctx.warehouse, community_id)
    audit.record_list([r[0] for r in rows], "on site")
    items = [
        OnSite(
            member_id=mid,
            member_name=name,
            phone=mask_phone(phone),
            phone_revealable=_revealable(ctx, caller, mid),
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
    # The posters carry the stations' signed tokens: only those who may hold them (the county
    # and town offices read the community's desk, not its tokens).
    check(
        caller,
        "station_token",
        "read",
        community_facts(ctx, caller, community_id),
        "community",
        community_id,
    )
    community = ctx.registry.community(community_id)
    stations = community_stations(ctx.warehouse, community_id)
    e = escape_html
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


class RosterItem(BaseModel):
    member_id: str
    name: str
    phone: str | None = Field(
        description="masked (138****0004): a roster identifies, it does not call"
    )
    grid_id: str | None
    grid_name: str | None
    status: str
    reported_on: date | None
    binding: Binding = Field(
        description="bound: a phone redeemed an activation code; code_issued: a code is waiting; "
        "unbound: neither"
    )
    served_this_week: bool | None = Field(
        description="as the week's figures count it; null when not registered that week"
    )
    week_sessions: int
    week_hours: float
    year_sessions: int
    year_hours: float
    last_service: datetime | None = Field(description="start of the latest counted session")
    excused_this_week: bool = Field(
        default=False,
        description="an approved excused week (请假) not served: neither served nor missed",
    )


class Roster(BaseModel):
    community_id: str
    week: str
    items: list[RosterItem]
    total: int


_BINDING_LABEL = {"bound": "已绑定", "code_issued": "已发激活码", "unbound": "未绑定"}
_NOT_SERVED_HEADERS = ["姓名", "手机号码", "网格", "手机绑定", "本年服务时长（小时）", "上次服务"]
_NOT_SERVED_WIDTHS = [10, 14, 16, 11, 19, 18]


def _when(v: datetime | None) -> str | None:
    return local(v).strftime("%Y-%m-%d %H:%M") if v else None


def _not_served_rows(rows: list[RosterRow]) -> Iterator[list[Any]]:
    for r in rows:
        if r.served_this_week is False and not r.excused_this_week:
            yield [
                r.name,
                # In full: this list is for calling the members who have not served yet.
                r.phone,
                r.grid_name,
                _BINDING_LABEL[r.binding],
                r.year_hours,
                _when(r.last_service),
            ]


@router.get(
    "/{community_id}/roster",
    response_model=Roster,
    responses={
        **errors(503),
        200: {
            "content": {"text/csv": {}, XLSX_MEDIA: {}},
            "description": "JSON; or with format=csv|xlsx the members who have not served the "
            "week, to call (phones in full; the file is logged in the access log)",
        },
    },
)
def roster(
    community_id: str,
    caller: Caller,
    ctx: Ctx,
    audit: AccessLog,
    week: WeekQuery = None,
    format: Annotated[Literal["json", "csv", "xlsx"], Query()] = "json",
) -> Any:
    """The community's members by name (natural order): phone binding, the week, the year,
    the last service; phones masked. The files list who has not served the week yet."""
    w, last_day = parse_week(week)
    community_desk(ctx, caller, community_id)
    rows = community_roster(ctx.warehouse, community_id, w, last_day, utcnow())
    if format == "json":
        audit.record_list([r.member_id for r in rows], f"roster {w}")
        items = [
            RosterItem(
                member_id=r.member_id,
                name=r.name,
                phone=mask_phone(r.phone),
                grid_id=r.grid_id,
                grid_name=r.grid_name,
                status=r.status,
                reported_on=r.reported_on,
                binding=r.binding,
                served_this_week=r.served_this_week,
                week_sessions=r.week_sessions,
                week_hours=r.week_hours,
                year_sessions=r.year_sessions,
                year_hours=r.year_hours,
                last_service=r.last_service,
                excused_this_week=r.excused_this_week,
            )
            for r in rows
        ]
        return Roster(community_id=community_id, week=w, items=items, total=len(items))
    # Phones in full, for calling: only who must call (the member_phone rule: the community's
    # organizer, the admin), not the offices that read the desk; who receives the file is
    # logged, with every member it lists.
    check(
        caller,
        "member_phone",
        "read",
        access.Facts(community_id=community_id),
        "community",
        community_id,
        hideable=False,
        message="the not-served file lists phones in full: the community's organizer's",
    )
    listed = [r.member_id for r in rows if r.served_this_week is False]
    audit.record("phones_export", listed, f"not served {w}, {format}")
    filename = f"not-served-{w}-{community_id}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if format == "csv":
        return StreamingResponse(
            csv_chunks(_NOT_SERVED_HEADERS, _not_served_rows(rows)),
            media_type=CSV_MEDIA,
            headers=headers,
        )
    return StreamingResponse(
        xlsx_chunks(
            f"{w}未服务",
            _NOT_SERVED_HEADERS,
            _not_served_rows(rows),
            widths=_NOT_SERVED_WIDTHS,
            freeze_header=True,
        ),
        media_type=XLSX_MEDIA,
        headers=headers,
    )
