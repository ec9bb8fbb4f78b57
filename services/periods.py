"""Reporting periods in local (Asia/Shanghai) days: a year `2026`, a quarter `2026-Q3`, a month `2026-07`.

Evaluations cover a span of days; a period's aggregate counts the evaluations whose span lies
inside it, so a rating of 2026-Q3 counts in 2026-Q3 and in 2026 but not in 2026-07.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from services.timeutil import local

_PERIOD = re.compile(r"^(\d{4})(?:-(?:Q([1-4])|(\d{2})))?$")


class InvalidPeriod(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    label: str
    start: date  # first local day
    end: date  # first local day after the period

    def contains(self, start: date, end: date) -> bool:
        return self.start <= start and end <= self.end


def _first_of(year: int, month: int) -> date:
    if month > 12:
        return date(year + 1, month - 12, 1)
    return date(year, month, 1)


def parse_period(text: str) -> Period:
    m = _PERIOD.match(text.strip())
    if not m:
        raise InvalidPeriod(
            f"period {text!r} is not a year (2026), a quarter (2026-Q3) or a month (2026-07)"
        )
    year = int(m.group(1))
    if not 2000 <= year <= 2100:
        raise InvalidPeriod(f"period {text!r}: year out of range 2000-2100")
    if m.group(2):
        q = int(m.group(2))
        return Period(f"{year}-Q{q}", _first_of(year, 3 * q - 2), _first_of(year, 3 * q + 1))
    if m.group(3):
        month = int(m.group(3))
        if not 1 <= month <= 12:
            raise InvalidPeriod(f"period {text!r}: month out of range 01-12")
        return Period(f"{year}-{month:02d}", _first_of(year, month), _first_of(year, month + 1))
    return Period(str(year), date(year, 1, 1), date(year + 1, 1, 1))


def day_of(dt: datetime) -> Period:
    """The single local day an instant falls on, as a span (for ratings of one session)."""
    d = local(dt).date()
    return Period(d.isoformat(), d, d + timedelta(days=1))


def current_year(now: datetime) -> Period:
    return parse_period(str(local(now).year))
