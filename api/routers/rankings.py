"""Monthly and quarterly rankings of communities and units (流动红旗), with the rule shown."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import Caller, Ctx
from api.errors import ApiError
from services.events import utcnow
from services.periods import InvalidPeriod, parse_period
from services.rankings import RULE, Kind, default_period, period_weeks, rank

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
        str | None,
        Query(
            description="a month 2026-11 or a quarter 2026-Q4; default the latest month whose "
            "weeks have all ended"
        ),
    ] = None,
) -> Ranking:
    """Any signed-in caller: the county's ranking is public within the program. Equal scores
    share a rank (1, 2, 2, 4); the red flag needs the first place and an average participation
    of at least `rule.red_flag_min_rate`."""
    try:
        p = parse_period(period) if period is not None else default_period(utcnow())
    except InvalidPeriod as exc:
        raise ApiError(422, "invalid_period", str(exc)) from exc
    if "-" not in p.label:
        raise ApiError(
            422, "invalid_period", "rankings are monthly (2026-11) or quarterly (2026-Q4)"
        )

    return Ranking(
        kind=kind,
        period=p.label,
        weeks=len(period_weeks(p)),
        rule=RULE,
        items=[
            RankingItem(rank=r.rank, red_flag=r.red_flag, **r.entry.__dict__)
            for r in rank(ctx.warehouse, kind, p)
        ],
    )
