"""Personal information care (个人信息保护法, issue 15): a phone revealed to who must call, the
member's own data, and the log of who read whose personal data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field

from api.deps import AccessLog, Caller, Ctx, check, readable_member
from api.errors import ApiError
from api.openapi import errors
from api.responses import ShownJSONResponse
from services import access
from services.events import ACCESS_KINDS, AccessKind, utcnow
from services.reads import privacy as reads
from services.reads.registry import member_names
from services.timeutil import local

router = APIRouter(prefix="/v1", tags=["privacy"])


class PhoneOut(BaseModel):
    member_id: str
    phone: str | None = Field(description="in full, to call; this read is logged")


@router.get("/members/{member_id}/phone", response_model=PhoneOut, responses=errors(503))
def reveal_phone(member_id: str, caller: Caller, ctx: Ctx, audit: AccessLog) -> PhoneOut:
    """One member's phone in full, for their community's organizer (the not-served and on-site
    lists' 显示号码) and the admin. Logged before it is answered (503 if the log is away)."""
    m = readable_member(ctx, caller, member_id, "member_phone")
    audit.record("phone_reveal", [m.id])
    return PhoneOut(member_id=m.id, phone=m.phone)


class MyData(BaseModel):
    member_id: str
    generated_at: datetime
    record: dict[str, Any] = Field(description="the registry record as it is now, phone in full")
    parts: dict[str, list[dict[str, Any]]] = Field(
        description="registry_history, scans, sessions, feedback, wishes, notifications,"
        " notification_deliveries, preferences, access_log: every row held, oldest first"
    )
    retention: dict[str, int] = Field(
        description="years each kind is kept (0: for ever): scans, access_log"
    )


@router.get(
    "/members/{member_id}/my-data",
    response_model=MyData,
    responses={
        200: {
            "content": {"application/json": {}},
            "description": "with format=download the same JSON as a file (my-data-<id>.json)",
        }
    },
)
def my_data(
    member_id: str,
    caller: Caller,
    ctx: Ctx,
    format: Annotated[Literal["json", "download"], Query()] = "json",
) -> Any:
    """Everything held about the member (个人信息查阅、复制), for the member alone."""
    m = readable_member(ctx, caller, member_id, "my_data")
    now = utcnow()
    answer = MyData(
        member_id=m.id,
        generated_at=now,
        # Fresh from the warehouse: the process's copy may lag another process's change.
        record=ctx.registry.get("member", m.id, caller, fresh=True).model_dump(mode="json"),
        parts=reads.my_data(ctx.warehouse, m.id),
        retention={
            "scans": ctx.settings.scan_retention_years,
            "access_log": ctx.settings.access_log_retention_years,
        },
    )
    if format == "json":
        return answer
    name = f"my-data-{m.id}-{local(now).strftime('%Y%m%d')}.json"
    # The same JSON as any answer (stored text as it may be shown), as a file.
    return ShownJSONResponse(
        answer.model_dump(mode="json"),
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


class AccessLogItem(BaseModel):
    id: str
    kind: str = Field(description=" | ".join(ACCESS_KINDS))
    actor_role: str
    actor_id: str
    actor_name: str = Field(description="the community's, unit's or member's name; '' if none")
    member_ids: list[str] = Field(description="whose data was read")
    member_names: list[str] = Field(description="their names, in the order of member_ids")
    route: str
    detail: str
    at: datetime


def _actor_name(ctx: Ctx, role: str, id_: str, members: dict[str, str]) -> str:
    try:
        if role == "organizer":
            return ctx.registry.community(id_).name
        if role == "hr":
            return ctx.registry.unit(id_).name
        if role == "station":  # a station's tablet (its screen key)
            return ctx.registry.station(id_).name
    except LookupError:
        return ""
    return members.get(id_, "") if role == "member" else ""


class AccessLogPage(BaseModel):
    items: list[AccessLogItem]
    total: int


@router.get("/access-log", response_model=AccessLogPage)
def access_log(
    caller: Caller,
    ctx: Ctx,
    member_id: Annotated[str | None, Query(max_length=64, description="whose data")] = None,
    actor_role: Annotated[
        Literal["member", "organizer", "hr", "admin", "county", "town", "station"] | None,
        Query(description="who read (station: a station's tablet)"),
    ] = None,
    actor_id: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[AccessKind | None, Query(description=" | ".join(ACCESS_KINDS))] = None,
    since: Annotated[AwareDatetime | None, Query(description="from (inclusive)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="to (exclusive)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> AccessLogPage:
    """Who read whose personal data (phone reveals, files with phones, member records read by
    someone other than the member, lists of members, residents' contacts on wishes), newest
    first: the admin's."""
    check(caller, "access_log", "read", access.Facts(), "access log", "", hideable=False)
    for name, t in (("since", since), ("until", until)):
        if t is not None and not 2000 <= t.astimezone(UTC).year <= 2100:
            raise ApiError(422, "invalid_request", f"{name}: a time between 2000 and 2100")
    f = reads.AccessLogFilter(member_id, actor_role, actor_id, kind, since, until)
    items, total = reads.access_log(ctx.warehouse, f, limit, offset)
    names = member_names(
        ctx.warehouse,
        sorted({m for e in items for m in e.member_ids} | {e.actor_id for e in items}),
    )
    return AccessLogPage(
        items=[
            AccessLogItem(
                id=e.event_id,
                kind=e.kind,
                actor_role=e.actor_role,
                actor_id=e.actor_id,
                actor_name=_actor_name(ctx, e.actor_role, e.actor_id, names),
                member_ids=e.member_ids,
                member_names=[names.get(m, "") for m in e.member_ids],
                route=e.route,
                detail=e.detail,
                at=e.at,
            )
            for e in items
        ],
        total=total,
    )
