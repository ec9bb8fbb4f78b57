"""The county's and towns' roll-ups (issue 15): the drill-down county → town → community →
grid (and by unit at every level) and the check-in heatmap, as JSON or as CSV/XLSX files.

Who reads what is the policy's `rollup` resource: the county's for the admin and the county
office, a town's also for its town office, a community's also for its organizer. The figures
are `services.reads.drilldown`'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.deps import Caller, Ctx, check, community_facts, hidden
from api.errors import ApiError
from api.weeks import WeekQuery, parse_week
from services import access
from services.events import utcnow
from services.exports import CSV_MEDIA, XLSX_MEDIA, csv_chunks, xlsx_chunks
from services.reads.drilldown import (
    CHILD,
    MAX_HEAT_WEEKS,
    TREND_WEEKS,
    By,
    DrillRow,
    ScopeKind,
    drilldown,
    heatmap,
    total,
    weeks_between,
)

router = APIRouter(prefix="/v1", tags=["rollups"])

Format = Annotated[Literal["json", "csv", "xlsx"], Query(description="json, or a file")]
ByQuery = Annotated[
    Literal["town", "community", "grid", "unit"] | None,
    Query(description="the level below (default): town, community or grid; or unit"),
]


class TrendOut(BaseModel):
    week: str
    registered: int
    served: int
    excused: int = Field(description="excused that week and not served: out of `rate`'s base")
    rate: float
    hours: float


class DrillRowOut(BaseModel):
    id: str | None
    name: str
    registered: int
    served: int
    rate: float
    active: int
    reported: int
    reported_rate: float
    hours: float
    wishes_fulfilled: int
    lapsed: int
    excused: int = Field(description="excused this week and not served: out of `rate`'s base")
    no_shows: int = Field(
        description="no-shows this week: places held in service slots that are over, not attended"
    )
    trend: list[TrendOut]


class Drilldown(BaseModel):
    scope: ScopeKind
    scope_id: str | None
    by: By
    week: str
    lapsed_weeks: int
    items: list[DrillRowOut]
    total: DrillRowOut


class HeatRowOut(BaseModel):
    station_id: str
    name: str
    community_id: str
    counts: list[int]
    total: int


class Heatmap(BaseModel):
    scope: ScopeKind
    scope_id: str | None
    weeks: list[str]
    items: list[HeatRowOut]


def _out(r: DrillRow) -> DrillRowOut:
    return DrillRowOut(
        id=r.key or None,
        name=r.name,
        registered=r.registered,
        served=r.served,
        rate=r.rate,
        active=r.active,
        reported=r.reported,
        reported_rate=r.reported_rate,
        hours=r.hours,
        wishes_fulfilled=r.wishes_fulfilled,
        lapsed=r.lapsed,
        excused=r.excused,
        no_shows=r.no_shows,
        trend=[
            TrendOut(
                week=t.week,
                registered=t.registered,
                served=t.served,
                excused=t.excused,
                rate=t.rate,
                hours=t.hours,
            )
            for t in r.trend
        ],
    )


_LEVEL_LABEL = {"town": "镇街", "community": "社区", "grid": "网格", "unit": "单位"}


def _headers(by: By, lapsed_weeks: int, weeks: list[str]) -> list[str]:
    return [
        _LEVEL_LABEL[by],
        "登记党员数",
        "已服务人数",
        "本周服务率",
        "在册党员数",
        "已报到人数",
        "报到率",
        "服务时长(小时)",
        "完成微心愿",
        f"连续{lapsed_weeks}周未服务",
        "本周请假人数",
        "活动报名未到(次)",
        *[f"{w}服务率" for w in weeks],
    ]


def _rows(items: list[DrillRow], t: DrillRow) -> Iterator[list[Any]]:
    for r in [*items, t]:
        yield [
            r.name,
            r.registered,
            r.served,
            r.rate,
            r.active,
            r.reported,
            r.reported_rate,
            r.hours,
            r.wishes_fulfilled,
            r.lapsed,
            r.excused,
            r.no_shows,
            *[p.rate for p in r.trend],
        ]


def _file(fmt: str, name: str, sheet: str, headers: list[str], rows: Iterator[list[Any]]) -> Any:
    disposition = {"Content-Disposition": f'attachment; filename="{name}.{fmt}"'}
    if fmt == "csv":
        return StreamingResponse(
            csv_chunks(headers, rows), media_type=CSV_MEDIA, headers=disposition
        )
    return StreamingResponse(
        xlsx_chunks(sheet, headers, rows, freeze_header=True),
        media_type=XLSX_MEDIA,
        headers=disposition,
    )


def _drill(
    ctx: Ctx, scope: ScopeKind, scope_id: str | None, by: By | None, week: str | None, fmt: str
) -> Any:
    w, _ = parse_week(week)
    level: By = by or CHILD[scope]
    if level != "unit" and level != CHILD[scope]:
        raise ApiError(422, "invalid_level", f"by: a {scope} drills down by {CHILD[scope]} or unit")
    lapsed_weeks = ctx.settings.lapsed_weeks
    items = drilldown(ctx.warehouse, scope, scope_id, level, w, utcnow(), lapsed_weeks)
    t = total(items)
    if fmt == "json":
        return Drilldown(
            scope=scope,
            scope_id=scope_id,
            by=level,
            week=w,
            lapsed_weeks=lapsed_weeks,
            items=[_out(r) for r in items],
            total=_out(t),
        )
    weeks = [p.week for p in t.trend]
    name = f"drilldown-{scope}-{level}-{w}"
    return _file(
        fmt,
        name,
        f"{w}{_LEVEL_LABEL[level]}",
        _headers(level, lapsed_weeks, weeks),
        _rows(items, t),
    )


def _town(ctx: Ctx, caller: Caller, town_id: str) -> None:
    check(caller, "rollup", "read", access.Facts(town_id=town_id), "town", town_id)
    if not ctx.registry.exists("town", town_id):
        raise hidden("town", town_id)


def _community(ctx: Ctx, caller: Caller, community_id: str) -> None:
    facts = community_facts(ctx, caller, community_id)
    check(caller, "rollup", "read", facts, "community", community_id)
    if not ctx.registry.exists("community", community_id):
        raise hidden("community", community_id)


_FILES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}, XLSX_MEDIA: {}}, "description": "JSON, or a file"}
}


@router.get("/county/drilldown", response_model=Drilldown, responses=_FILES)
def county_drilldown(
    caller: Caller, ctx: Ctx, week: WeekQuery = None, by: ByQuery = None, format: Format = "json"
) -> Any:
    """The county by town (default) or by unit for a week: registered, served and rate (the
    excused out of its base), reported and rate, hours, wishes fulfilled, members lapsed,
    no-shows in service slots, the 8-week trend; the admin and the county office."""
    # No id in the path to hide: a caller who may not read the county's figures gets a 403.
    check(caller, "rollup", "read", access.Facts(), "county", "county", hideable=False)
    return _drill(ctx, "county", None, by, week, format)


@router.get("/towns/{town_id}/drilldown", response_model=Drilldown, responses=_FILES)
def town_drilldown(
    town_id: str,
    caller: Caller,
    ctx: Ctx,
    week: WeekQuery = None,
    by: ByQuery = None,
    format: Format = "json",
) -> Any:
    """A town by community (default) or by unit, as the county's drill-down; also its town
    office."""
    _town(ctx, caller, town_id)
    return _drill(ctx, "town", town_id, by, week, format)


@router.get("/communities/{community_id}/drilldown", response_model=Drilldown, responses=_FILES)
def community_drilldown(
    community_id: str,
    caller: Caller,
    ctx: Ctx,
    week: WeekQuery = None,
    by: ByQuery = None,
    format: Format = "json",
) -> Any:
    """A community by level-4 grid (default) or by unit, as the county's drill-down; also its
    town's office and its organizer."""
    _community(ctx, caller, community_id)
    return _drill(ctx, "community", community_id, by, week, format)


_HOURS = [
    f"{d}{h:02d}时"
    for d in ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
    for h in range(24)
]


WeeksQuery = Annotated[
    int | None,
    Query(
        ge=1,
        le=MAX_HEAT_WEEKS,
        description=f"how many weeks, ending with `week` (1-{MAX_HEAT_WEEKS}; default"
        f" {TREND_WEEKS}); or give `from` and `to` instead",
    ),
]
FromQuery = Annotated[
    str | None,
    Query(alias="from", description="first ISO week of the window (with `to`, instead of `week`)"),
]
ToQuery = Annotated[str | None, Query(description="last ISO week of the window (with `from`)")]


@dataclass(frozen=True)
class Window:
    """The heatmap's window: its last week and how many weeks it spans."""

    week: str | None
    weeks: int | None
    from_: str | None
    to: str | None

    def resolve(self) -> tuple[str, int]:
        """The last week and the count; 422 naming the parameter for a window that is not one."""
        if self.from_ is None and self.to is None:
            w, _ = parse_week(self.week)
            return w, self.weeks or TREND_WEEKS
        if self.from_ is None or self.to is None:
            missing = "from" if self.from_ is None else "to"
            raise ApiError(422, "invalid_window", f"{missing}: give both from and to")
        if self.week is not None or self.weeks is not None:
            raise ApiError(
                422, "invalid_window", "from: give either from and to, or week and weeks"
            )
        first, last = _named_week("from", self.from_), _named_week("to", self.to)
        try:
            n = weeks_between(first, last)
        except ValueError as exc:
            raise ApiError(422, "invalid_window", str(exc)) from exc
        return last, n


def _heat_window(
    week: WeekQuery = None,
    weeks: WeeksQuery = None,
    from_: FromQuery = None,
    to: ToQuery = None,
) -> Window:
    return Window(week, weeks, from_, to)


# The heatmap routes' window parameters, declared once.
HeatWindow = Annotated[Window, Depends(_heat_window)]


def _named_week(name: str, value: str) -> str:
    try:
        w, _ = parse_week(value)
    except ApiError as exc:
        raise ApiError(422, "invalid_week", f"{name}: expected an ISO week YYYY-Www") from exc
    return w


def _heat(
    ctx: Ctx,
    scope: ScopeKind,
    scope_id: str | None,
    cs: list[str] | None,
    window: Window,
    fmt: str,
) -> Any:
    w, n = window.resolve()
    town = scope_id if scope == "town" else None
    weeks, rows = heatmap(ctx.warehouse, cs, w, n, town_id=town)
    if fmt == "json":
        return Heatmap(
            scope=scope,
            scope_id=scope_id,
            weeks=weeks,
            items=[
                HeatRowOut(
                    station_id=r.station_id,
                    name=r.name,
                    community_id=r.community_id,
                    counts=r.counts,
                    total=r.total,
                )
                for r in rows
            ],
        )
    return _file(
        fmt,
        f"heatmap-{scope}-{weeks[0]}-{w}",
        f"{w}签到热力",
        ["站点", "合计", *_HOURS],
        ([r.name, r.total, *r.counts] for r in rows),
    )


@router.get("/county/heatmap", response_model=Heatmap, responses=_FILES)
def county_heatmap(
    caller: Caller,
    ctx: Ctx,
    window: HeatWindow,
    format: Format = "json",
) -> Any:
    """Check-ins per station and local hour of the week (Monday 00:00 first, 168 hours) over
    the `weeks` weeks ending with `week` (default 8), or the weeks `from`..`to`; the admin and
    the county office."""
    # No id in the path to hide: a caller who may not read the county's figures gets a 403.
    check(caller, "rollup", "read", access.Facts(), "county", "county", hideable=False)
    return _heat(ctx, "county", None, None, window, format)


@router.get("/towns/{town_id}/heatmap", response_model=Heatmap, responses=_FILES)
def town_heatmap(
    town_id: str,
    caller: Caller,
    ctx: Ctx,
    window: HeatWindow,
    format: Format = "json",
) -> Any:
    """The town's stations, as the county's heatmap; also its town office."""
    _town(ctx, caller, town_id)
    return _heat(ctx, "town", town_id, [], window, format)


@router.get("/communities/{community_id}/heatmap", response_model=Heatmap, responses=_FILES)
def community_heatmap(
    community_id: str,
    caller: Caller,
    ctx: Ctx,
    window: HeatWindow,
    format: Format = "json",
) -> Any:
    """The community's stations, as the county's heatmap; also its town's office and its
    organizer."""
    _community(ctx, caller, community_id)
    return _heat(ctx, "community", community_id, [community_id], window, format)
