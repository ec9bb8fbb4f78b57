"""People-facing pages (Simplified Chinese), served with their scripts and styles by this app.

Pages are server-rendered shells; the scripts under `static/` call the JSON API. Every page
carries a Content-Security-Policy that allows only this origin (and `data:` images for the
server-rendered QR code), so a page can never load anything from outside the app.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, HTMLResponse, Response

from api.deps import Ctx, screen_station
from api.pages import messages
from api.pages.assets import version, versioned
from services.registry import NotFound
from services.settings import Settings
from services.station_codes import (
    StationCodeExpired,
    format_activation_code,
    normalize_activation_code,
    verify_scan_token,
)
from services.text import escape_html
from services.tokens import InvalidToken

router = APIRouter(include_in_schema=False)

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

ACTIONS = (
    '<div class="buttons" id="actions">'
    '<button type="button" data-action="in" id="btn-in">签到</button>'
    '<button type="button" data-action="out" id="btn-out">签退</button>'
    "</div>"
)


def _template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


# The member's pages are one installable app (a web manifest and a service worker that keeps the
# app shell and the stations' pages for offline scans); the desk pages are not part of it.
MEMBER_HEAD = '<link rel="manifest" href="/manifest.webmanifest">'


def _page(
    title: str,
    subtitle: str,
    body: str,
    *,
    script: str = "app.js",
    body_class: str = "phone",
    data: dict[str, str] | None = None,
    status: int = 200,
    head: str = "",
) -> HTMLResponse:
    attrs = " ".join(f'data-{k}="{html.escape(v, quote=True)}"' for k, v in (data or {}).items())
    text = _template("base.html").format(
        title=escape_html(title),
        subtitle=escape_html(subtitle),
        body=body,
        script=script,
        body_class=body_class,
        data=attrs,
        head=head,
    )
    return HTMLResponse(
        text,
        status_code=status,
        headers={
            "Content-Security-Policy": CSP,
            # Tokens live in the URL of these pages: never cache them on shared devices.
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )


def _phone_body(
    actions: str = "", code: str = "", status: str = "", contact: str = "", notice: str = ""
) -> str:
    return _template("phone.html").format(
        actions=actions,
        code=html.escape(code, quote=True),
        status=html.escape(status),
        contact=html.escape(contact),
        notice=notice,
    )


def _privacy_notice(settings: Settings) -> str:
    """What is collected and why, shown where a phone binds (个人信息保护法: informed before
    the first scan); how long raw scans are kept follows SCAN_RETENTION_YEARS."""
    years = settings.scan_retention_years
    kept = f"当年及之前 {years - 1} 年（共 {years} 年）" if years > 1 else "当年"
    return _template("privacy_notice.html").format(scan_years=kept if years > 0 else "长期")


def _contact(community_name: str = "", phone: str | None = None) -> str:
    """Where a member without an activation code turns: their community, by phone if known."""
    if community_name and phone:
        return f"没有激活码？请联系社区：{community_name}，电话 {phone}"
    if community_name:
        return f"没有激活码？请联系社区：{community_name}"
    return "没有激活码？请联系您报到的社区"


@router.get("/s/{station_token}", response_class=HTMLResponse)
def scan_page(station_token: str, ctx: Ctx) -> HTMLResponse:
    """What a phone opens after scanning a station's QR code (poster or screen)."""
    try:
        station = ctx.registry.station(verify_scan_token(ctx.settings, station_token))
        if not station.accepts_poster and not station_token.startswith("w"):
            # A printed poster at a station that takes only its screen's code (the API refuses
            # it too, 403 `poster_not_accepted`): say so before the member taps.
            return _page(
                station.name,
                "本站点请扫描屏幕上的动态二维码",
                _phone_body(status="本站点不接受纸质二维码，请扫描站点屏幕上正在显示的二维码。"),
                data={"page": "invalid"},
                status=403,
            )
    except StationCodeExpired:
        return _page(
            "二维码已过期",
            "请重新扫描站点屏幕上正在显示的二维码",
            _phone_body(status="此二维码已过期，请重新扫描。"),
            data={"page": "invalid"},
            status=400,
        )
    except (InvalidToken, NotFound):
        return _page(
            "二维码无效",
            "请扫描站点张贴的最新二维码",
            _phone_body(status="无法识别此二维码，请联系社区工作人员。"),
            data={"page": "invalid"},
            status=400,
        )
    try:
        community = ctx.registry.community(station.community_id)
        community_name, phone = community.name, community.phone
    except NotFound:
        community_name, phone = "", None
    return _page(
        station.name,
        f"{ctx.registry.station_kind_label(station.kind)} · {community_name}".rstrip(" ·"),
        _phone_body(
            ACTIONS,
            contact=_contact(community_name, phone),
            notice=_privacy_notice(ctx.settings),
        ),
        data={
            "page": "scan",
            "station-token": station_token,
            "station-name": station.name,
            "station-community": station.community_id,
            "community-name": community_name,
            "repeat-s": str(int(ctx.settings.session_repeat_window_s)),
        },
        head=MEMBER_HEAD,
    )


@router.get("/scan-offline", response_class=HTMLResponse)
def offline_scan_shell(ctx: Ctx) -> HTMLResponse:
    """The scan page without a station: the service worker answers a station's address with it
    when the phone is offline and has never opened that station; the script takes the station
    token from the address, so the scan is queued and sent once the phone is online."""
    return _page(
        "扫码签到",
        "当前离线：签到、签退会先保存在本机，联网后自动上传",
        _phone_body(ACTIONS, contact=_contact(), notice=_privacy_notice(ctx.settings)),
        data={
            "page": "scan",
            "station-token": "",
            "station-name": "",
            "repeat-s": str(int(ctx.settings.session_repeat_window_s)),
        },
        head=MEMBER_HEAD,
    )


@router.get("/messages.js", include_in_schema=False)
def messages_script() -> Response:
    """The Chinese message of every error code (api/pages/messages.py), for every page."""
    return Response(
        messages.script(),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/sw.js", include_in_schema=False)
def service_worker() -> Response:
    """Served from the root so that its scope covers /s/..., /me and /bind/."""
    return Response(
        (STATIC / "sw.js").read_text(encoding="utf-8"),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )


@router.get("/manifest.webmanifest", include_in_schema=False)
def manifest() -> Response:
    return Response(
        (STATIC / "manifest.webmanifest").read_text(encoding="utf-8"),
        media_type="application/manifest+json",
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/bind", response_class=HTMLResponse)
def bind_page_without_code(ctx: Ctx) -> HTMLResponse:
    """Where `/bind/{code}` lands once the page moved the code out of the address bar."""
    return bind_page("", ctx)


@router.get("/bind/{code}", response_class=HTMLResponse)
def bind_page(code: str, ctx: Ctx) -> HTMLResponse:
    """Opened from the organizer's activation link. Nothing is redeemed on GET: chat apps
    fetch links for previews, which must not burn the code; the member taps to bind."""
    normal = normalize_activation_code(code)
    shown = format_activation_code(normal) if normal else ""
    return _page(
        "绑定手机",
        "在职党员到居住地社区报到服务",
        _phone_body(code=shown, contact=_contact(), notice=_privacy_notice(ctx.settings)),
        data={"page": "bind"},
        head=MEMBER_HEAD,
    )


@router.get("/me", response_class=HTMLResponse)
def member_page(ctx: Ctx) -> HTMLResponse:
    """The member's own page; `/me?t=<token>` binds this phone first."""
    notice = _privacy_notice(ctx.settings)
    body = (
        _phone_body(contact=_contact(), notice=notice)
        + _template("me_links.html")
        # Service slots (活动报名): their own card and script.
        + versioned(_template("slots_card.html"))
    )
    # Excused weeks and standing posts (issue 14), with their own script.
    body += versioned(_template("leave_me.html"))
    return _page(
        "我的志愿服务",
        "在职党员到居住地社区报到服务",
        body,
        data={"page": "me"},
        head=MEMBER_HEAD,
    )


@router.get("/stations/{station_id}/screen", response_class=HTMLResponse)
def screen_page(
    station_id: str, ctx: Ctx, key: Annotated[str, Query(max_length=2000)] = ""
) -> HTMLResponse:
    """The station's tablet: a rotating QR code, opened with the organizer's screen link. The
    page moves the key into the tablet's storage and cleans the address, so a reload comes
    without it: the page is then served as is, and the live code (which checks the key it is
    sent) decides."""
    try:
        # With a key: signed, this station's and not revoked (api.deps.screen_station).
        station = screen_station(ctx, key, station_id) if key else ctx.registry.station(station_id)
    except (InvalidToken, NotFound):
        return _page(
            "屏幕未授权",
            "请使用社区工作人员提供的站点屏幕链接打开",
            '<section class="screen"><p id="screen-status">屏幕链接无效或已过期。</p></section>',
            script="screen.js",
            body_class="screen-page",
            data={"page": "screen-invalid"},
            status=403,
        )
    return _page(
        station.name,
        f"{ctx.registry.station_kind_label(station.kind)} · 扫码签到",
        _template("screen.html"),
        script="screen.js",
        body_class="screen-page",
        data={
            "page": "screen",
            "station-id": station.id,
            "window-s": str(ctx.settings.station_code_window_s),
        },
    )


# ---- desk pages (organizer, HR) and the member's history (issue 6) ------------------------

# Desk pages also allow inline styles: ECharts styles its tooltips inline, and the poster sheet
# (`/v1/communities/{id}/posters`, fetched with the token and opened as a blob, which inherits
# this policy) carries its own <style>. Scripts stay this origin's only.
DESK_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


def _desk(
    title: str, subtitle: str, template: str, script: str, page: str, extra: str = ""
) -> HTMLResponse:
    # Versioned script and style URLs: cached for good, a new version is a new URL.
    resp = _page(
        title,
        subtitle,
        versioned(_template(template) + (_template(extra) if extra else "")),
        script=f"{script}?v={version(script)}",
        body_class="desk",
        data={"page": page},
    )
    resp.headers["Content-Security-Policy"] = DESK_CSP
    return resp


@router.get("/org", response_class=HTMLResponse)
def organizer_dashboard() -> HTMLResponse:
    """The community organizer's week: charts, who has not served, review queue, posters."""
    return _desk(
        "社区工作台",
        "在职党员到居住地社区报到服务",
        "dashboard.html",
        "dashboard.js",
        "org",
        # Service slots (服务活动与报名): their own section and script.
        extra="slots_desk.html",
    )


@router.get("/organizer", response_class=HTMLResponse)
def organizer_dashboard_alias() -> HTMLResponse:
    return organizer_dashboard()


@router.get("/hr", response_class=HTMLResponse)
def hr_page() -> HTMLResponse:
    """The unit HR office: the annual assessment, its rules, CSV and Excel downloads."""
    return _desk("单位年度考核", "在职党员到居住地社区报到服务", "hr.html", "hr.js", "hr")


@router.get("/admin/access-log", response_class=HTMLResponse)
def access_log_page() -> HTMLResponse:
    """The admin's log of who read whose personal data (个人信息查看记录)."""
    return _desk(
        "个人信息查看记录",
        "在职党员到居住地社区报到服务",
        "access_log.html",
        "access_log.js",
        "access-log",
    )


@router.get("/hr/card", response_class=HTMLResponse)
def quarterly_card_page() -> HTMLResponse:
    """A member's quarterly card (季度纪实卡) to print, read with the HR office's stored token."""
    return _desk("季度纪实卡", "在职党员到居住地社区报到服务", "card.html", "card.js", "card")


@router.get("/county", response_class=HTMLResponse)
def county_page() -> HTMLResponse:
    """The county office's and a town office's drill-down, trend and check-in heatmap."""
    return _desk(
        "区域化党建服务统计", "县 · 镇（街道） · 社区 · 网格", "county.html", "county.js", "county"
    )


@router.get("/me/history", response_class=HTMLResponse)
def member_history_page() -> HTMLResponse:
    """The member's history, feedback about them and the record of service (服务证明)."""
    return _page(
        "我的服务记录",
        "在职党员到居住地社区报到服务",
        _template("history.html"),
        script="history.js",
        data={"page": "history"},
        head=MEMBER_HEAD,
    )


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    """Browsers ask every site for it; a 404 on each page view fills the logs and the console."""
    return FileResponse(
        STATIC / "favicon.ico",
        media_type="image/x-icon",
        headers={"Cache-Control": "public, max-age=86400"},
    )
