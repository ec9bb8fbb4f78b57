"""Records of service (服务证明): issued from the warehouse, printable, verifiable by anyone."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.deps import AccessLog, Caller, Ctx, check, community_desk, readable_member
from api.errors import ApiError
from api.openapi import errors
from services import topics
from services.access import Facts
from services.counting import BELOW_MINIMUM_FLAG
from services.events import (
    Community,
    Member,
    RegistryRecord,
    ServiceRecordIssued,
    derived_id,
    utcnow,
)
from services.events.records import RecordedSession
from services.exports import CSV_MEDIA, XLSX_MEDIA, csv_chunks, xlsx_chunks
from services.privacy import mask_volunteer_no
from services.processors import route_for_event
from services.qr import render as render_qr
from services.reads.records import certified_sessions, community_services, issued_payload
from services.reads.records import total_hours as records_total_hours
from services.registry import NotFound, RegistryError
from services.service_records import (
    certificate_no,
    content_digest,
    format_code,
    mismatches,
    normalize_code,
    verification_code,
    volunteer_no,
)
from services.text import Line, escape_html
from services.timeutil import LOCAL_TZ

router = APIRouter(tags=["records"])


class RecordRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    period_from: date = Field(alias="from")
    period_to: date = Field(alias="to")

    @model_validator(mode="after")
    def _range(self) -> RecordRequest:
        if self.period_to < self.period_from:
            raise ValueError("'to' lies before 'from'")
        if (self.period_to - self.period_from).days > 366 * 5:
            raise ValueError("a record covers at most five years")
        return self


class RecordOut(BaseModel):
    code: str
    code_display: str
    print_url: str
    verify_url: str
    member_id: str
    member_name: str
    period_from: date
    period_to: date
    hours: float
    sessions: int
    issued_at: datetime


class Verification(BaseModel):
    valid: bool
    code: str
    member_name: str
    unit_name: str
    community_name: str
    period_from: date
    period_to: date
    hours: float
    sessions: int
    issued_at: datetime
    mismatches: list[str]
    # The national rules' fields (null on records issued before them).
    certificate_no: str
    volunteer_no: str | None = None
    person_in_charge: str | None = None
    handler: str | None = None
    contact_phone: str | None = None


def _out(ctx: Ctx, r: ServiceRecordIssued) -> RecordOut:
    base = ctx.settings.public_url
    return RecordOut(
        code=r.code,
        code_display=format_code(r.code),
        print_url=f"{base}/records/{r.code}",
        verify_url=f"{base}/v1/verify/{r.code}",
        member_id=r.member_id,
        member_name=r.member_name,
        period_from=r.period_from,
        period_to=r.period_to,
        hours=r.hours,
        sessions=r.sessions,
        issued_at=r.occurred_at,
    )


@router.post(
    "/v1/members/{member_id}/service-records",
    response_model=RecordOut,
    status_code=201,
    responses=errors(409),
)
def issue_record(member_id: str, body: RecordRequest, caller: Caller, ctx: Ctx) -> RecordOut:
    """Issues a record of the member's counted service in a period (local dates, inclusive): the
    sessions that began on those days, counted as the year's hours and the assessment count them
    (voided, open, rejected and unadjusted anomalous sessions are not service)."""
    m = readable_member(ctx, caller, member_id)
    certified = certified_sessions(ctx.warehouse, m.id, body.period_from, body.period_to)
    items = [
        RecordedSession(
            session_id=c.session_id,
            station_name=c.station_name,
            start=c.start,
            end=c.end,
            hours=c.hours,
            # A line credited below the weekly minimum says so: its hours are in the total,
            # it is not among the services counted.
            status=c.status if c.counted else BELOW_MINIMUM_FLAG,
        )
        for c in certified
    ]
    services = sum(1 for c in certified if c.counted)
    total_hours = records_total_hours(certified)
    try:
        unit_name = ctx.registry.unit(m.unit_id).name
        community = ctx.registry.community(m.community_id)
        community_name = community.name
    except NotFound as exc:
        raise ApiError(409, "registry_incomplete", str(exc)) from exc
    issued_at = utcnow()
    digest = content_digest(
        m.id, m.name, body.period_from, body.period_to, total_hours, services, items, issued_at
    )
    code = verification_code(ctx.settings, digest)
    record = ServiceRecordIssued(
        event_id=derived_id("service-record", code),
        occurred_at=issued_at,
        code=code,
        member_id=m.id,
        member_name=m.name,
        unit_name=unit_name,
        community_name=community_name,
        period_from=body.period_from,
        period_to=body.period_to,
        hours=total_hours,
        sessions=services,
        items=items,
        digest=digest,
        issued_by=f"{caller.role}:{caller.subject_id}",
        person_in_charge=getattr(community, "person_in_charge", None),
        handler=getattr(community, "handler", None),
        contact_phone=getattr(community, "phone", None),
        volunteer_no=volunteer_no(m.id, m.volunteer_no),
    )
    ctx.publisher.send_sync(topics.SERVICE_RECORDS, code, record)
    route = route_for_event(record)
    ctx.warehouse.insert(route.table, [route.to_row(record)], route.columns)
    return _out(ctx, record)


# ---- what the national rules ask the registry to hold ---------------------------------------


class VolunteerNoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    volunteer_no: Line | None = Field(
        max_length=64,
        description="the national volunteer number (志愿者编号) as the national volunteer service"
        " information system issued it: letters, digits and dashes, 6-32 long; null clears it."
        " Never a citizen ID number (refused: 422 citizen_id_refused)",
    )


class VolunteerNoOut(BaseModel):
    member_id: str
    volunteer_no: str | None = Field(description="masked, as every answer shows it")


@contextmanager
def _rules() -> Iterator[None]:
    try:
        yield
    except RegistryError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc


@router.put(
    "/v1/members/{member_id}/volunteer-no",
    response_model=VolunteerNoOut,
    tags=["records"],
)
def set_volunteer_no(
    member_id: str, body: VolunteerNoIn, caller: Caller, ctx: Ctx
) -> VolunteerNoOut:
    """Sets (or with null clears) the member's national volunteer number: the member on their
    own record, their unit's HR, the admin; recorded in the member's history like any field.
    The national export carries it in full, a record of service prints it masked."""
    with _rules():
        m = ctx.registry.update(
            "member", member_id, {"volunteer_no": body.volunteer_no}, caller, rule="volunteer_no"
        )
    assert isinstance(m, Member)
    return VolunteerNoOut(member_id=m.id, volunteer_no=mask_volunteer_no(m.volunteer_no))


class SignersPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    person_in_charge: Line | None = Field(
        default=None, min_length=1, max_length=50, description="负责人; null clears"
    )
    handler: Line | None = Field(
        default=None, min_length=1, max_length=50, description="经办人; null clears"
    )

    @model_validator(mode="after")
    def _some(self) -> SignersPatch:
        if not self.model_fields_set:
            raise ValueError("give person_in_charge, handler or both")
        return self


@router.patch(
    "/v1/communities/{community_id}/signers",
    response_model=Community,
    tags=["records"],
)
def set_signers(community_id: str, body: SignersPatch, caller: Caller, ctx: Ctx) -> RegistryRecord:
    """Who signs the community's records of service: its person in charge (负责人) and handler
    (经办人), set by the community's organizer, the office of its town, or the admin (the county
    office changes nothing); recorded in the community's history. Records issued afterwards
    name them; records issued before keep the names they were issued with."""
    with _rules():
        return ctx.registry.update(
            "community",
            community_id,
            body.model_dump(exclude_unset=True),
            caller,
            rule="community_signers",
        )


def _load(ctx: Ctx, code: str) -> ServiceRecordIssued:
    payload = issued_payload(ctx.warehouse, normalize_code(code))
    if payload is None:
        raise ApiError(404, "record_not_found", "no record of service was issued with this code")
    return ServiceRecordIssued.model_validate_json(payload)


def _wants_html(request: Request) -> bool:
    """A browser (the QR on the paper, a link) asks for HTML first; machines get the JSON."""
    accept = request.headers.get("accept", "")
    html_at, json_at = accept.find("text/html"), accept.find("application/json")
    return html_at >= 0 and (json_at < 0 or html_at < json_at)


@router.get(
    "/v1/verify/{code}",
    response_model=Verification,
    tags=["records"],
    responses={**errors(404), 200: {"content": {"text/html": {}}}},
)
def verify_record(
    code: str,
    ctx: Ctx,
    request: Request,
    member_name: Annotated[str | None, Query(description="as printed on the paper")] = None,
    hours: Annotated[float | None, Query(description="as printed on the paper")] = None,
    sessions: Annotated[int | None, Query(description="as printed on the paper")] = None,
    period_from: Annotated[date | None, Query()] = None,
    period_to: Annotated[date | None, Query()] = None,
) -> Verification | HTMLResponse:
    """Anyone holding the paper: confirms the code was issued here and returns what it certifies.
    Figures passed as query parameters are compared; any that differ are named and `valid` is
    false. A browser (`Accept: text/html` before JSON) gets the same answer as a Chinese page."""
    if _wants_html(request):
        return verify_page(code, ctx, member_name, hours, sessions, period_from, period_to)
    r = _load(ctx, code)
    bad = mismatches(
        r,
        {
            "member_name": member_name,
            "hours": hours,
            "sessions": sessions,
            "period_from": period_from.isoformat() if period_from else None,
            "period_to": period_to.isoformat() if period_to else None,
        },
    )
    return Verification(
        valid=not bad,
        code=format_code(r.code),
        member_name=r.member_name,
        unit_name=r.unit_name,
        community_name=r.community_name,
        period_from=r.period_from,
        period_to=r.period_to,
        hours=r.hours,
        sessions=r.sessions,
        issued_at=r.occurred_at,
        mismatches=bad,
        certificate_no=certificate_no(r.code),
        volunteer_no=r.volunteer_no,
        person_in_charge=r.person_in_charge,
        handler=r.handler,
        contact_phone=r.contact_phone,
    )


STATUS_LABEL = {
    "closed": "已完成",
    "capped": "已完成（超时按上限计）",
    "adjusted": "已核定",
    "auto_closed": "未签退（自动结束）",
    BELOW_MINIMUM_FLAG: "不足每周最低时长（计时长，不计次数）",
}


MISMATCH_LABEL = {
    "member_name": "姓名",
    "hours": "服务时长",
    "sessions": "服务次数",
    "period_from": "起始日期",
    "period_to": "截止日期",
}

# Shared by the print and the verify page: readable on a 320 px phone, A4 on paper.
_STYLE = """
@page { size: A4; margin: 18mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Serif CJK SC", "Songti SC", "SimSun", serif; color: #000;
  margin: 0 auto; padding: 16px; max-width: 800px; line-height: 1.6; background: #fff; }
h1 { text-align: center; letter-spacing: .3em; font-size: 26px; }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #000; padding: 4px; text-align: center; overflow-wrap: anywhere; }
.meta p { margin: 6px 0; }
.code { font-family: monospace; font-size: 16px; font-weight: bold; }
.seal { display: flex; justify-content: flex-end; margin: 28px 0 8px; }
.seal div { text-align: center; min-width: 14em; }
.seal .line { border-bottom: 1px solid #000; height: 5em; margin-bottom: 4px; }
.check { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; margin: 12px 0; }
.check p { flex: 1 1 12em; min-width: 0; }
#verify-url { overflow-wrap: anywhere; word-break: break-all; }
.table-wrap { max-width: 100%; overflow-x: auto; }
.check img { width: 120px; height: 120px; flex: none; }
.tools { display: flex; gap: 12px; margin: 16px 0; }
.tools button, .tools a { min-height: 48px; padding: 10px 20px; font-size: 18px; border: 0;
  border-radius: 10px; background: #c8102e; color: #fff; text-decoration: none;
  font-family: sans-serif; display: inline-flex; align-items: center; }
.tools a { background: #444; }
.ok { color: #1a7f37; } .bad { color: #b00020; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 6px 12px; font-size: 17px; }
dt { color: #333; } dd { margin: 0; font-weight: bold; }
@media print { .tools { display: none; } body { padding: 0; max-width: none; } }
"""


def _html(title: str, body: str, *, status: int = 200, script: str = "") -> HTMLResponse:
    page = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape_html(title)}</title><style>{_STYLE}</style>{script}</head>
<body><main>{body}</main></body></html>"""
    return HTMLResponse(
        page,
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _local(dt: datetime | None) -> str:
    return dt.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") if dt else "—"


def _volunteer_dl(r: ServiceRecordIssued) -> str:
    if not r.volunteer_no:
        return ""
    return f"<dt>志愿者编号</dt><dd>{escape_html(r.volunteer_no)}</dd>\n"


def _national_dl(r: ServiceRecordIssued) -> str:
    """The certificate template's fields, where the record carries them."""
    e = escape_html
    out = f'<dt>证明编号</dt><dd class="code">{e(certificate_no(r.code))}</dd>\n'
    for label, value in (
        ("负责人", r.person_in_charge),
        ("经办人", r.handler),
        ("联系电话", r.contact_phone),
    ):
        if value:
            out += f"<dt>{label}</dt><dd>{e(value)}</dd>\n"
    return out


def _verify_url(ctx: Ctx, code: str) -> str:
    return f"{ctx.settings.public_url}/verify/{code}"


@router.get("/verify/{code}", response_class=HTMLResponse, include_in_schema=False)
def verify_page(
    code: str,
    ctx: Ctx,
    member_name: Annotated[str | None, Query(max_length=200)] = None,
    hours: Annotated[float | None, Query()] = None,
    sessions: Annotated[int | None, Query()] = None,
    period_from: Annotated[date | None, Query()] = None,
    period_to: Annotated[date | None, Query()] = None,
) -> HTMLResponse:
    """The public check of a record of service, in Chinese: what the QR on the paper opens."""
    e = escape_html
    try:
        r = _load(ctx, code)
    except ApiError:
        return _html(
            "服务证明核验",
            '<h1>服务证明核验</h1><p class="bad" role="alert"><b>未找到此验证码对应的服务证明。</b></p>'
            "<p>请核对纸面上的验证码是否输入正确；如仍无法核验，请联系开具证明的社区。</p>",
            status=404,
        )
    bad = mismatches(
        r,
        {
            "member_name": member_name,
            "hours": hours,
            "sessions": sessions,
            "period_from": period_from.isoformat() if period_from else None,
            "period_to": period_to.isoformat() if period_to else None,
        },
    )
    verdict = (
        '<p class="bad" role="alert"><b>与纸面不一致：'
        + "、".join(e(MISMATCH_LABEL.get(b, b)) for b in bad)
        + "。</b>请以下列系统记录为准，并联系开具证明的社区。</p>"
        if bad
        else '<p class="ok" role="status"><b>✓ 此服务证明由本系统开具，真实有效。</b>请核对下列内容与纸面一致。</p>'
    )
    body = f"""<h1>服务证明核验</h1>
{verdict}
<dl>
<dt>验证码</dt><dd class="code">{e(format_code(r.code))}</dd>
<dt>姓名</dt><dd>{e(r.member_name)}</dd>
{_volunteer_dl(r)}<dt>工作单位</dt><dd>{e(r.unit_name)}</dd>
<dt>报到社区</dt><dd>{e(r.community_name)}</dd>
<dt>服务期间</dt><dd>{r.period_from.isoformat()} 至 {r.period_to.isoformat()}</dd>
<dt>服务次数</dt><dd>{r.sessions} 次</dd>
<dt>服务时长</dt><dd>{r.hours:.2f} 小时</dd>
<dt>开具时间</dt><dd>{_local(r.occurred_at)}（北京时间）</dd>
<dt>开具单位</dt><dd>{e(r.community_name)}</dd>
{_national_dl(r)}</dl>"""
    return _html("服务证明核验", body)


@router.get("/records/{code}", response_class=HTMLResponse, include_in_schema=False)
def print_record(code: str, ctx: Ctx) -> HTMLResponse:
    """The print-ready record (A4, readable on a phone), in Chinese, with a QR to its check."""
    try:
        r = _load(ctx, code)
    except ApiError:
        return _html(
            "志愿服务证明",
            '<h1>志愿服务证明</h1><p class="bad" role="alert"><b>未找到此服务证明。</b></p>'
            "<p>请核对链接是否完整，或在“我的服务记录”中重新开具。</p>",
            status=404,
        )
    e = escape_html
    check_url = _verify_url(ctx, r.code)
    qr = "data:image/svg+xml;base64," + base64.b64encode(render_qr(check_url, "svg")).decode()
    rows = "".join(
        f"<tr><td>{i}</td><td>{_local(s.start)[:10]}</td>"
        f"<td>{_local(s.start)[11:]}–{_local(s.end)[11:] if s.end else '—'}</td>"
        f"<td>{e(s.station_name)}</td><td>{s.hours:.2f}</td>"
        f"<td>{e(STATUS_LABEL.get(s.status, s.status))}</td></tr>"
        for i, s in enumerate(r.items, 1)
    )
    vol = f"（志愿者编号：{e(r.volunteer_no)}）" if r.volunteer_no else ""
    issued_on = r.occurred_at.astimezone(LOCAL_TZ)
    body = f"""<div class="tools"><button type="button" id="print">打印</button>
<a href="/me/history">返回</a></div>
<h1>志愿服务证明</h1>
<p class="certno">证明编号：<span class="code" id="certificate-no">{e(certificate_no(r.code))}</span></p>
<div class="meta">
<p>兹证明 <b>{e(r.member_name)}</b>{vol}（工作单位：{e(r.unit_name)}；报到社区：{e(r.community_name)}）
于 {r.period_from.isoformat()} 至 {r.period_to.isoformat()} 期间，在居住地社区参加在职党员志愿服务
<b>{r.sessions}</b> 次，累计服务时长 <b>{r.hours:.2f}</b> 小时。服务时段、地点与时长见下表。</p>
<p>服务时长仅计实际服务时间（签到至签退，按认定时长，超过上限的按上限计），不含往返路途；服务以开始时间（北京时间）所在日期计入期间；尚未结束、被驳回或因补传扫码已被重新配对取代的记录不计。本证明依据《志愿服务记录与证明出具办法（试行）》出具，无偿、如实记录。</p>
</div>
<div class="table-wrap"><table><thead><tr><th>序号</th><th>服务日期</th><th>服务时段</th><th>服务地点及内容</th><th>时长（小时）</th><th>状态</th></tr></thead>
<tbody>{rows or '<tr><td colspan="6">本期间无服务记录</td></tr>'}</tbody></table></div>
<div class="check"><img id="verify-qr" src="{qr}" alt="核验二维码">
<p>扫描二维码或访问 <span id="verify-url">{e(check_url)}</span> 核验本证明，核对姓名、时长与次数（谁记录谁证明）。</p></div>
<div class="seal"><div><p>出具组织：{e(r.community_name)}（盖章）</p>
<p>负责人：{e(r.person_in_charge or "")}　经办人：{e(r.handler or "")}</p>
<p>联系电话：{e(r.contact_phone or "")}</p><div class="line"></div>
<p>出具日期：{issued_on.year}年{issued_on.month}月{issued_on.day}日</p></div></div>"""
    return _html(
        f"志愿服务证明 {format_code(r.code)}",
        body,
        script='<script src="/static/print.js" defer></script>',
    )


# The national volunteer information system's bulk import of service records (全国志愿服务信息
# 系统, 志愿服务记录批量导入): one row per service, Chinese headers, documented in the README.
NATIONAL_HEADERS = [
    "志愿者姓名",
    "手机号码",
    "志愿者编号",
    "志愿服务组织",
    "活动名称",
    "服务地点",
    "服务日期",
    "开始时间",
    "结束时间",
    "服务时长（小时）",
    "成员编号",
]
NATIONAL_WIDTHS = [10, 14, 22, 18, 22, 20, 12, 10, 10, 12, 22]
NATIONAL_ACTIVITY = "在职党员到社区报到志愿服务"


@router.get(
    "/v1/communities/{community_id}/national-export",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {}, XLSX_MEDIA: {}},
            "description": "one row per service, for the national system's bulk import",
        }
    },
)
def national_export(
    community_id: str,
    caller: Caller,
    ctx: Ctx,
    access_log: AccessLog,
    period_from: Annotated[date, Query(alias="from", description="first local day")],
    period_to: Annotated[date, Query(alias="to", description="last local day")],
    format: Annotated[Literal["csv", "xlsx"], Query()] = "xlsx",
) -> StreamingResponse:
    """The services done at the community's stations between two local days (its organizer, the
    admin), one row each, as the national volunteer information system's bulk import takes them:
    volunteer (name, phone, national volunteer number when known), organization, activity,
    place, date, start, end and hours (actual credited time, the record of service's rule).
    Phones and volunteer numbers are in full: they identify the volunteer there."""
    community_desk(ctx, caller, community_id)
    # Full phones: the community that files them and the admin, as for a phone revealed (the
    # county's and towns' offices read the desk, not the phones).
    check(
        caller, "member_phone", "read", Facts(community_id=community_id), "community", community_id
    )
    if period_to < period_from:
        raise ApiError(422, "invalid_range", "'to' lies before 'from'")
    if not (date(2000, 1, 1) <= period_from and period_to <= date(2100, 12, 31)):
        raise ApiError(422, "invalid_range", "dates lie between 2000-01-01 and 2100-12-31")
    if (period_to - period_from).days > 366:
        raise ApiError(422, "invalid_range", "an export covers at most a year")
    org = ctx.registry.community(community_id).name
    services = list(community_services(ctx.warehouse, community_id, period_from, period_to))
    # Full phones leave the system here: logged like the not-served file.
    access_log.record(
        "phones_export",
        sorted({s.member_id for s in services}),
        f"national export {period_from.isoformat()}..{period_to.isoformat()}",
    )
    rows = (
        [
            s.member_name,
            s.phone,
            s.volunteer_no,
            org,
            NATIONAL_ACTIVITY,
            s.station_name,
            _local(s.start)[:10],
            _local(s.start)[11:],
            _local(s.end)[11:] if s.end else None,
            s.hours,
            s.member_id,
        ]
        for s in services
    )
    name = quote(f"志愿服务记录-{org}-{period_from.isoformat()}至{period_to.isoformat()}.{format}")
    headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{name}"}
    if format == "csv":
        return StreamingResponse(
            csv_chunks(NATIONAL_HEADERS, rows), media_type=CSV_MEDIA, headers=headers
        )
    return StreamingResponse(
        xlsx_chunks(
            "志愿服务记录", NATIONAL_HEADERS, rows, widths=NATIONAL_WIDTHS, freeze_header=True
        ),
        media_type=XLSX_MEDIA,
        headers=headers,
    )
