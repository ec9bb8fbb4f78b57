"""The unit's loop (报到回执, issue 15): a unit's roster upload, the report status of everyone on
it (未报到, lapsed, confirmed), and the community's receipt of a member's report.

Upload messages are Chinese (the HR clerk reads them); the file rules are the member import's
(`services.member_import`, `api.uploads`). Phones on the roster are masked in every answer: the
unit identifies its members, it does not call them from here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from api.deps import (
    AccessLog,
    Caller,
    Ctx,
    check,
    community_desk,
    gate,
    hidden,
    readable_member,
    readable_unit,
)
from api.errors import ApiError, error_body
from api.openapi import errors
from api.schemas import RowErrorOut
from api.uploads import SPREADSHEET_RESPONSES, read_spreadsheet, spreadsheet_doc
from services import topics
from services.access import Facts
from services.events import ReportConfirmed, RosterEntrySet, derived_id, utcnow
from services.exports import CSV_MEDIA, XLSX_MEDIA, csv_chunks, xlsx_chunks
from services.member_import import FileRejected
from services.periods import InvalidPeriod, parse_period
from services.privacy import mask_phone
from services.processors import route_for_event
from services.reads import unit_roster as reads
from services.reads.assessment import member_quarter
from services.registry import NotFound, actor
from services.timeutil import LOCAL_TZ
from services.unit_roster import (
    RosterLine,
    RosterReport,
    parse_roster,
    plan_upload,
    template_csv,
    template_xlsx,
)

router = APIRouter(tags=["unit loop"])

StatusFilter = Literal[
    "all", "unreported", "reported", "lapsed", "not_confirmed", "other_unit", "inactive"
]


class RosterUploadOut(BaseModel):
    accepted: int
    rejected: int
    errors: list[RowErrorOut]
    added: int
    updated: int
    unchanged: int
    removed: int
    written: bool
    dry_run: bool


class UnitRosterItem(BaseModel):
    name: str
    phone: str | None
    party_branch: str
    position: str | None
    status: str
    member_id: str | None
    community_id: str | None
    community_name: str | None
    reported_on: date | None
    last_service: datetime | None
    confirmed: bool
    confirmed_at: datetime | None


class UnitRosterCounts(BaseModel):
    total: int
    reported: int
    lapsed: int
    unreported: int
    other_unit: int
    inactive: int
    confirmed: int


class UnitRosterOut(BaseModel):
    unit_id: str
    lapsed_after_weeks: int
    counts: UnitRosterCounts
    items: list[UnitRosterItem]
    total: int


class ReportItem(BaseModel):
    member_id: str
    name: str
    unit_id: str
    unit_name: str | None
    reported_on: date | None
    confirmed: bool
    confirmed_at: datetime | None


class ReportsOut(BaseModel):
    community_id: str
    items: list[ReportItem]
    total: int


class ReceiptOut(BaseModel):
    member_id: str
    community_id: str
    unit_id: str
    reported_on: date | None
    confirmed_at: datetime
    confirmed_by: str
    created: bool


_MULTIPART_DOC = spreadsheet_doc("姓名, 手机号码, 党支部 and optional 职务")


def _upload_body(r: RosterReport) -> dict[str, Any]:
    return RosterUploadOut(
        accepted=r.accepted,
        rejected=r.rejected,
        errors=[RowErrorOut(row=e.row, column=e.column, message=e.message) for e in r.errors],
        added=r.added,
        updated=r.updated,
        unchanged=r.unchanged,
        removed=r.removed,
        written=r.written,
        dry_run=r.dry_run,
    ).model_dump()


def _entry(
    unit_id: str, line: RosterLine, present: bool, upload_id: str, by: str, version: int
) -> RosterEntrySet:
    return RosterEntrySet(
        event_id=derived_id("unit-roster", unit_id, line.phone, upload_id),
        occurred_at=utcnow(),
        unit_id=unit_id,
        phone=line.phone,
        name=line.name,
        party_branch=line.party_branch,
        position=line.position,
        present=present,
        upload_id=upload_id,
        set_by=by,
        version=version,
    )


@router.post(
    "/v1/imports/units/{unit_id}/roster",
    response_model=RosterUploadOut,
    openapi_extra=_MULTIPART_DOC,
    responses=SPREADSHEET_RESPONSES,
)
async def upload_roster(
    unit_id: str,
    request: Request,
    caller: Caller,
    ctx: Ctx,
    dry_run: Annotated[bool, Query(description="validate only, write nothing")] = False,
    partial: Annotated[bool, Query(description="write the good rows even if some are bad")] = False,
) -> JSONResponse:
    """The unit's whole roster of in-service party members (its HR, or the admin): 姓名, 手机号码,
    党支部, optional 职务. Lines are matched by phone: uploading the same file again changes
    nothing; a phone listed before and not in this file is marked as no longer listed (unless
    rows were rejected)."""
    gate(caller, "unit_roster")
    check(caller, "unit_roster", "change", Facts(unit_id=unit_id), "unit", unit_id)
    if not ctx.registry.exists("unit", unit_id):
        raise hidden("unit", unit_id)
    data = await read_spreadsheet(request, ctx.settings.import_max_bytes)
    try:
        lines, report = await asyncio.to_thread(parse_roster, data)
    except FileRejected as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    report.dry_run = dry_run
    current = await asyncio.to_thread(reads.current_lines, ctx.warehouse, unit_id)
    plan = plan_upload(lines, current, report)
    body = _upload_body(report)
    if report.rejected and not dry_run and not partial:
        body.update(
            error_body(
                "rows_rejected",
                f"有 {report.rejected} 行数据有误，本次未导入任何数据。请按 errors 修改后重新上传，"
                "或使用 partial=true 只导入正确的行。",
            )
        )
        return JSONResponse(body, status_code=422)
    if dry_run or not (plan.set or plan.removed):
        return JSONResponse(body, status_code=200)
    upload_id = derived_id("roster-upload", unit_id, str(time.time_ns()))
    by, version = actor(caller), time.time_ns() // 1000
    events = [_entry(unit_id, line, True, upload_id, by, version) for line in plan.set] + [
        _entry(unit_id, line, False, upload_id, by, version) for line in plan.removed
    ]
    await asyncio.to_thread(
        ctx.publisher.send_many_sync,
        [(topics.UNIT_ROSTERS, f"{unit_id}|{e.phone}", e) for e in events],
    )
    # Written through as well (the sink writes the same rows again, harmlessly): the status
    # the clerk opens next reads the roster just uploaded.
    route = route_for_event(events[0])
    await asyncio.to_thread(
        ctx.warehouse.insert, route.table, [route.to_row(e) for e in events], route.columns
    )
    report.written = True
    return JSONResponse(_upload_body(report), status_code=200)


@router.get(
    "/v1/imports/unit-roster/template",
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {}, XLSX_MEDIA: {}},
            "description": "an empty roster with the expected headers",
        }
    },
)
def roster_template(
    caller: Caller, format: Annotated[Literal["csv", "xlsx"], Query()] = "xlsx"
) -> Response:
    """The roster to fill in: 姓名, 手机号码, 党支部, 职务, and notes on each column."""
    if format == "csv":
        data, media = template_csv(), "text/csv; charset=utf-8"
    else:
        data, media = template_xlsx(), XLSX_MEDIA
    filename = quote(f"在职党员名单模板.{format}")
    return Response(
        data,
        media_type=media,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{filename}"},
    )


STATUS_LABEL = {
    "reported": "已报到",
    "lapsed": "已报到，连续未服务",
    "not_reported": "未报到",
    "not_registered": "未报到（未登记）",
    "other_unit": "登记在其他单位",
    "inactive": "已离开或转出",
}
EXPORT_HEADERS = [
    "姓名",
    "手机号码",
    "党支部",
    "职务",
    "报到状态",
    "报到社区",
    "报到日期",
    "最近服务",
    "社区回执",
]
EXPORT_WIDTHS = [10, 14, 20, 12, 18, 16, 12, 18, 18]


def _keep(row: reads.RosterRow, status: StatusFilter) -> bool:
    if status == "all":
        return True
    if status == "unreported":
        return row.status in reads.NOT_REPORTED
    if status == "not_confirmed":
        return row.status in ("reported", "lapsed") and row.confirmed_at is None
    return row.status == status


def _local(dt: datetime | None) -> str | None:
    return dt.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") if dt else None


@router.get(
    "/v1/units/{unit_id}/roster",
    response_model=UnitRosterOut,
    responses={**errors(503), 200: {"content": {"text/csv": {}, XLSX_MEDIA: {}}}},
)
def unit_roster(
    unit_id: str,
    caller: Caller,
    ctx: Ctx,
    audit: AccessLog,
    status: Annotated[
        StatusFilter,
        Query(description="unreported: 未报到 (not registered, or registered without a report)"),
    ] = "all",
    format: Annotated[Literal["json", "csv", "xlsx"], Query()] = "json",
) -> UnitRosterOut | StreamingResponse:
    """The unit's roster (its HR, the admin) with each line's report status: `reported` (with
    the community and the date), `lapsed` (reported, no counted service for LAPSED_WEEKS
    full weeks), `not_reported` / `not_registered` (未报到), `other_unit` (the phone is
    registered to another unit's member: nothing more is shown), `inactive`; and the community's
    receipt of the report. Excused weeks (请假) are not shown yet. Phones are masked."""
    readable_unit(ctx, caller, unit_id)
    weeks = ctx.settings.lapsed_weeks
    rows = reads.roster_status(ctx.warehouse, unit_id, weeks)
    counts = UnitRosterCounts(
        total=len(rows),
        reported=sum(r.status == "reported" for r in rows),
        lapsed=sum(r.status == "lapsed" for r in rows),
        unreported=sum(r.status in reads.NOT_REPORTED for r in rows),
        other_unit=sum(r.status == "other_unit" for r in rows),
        inactive=sum(r.status == "inactive" for r in rows),
        confirmed=sum(r.confirmed_at is not None for r in rows),
    )
    kept = [r for r in rows if _keep(r, status)]
    # The registered members the answer names (lines of no member are the unit's own upload).
    audit.record_list([r.member_id for r in kept if r.member_id], f"unit roster {format}")
    if format == "json":
        return UnitRosterOut(
            unit_id=unit_id,
            lapsed_after_weeks=weeks,
            counts=counts,
            items=[
                UnitRosterItem(
                    name=r.name,
                    phone=mask_phone(r.phone),
                    party_branch=r.party_branch,
                    position=r.position,
                    status=r.status,
                    member_id=r.member_id,
                    community_id=r.community_id,
                    community_name=r.community_name,
                    reported_on=r.reported_on,
                    last_service=r.last_service,
                    confirmed=r.confirmed_at is not None,
                    confirmed_at=r.confirmed_at,
                )
                for r in kept
            ],
            total=len(kept),
        )
    out: Iterator[list[Any]] = (
        [
            r.name,
            mask_phone(r.phone),
            r.party_branch,
            r.position,
            STATUS_LABEL.get(r.status, r.status),
            r.community_name,
            r.reported_on.isoformat() if r.reported_on else None,
            _local(r.last_service),
            ("已确认 " + (_local(r.confirmed_at) or "")) if r.confirmed_at else None,
        ]
        for r in kept
    )
    filename = quote(f"在职党员报到情况.{format}")
    headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{filename}"}
    if format == "csv":
        return StreamingResponse(
            csv_chunks(EXPORT_HEADERS, out), media_type=CSV_MEDIA, headers=headers
        )
    return StreamingResponse(
        xlsx_chunks("报到情况", EXPORT_HEADERS, out, widths=EXPORT_WIDTHS, freeze_header=True),
        media_type=XLSX_MEDIA,
        headers=headers,
    )


@router.get(
    "/v1/communities/{community_id}/reports", response_model=ReportsOut, responses=errors(503)
)
def community_reports(community_id: str, caller: Caller, ctx: Ctx, audit: AccessLog) -> ReportsOut:
    """The community's members who reported to it, each with the community's receipt (报到回执)
    or without one yet (its organizer, the admin), latest reports first. The members listed are
    logged (one access-log entry)."""
    community_desk(ctx, caller, community_id)
    rows = reads.community_reports(ctx.warehouse, community_id)
    audit.record_list([r.member_id for r in rows], "reports")
    units: dict[str, str | None] = {}
    for r in rows:
        if r.unit_id not in units:
            try:
                units[r.unit_id] = ctx.registry.unit(r.unit_id).name
            except NotFound:
                units[r.unit_id] = None
    return ReportsOut(
        community_id=community_id,
        items=[
            ReportItem(
                member_id=r.member_id,
                name=r.name,
                unit_id=r.unit_id,
                unit_name=units.get(r.unit_id),
                reported_on=r.reported_on,
                confirmed=r.confirmed_at is not None,
                confirmed_at=r.confirmed_at,
            )
            for r in rows
        ],
        total=len(rows),
    )


@router.post(
    "/v1/members/{member_id}/report-receipt",
    response_model=ReceiptOut,
    status_code=201,
    responses=errors(409),
)
def confirm_report(member_id: str, caller: Caller, ctx: Ctx) -> JSONResponse:
    """The member's community confirms their report (报到回执; its organizer, or the admin): an
    event naming who confirmed and when, which the member's unit reads on its roster. Confirming
    again answers the first receipt (`created` false). A member who has not reported (no 报到日期) is 409."""
    gate(caller, "report_receipt")
    m = readable_member(ctx, caller, member_id, "report_receipt", "change")
    if m.reported_on is None or m.status != "active":
        raise ApiError(
            409, "not_reported", "this member has not reported to a community (no reported_on)"
        )
    existing = reads.receipts(ctx.warehouse, [m.id]).get((m.id, m.community_id))
    if existing is not None:
        body = ReceiptOut(
            member_id=m.id,
            community_id=m.community_id,
            unit_id=m.unit_id,
            reported_on=m.reported_on,
            confirmed_at=existing[0],
            confirmed_by=existing[1],
            created=False,
        )
        return JSONResponse(body.model_dump(mode="json"), status_code=201)
    now = utcnow()
    event = ReportConfirmed(
        event_id=derived_id("report-receipt", m.id, m.community_id),
        # As the warehouse keeps it (milliseconds): a second confirmation answers the same time.
        occurred_at=now.replace(microsecond=now.microsecond // 1000 * 1000),
        member_id=m.id,
        community_id=m.community_id,
        unit_id=m.unit_id,
        reported_on=m.reported_on,
        confirmed_by=actor(caller),
    )
    ctx.publisher.send_sync(topics.REPORT_RECEIPTS, m.id, event)
    route = route_for_event(event)
    ctx.warehouse.insert(route.table, [route.to_row(event)], route.columns)
    body = ReceiptOut(
        member_id=m.id,
        community_id=m.community_id,
        unit_id=m.unit_id,
        reported_on=m.reported_on,
        confirmed_at=event.occurred_at,
        confirmed_by=event.confirmed_by,
        created=True,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=201)


class CardActivityOut(BaseModel):
    start: datetime
    station_name: str
    hours: float
    counted: bool


class QuarterCardOut(BaseModel):
    member_id: str
    name: str
    unit_id: str
    unit_name: str | None
    community_id: str
    community_name: str | None
    party_branch: str | None
    quarter: str
    period_from: date
    period_to: date
    hours: float
    sessions: int
    weeks_served: int
    wishes_fulfilled: int
    feedback_avg: float | None
    feedback_count: int
    evaluation: str | None
    evaluation_comment: str | None
    activities: list[CardActivityOut]


@router.get(
    "/v1/members/{member_id}/quarterly-card",
    response_model=QuarterCardOut,
)
def quarterly_card(
    member_id: str,
    caller: Caller,
    ctx: Ctx,
    quarter: Annotated[str, Query(description="e.g. 2026-Q4; default: the current quarter")]
    | None = None,
) -> QuarterCardOut:
    """The member's quarterly card (季度纪实卡) for their unit, to print (whoever reads the
    member: the unit's HR, the community, the member, the admin): weeks served, hours, services
    and the activities, wishes fulfilled, ratings and the community's evaluation of the quarter,
    by the annual assessment's rules (its four quarters add up to the year's figures)."""
    m = readable_member(ctx, caller, member_id)
    label = quarter or _current_quarter()
    try:
        period = parse_period(label)
    except InvalidPeriod as exc:
        raise ApiError(422, "invalid_quarter", str(exc)) from exc
    if "-Q" not in period.label:
        raise ApiError(422, "invalid_quarter", f"quarter {label!r} is not a quarter (2026-Q4)")
    card = member_quarter(ctx.warehouse, m.unit_id, m.id, period.start, period.end, period.label)

    try:
        unit_name: str | None = ctx.registry.unit(m.unit_id).name
        community_name: str | None = ctx.registry.community(m.community_id).name
    except NotFound:
        unit_name = community_name = None

    return QuarterCardOut(
        member_id=m.id,
        name=m.name,
        unit_id=m.unit_id,
        unit_name=unit_name,
        community_id=m.community_id,
        community_name=community_name,
        party_branch=m.party_branch,
        quarter=card.quarter,
        period_from=period.start,
        period_to=period.end - timedelta(days=1),
        hours=card.hours,
        sessions=card.sessions,
        weeks_served=card.weeks_served,
        wishes_fulfilled=card.wishes_fulfilled,
        feedback_avg=card.feedback_avg,
        feedback_count=card.feedback_count,
        evaluation=card.evaluation,
        evaluation_comment=card.evaluation_comment,
        activities=[
            CardActivityOut.model_validate(a, from_attributes=True) for a in card.activities
        ],
    )


def _current_quarter() -> str:
    today = datetime.now(LOCAL_TZ).date()
    return f"{today.year}-Q{(today.month - 1) // 3 + 1}"
