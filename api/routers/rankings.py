"""Monthly and quarterly rankings of communities and units (流动红旗), with the rule shown."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import Caller, Ctx
from api.errors import ApiError
from services.periods import InvalidPeriod, parse_period
from services.rankings import RULE, Kind, period_weeks, rank
from services.timeutil import LOCAL_TZ

router = APIRouter(prefix="/v1", tags=["rankings"])


class RankingItem(BaseModel):
    rank: int
    id: str
    name: str
    members_registered: int
    participation_rate: float
    hours_per_member: float
    feedback_avg: float | None
    score: float
    red_flag: bool


class Ranking(BaseModel):
    kind: Kind
    period: str
    weeks: int
    rule: dict[str, Any]
    items: list[RankingItem]


@router.get("/rankings", response_model=Ranking)
def rankings(
    caller: Caller,
    ctx: Ctx,
    kind: Annotated[Kind, Query()] = "communities",
    period: Annotated[
        str | None, Query(description="a month 2026-11 or a quarter 2026-Q4; default this month")
    ] = None,
) -> Ranking:
    """Any signed-in caller: the county's ranking is public within the program."""
    text = period or datetime.now(UTC).astimezone(LOCAL_TZ).strftime("%Y-%m")
    try:
        p = parse_period(text)
    except InvalidPeriod as exc:
        raise ApiError(422, "invalid_period", str(exc)) from exc
    if "-" not in p.label:
        raise ApiError(
            422, "invalid_period", "rankings are monthly (2026-11) or quarterly (2026-Q4)"
        )

    entries = rank(ctx.warehouse, kind, p)
    return Ranking(
        kind=kind,
        period=p.label,
        weeks=len(period_weeks(p)),
        rule=RULE,
        items=[
            RankingItem(rank=i, red_flag=(i == 1 and e.score > 0), **e.__dict__)
            for i, e in enumerate(entries, 1)
        ],
    )
