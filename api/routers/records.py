"""Records of service (服务证明): issued from the warehouse, printable, verifiable by anyone."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.deps import Caller, Ctx, readable_member
from api.errors import ApiError
from services import topics
from services.events import ServiceRecordIssued, derived_id, utcnow
from services.events.records import RecordedSession
from services.processors import route_for_event
from services.reads.records import certified_sessions, issued_payload
from services.reads.records import total_hours as records_total_hours
from services.registry import NotFound
from services.service_records import (
    content_digest,
    format_code,
    mismatches,
    normalize_code,
    verification_code,
)
from services.text import escape_html
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


@router.post("/v1/members/{member_id}/service-records", response_model=RecordOut, status_code=201)
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
            status=c.status,
        )
        for c in certified
    ]
    total_hours = records_total_hours(certified)
    try:
        unit_name = ctx.registry.unit(m.unit_id).name
        community_name = ctx.registry.community(m.community_id).name
    except NotFound as exc:
        raise ApiError(409, "registry_incomplete", str(exc)) from exc
    issued_at = utcnow()
    digest = content_digest(
        m.id, m.name, body.period_from, body.period_to, total_hours, len(items), items, issued_at
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
        sessions=len(items),
        items=items,
        digest=digest,
        issued_by=f"{caller.role}:{caller.subject_id}",
    )
    ctx.publisher.send_sync(topics.SERVICE_RECORDS, code, record)
    route = route_for_event(record)
    ctx.warehouse.insert(route.table, [route.to_row(record)], route.columns)
    return _out(ctx, record)


def _load(ctx: Ctx, code: str) -> ServiceRecordIssued:
    payload = issued_payload(ctx.warehouse, normalize_code(code))
    if payload is None:
        raise ApiError(404, "record_not_found", "no record of service was issued with this code")
    return ServiceRecordIssued.model_validate_json(payload)


@router.get("/v1/verify/{code}", response_model=Verification, tags=["records"])
def verify_record(
    code: str,
    ctx: Ctx,
    member_name: Annotated[str | None, Query(description="as printed on the paper")] = None,
    hours: Annotated[float | None, Query(description="as printed on the paper")] = None,
    sessions: Annotated[int | None, Query(description="as printed on the paper")] = None,
    period_from: Annotated[date | None, Query()] = None,
    period_to: Annotated[date | None, Query()] = None,
) -> Verification:
    """Anyone holding the paper: confirms the code was issued here and returns what it certifies.
    Figures passed as query parameters are compared; any that differ are named and `valid` is
    false."""
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
    )


STATUS_LABEL = {
    "closed": "已完成",
    "capped": "已完成（超时按上限计）",
    "adjusted": "已核定",
    "auto_closed": "未签退（自动结束）",
}


@router.get("/records/{code}", response_class=HTMLResponse, include_in_schema=False)
def print_record(code: str, ctx: Ctx) -> HTMLResponse:
    """The print-ready record (A4), in Chinese."""
    r = _load(ctx, code)
    e = escape_html

    def local(dt: datetime | None) -> str:
        return dt.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") if dt else "—"

    rows = "".join(
        f"<tr><td>{i}</td><td>{e(s.station_name)}</td><td>{local(s.start)}</td>"
        f"<td>{local(s.end)}</td><td>{s.hours:.2f}</td><td>{e(STATUS_LABEL.get(s.status, s.status))}</td></tr>"
        for i, s in enumerate(r.items, 1)
    )
    page = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>志愿服务证明 {e(format_code(r.code))}</title>
<style>
@page {{ size: A4; margin: 18mm; }}
body {{ font-family: "Noto Serif CJK SC", "Songti SC", "SimSun", serif; color: #000; }}
h1 {{ text-align: center; letter-spacing: .5em; }}
table {{ width: 100%; border-collapse: collapse; font-size: 12px; }}
th, td {{ border: 1px solid #000; padding: 4px; text-align: center; }}
.meta p {{ margin: 4px 0; }}
.code {{ font-family: monospace; font-size: 16px; font-weight: bold; }}
</style></head><body>
<h1>志愿服务证明</h1>
<div class="meta">
<p>兹证明 <b>{e(r.member_name)}</b>（工作单位：{e(r.unit_name)}；报到社区：{e(r.community_name)}）
于 {r.period_from.isoformat()} 至 {r.period_to.isoformat()} 期间，在居住地社区参加志愿服务
<b>{r.sessions}</b> 次，累计服务时长 <b>{r.hours:.2f}</b> 小时。</p>
<p>服务以开始时间（北京时间）所在日期计入期间；时长为认定时长；尚未结束、被驳回或因补传扫码已被重新配对取代的记录不计。</p>
<p>开具时间：{local(r.occurred_at)}　　验证码：<span class="code">{e(format_code(r.code))}</span></p>
<p>核验方式：访问 {e(ctx.settings.public_url)}/v1/verify/{e(r.code)} ，核对姓名、时长与次数（谁记录谁证明）。</p>
</div>
<table><thead><tr><th>序号</th><th>服务站点</th><th>开始</th><th>结束</th><th>时长（小时）</th><th>状态</th></tr></thead>
<tbody>{rows or '<tr><td colspan="6">本期间无服务记录</td></tr>'}</tbody></table>
</body></html>"""
    return HTMLResponse(page)
