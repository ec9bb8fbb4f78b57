"""The `week` query parameter shared by the weekly routers: an ISO week, default this week."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Query

from api.errors import ApiError
from services.events import utcnow
from services.reads.weeks import InvalidWeek
from services.reads.weeks import parse_week as _parse
from services.timeutil import iso_week

WeekQuery = Annotated[
    str | None, Query(description="ISO week in Asia/Shanghai, e.g. 2026-W48; default this week")
]


def parse_week(week: str | None) -> tuple[str, date]:
    """The canonical week and its last local day; 422 naming the parameter otherwise."""
    try:
        return _parse(week if week is not None else iso_week(utcnow()))
    except InvalidWeek as exc:
        raise ApiError(422, "invalid_week", str(exc)) from exc
