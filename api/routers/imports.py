"""Member spreadsheets (CSV or XLSX) into the registry, and the template to fill in.

Messages here are Chinese: the person reading them is the HR or community clerk who uploaded
the file. The caller is authenticated before a byte of the body is read; the size limit is
checked on the declared length, and again while the body streams in (api/uploads.py), so an
oversized upload is refused at its first byte past the limit, never written to disk.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from api.deps import Caller, Ctx, gate
from api.errors import ApiError, error_body
from api.schemas import RowErrorOut
from api.uploads import SPREADSHEET_RESPONSES, read_spreadsheet, spreadsheet_doc
from services.member_import import (
    FileRejected,
    ImportReport,
    import_members,
    template_csv,
    template_xlsx,
)
from services.registry import RegistryError

router = APIRouter(prefix="/v1/imports", tags=["imports"])


class ImportOut(BaseModel):
    accepted: int
    rejected: int
    errors: list[RowErrorOut]
    created: int
    updated: int
    unchanged: int
    written: bool
    dry_run: bool


def _report(r: ImportReport) -> dict[str, Any]:
    return ImportOut(
        accepted=r.accepted,
        rejected=r.rejected,
        errors=[RowErrorOut(row=e.row, column=e.column, message=e.message) for e in r.errors],
        created=r.created,
        updated=r.updated,
        unchanged=r.unchanged,
        written=r.written,
        dry_run=r.dry_run,
    ).model_dump()


_MULTIPART_DOC = spreadsheet_doc("姓名, 手机号码, 工作单位, 居住社区, 网格, 报到日期")


@router.post(
    "/members",
    response_model=ImportOut,
    openapi_extra=_MULTIPART_DOC,
    responses=SPREADSHEET_RESPONSES,
)
async def import_member_sheet(
    request: Request,
    caller: Caller,
    ctx: Ctx,
    dry_run: Annotated[bool, Query(description="validate only, write nothing")] = False,
    partial: Annotated[bool, Query(description="write the good rows even if some are bad")] = False,
) -> JSONResponse:
    """Imports members (admin, or an organizer into their own community). Members are matched by
    phone: importing the same file again creates nobody twice and updates what changed."""
    gate(caller, "import")
    # Read only now, after the caller was authenticated and authorized (the dependencies),
    # and counted while it streams in: never spooled to disk.
    data = await read_spreadsheet(request, ctx.settings.import_max_bytes)
    try:
        report = await asyncio.to_thread(
            import_members, ctx.registry, data, caller, dry_run, partial
        )
    except FileRejected as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    except RegistryError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    body = _report(report)
    if report.rejected and not dry_run and not partial:
        body.update(
            error_body(
                "rows_rejected",
                f"有 {report.rejected} 行数据有误，本次未导入任何数据。请按 errors 修改后重新上传，"
                "或使用 partial=true 只导入正确的行。",
            )
        )
        return JSONResponse(body, status_code=422)
    return JSONResponse(body, status_code=200)


@router.get(
    "/members/template",
    response_class=Response,
    responses={
        200: {
            "content": {
                "text/csv": {},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
            },
            "description": "an empty member list with the expected headers",
        }
    },
)
def member_template(
    caller: Caller, format: Annotated[Literal["csv", "xlsx"], Query()] = "xlsx"
) -> Response:
    """The spreadsheet to fill in: the headers the import expects, and notes on each column."""
    if format == "csv":
        data, media = template_csv(), "text/csv; charset=utf-8"
    else:
        data = template_xlsx()
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    filename = quote(f"党员名单模板.{format}")
    return Response(
        data,
        media_type=media,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{filename}"},
    )
