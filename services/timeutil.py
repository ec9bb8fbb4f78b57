"""Local time rules: weeks are ISO weeks and days are calendar days in Asia/Shanghai; storage is UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def local(dt: datetime) -> datetime:
    return dt.astimezone(LOCAL_TZ)


def local_midnight(d: date) -> datetime:
    """The first instant of local day `d`, in UTC."""
    return datetime(d.year, d.month, d.day, tzinfo=LOCAL_TZ).astimezone(UTC)


def end_of_local_day(dt: datetime) -> datetime:
    """The first instant of the next local day, in UTC."""
    return local_midnight(local(dt).date() + timedelta(days=1))


def iso_week(dt: datetime) -> str:
    y, w, _ = local(dt).isocalendar()
    return f"{y}-W{w:02d}"
