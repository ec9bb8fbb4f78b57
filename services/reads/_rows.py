"""Small helpers shared by the read modules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def utc(v: datetime | None) -> datetime | None:
    """chDB hands DateTime64('UTC') columns back naive."""
    if v is None:
        return None
    return v if v.tzinfo else v.replace(tzinfo=UTC)


def utc_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: utc(v) if isinstance(v, datetime) else v for k, v in row.items()}
