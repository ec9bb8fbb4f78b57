"""Moments and settings for integration tests that date their scans in the past."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

LOCAL = ZoneInfo("Asia/Shanghai")

# A module's STACK_ENV for scans dated last week (complete, wholly in the past, and at most
# 7 days over): the API and the worker take scans that old.
LAST_WEEK_ENV = {"MAX_SCAN_AGE_H": "400", "SESSION_REDERIVE_HORIZON_H": "500"}

# A module's STACK_ENV for scans around the 2025/2026 year boundary, published straight to the
# log and re-paired by this worker today (the API itself takes scans up to 72 h old); the
# session clock ticks every second.
YEAR_BOUNDARY_ENV = {
    "SESSION_TICK_S": "1",
    "SESSION_REDERIVE_HORIZON_H": str(2 * 366 * 24),
    "SESSION_REVIEW_WINDOW_DAYS": "800",
}


def last_week_at(weekday: int, hour: int, minute: int = 0) -> datetime:
    """The moment (UTC) of `weekday` (0 = Monday) `hour`:`minute`, local time, last week."""
    today = datetime.now(LOCAL).date()
    monday = today - timedelta(days=today.weekday() + 7)
    d: date = monday + timedelta(days=weekday)
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=LOCAL).astimezone(UTC)
