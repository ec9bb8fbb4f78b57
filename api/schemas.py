"""Request and response bodies of the public API (v1)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from services.counting import YEAR_RULE
from services.events import StationKind
from services.text import Line
from services.tokens import Role

Name = Field(min_length=1, max_length=100)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TokenRequest(_In):
    role: Role
    subject_id: str = Field(min_length=1, max_length=64)
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"role": "member", "subject_id": "mem_1f2e3d4c5b6a7980"}]},
    )


class TokenResponse(BaseModel):
    token: str
    expires_at: int | None = None


class UnitIn(_In):
    name: Line = Name


class CommunityIn(_In):
    name: Line = Name
    phone: str | None = Field(
        default=None,
        pattern=r"^[0-9+() -]{3,32}$",
        description="the number members are told to call (no activation code, a changed status)",
    )
    person_in_charge: Line | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description="负责人: named on the records of service the community issues",
    )
    handler: Line | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description="经办人: named on the records of service the community issues",
    )
    town_id: str | None = Field(default=None, description="the town (镇/街道) it lies in")


class StationIn(_In):
    community_id: str
    name: Line = Name
    kind: StationKind
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    accepts_poster: StrictBool = Field(
        default=True, description="false: only the station screen's rotating code checks in"
    )
    # services.events.BackdatedPosterPolicy's values (the station record checks them again).
    backdated_poster: Literal["flag", "refuse"] = Field(
        default="flag",
        description="a poster scan dated more than POSTER_BACKDATE_S before it arrived:"
        " `flag` (for the organizer's review) or `refuse`",
    )


class CheckinIn(_In):
    station_token: str = Field(min_length=1, max_length=200)
    action: Literal["in", "out"]
    client_event_id: UUID
    scanned_at: datetime | None = None
    device_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{8,64}$",
        description="the phone's own id for this browser (random, kept in its storage): one "
        "phone scanning for several members is an anomaly flag for the organizer's review",
    )
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "station_token": "v1.st_0a1b2c3d4e5f6071.Zk9vYmFyYmF6cXV4cXV1eA",
                    "action": "in",
                    "client_event_id": "5b0f2c7e-3d1a-4e8b-9c2f-6a7d8e9f0a1b",
                    "scanned_at": "2026-11-28T09:30:00+08:00",
                }
            ]
        },
    )


class CheckinAccepted(BaseModel):
    event_id: str


class HoursOut(BaseModel):
    member_id: str
    year: int
    hours: float
    sessions: int
    year_rule: str = Field(
        default=YEAR_RULE, description="which sessions belong to the year (services.counting)"
    )


class Health(BaseModel):
    status: str
    kafka: str
    clickhouse: str


class RowErrorOut(BaseModel):
    """One rejected row of an uploaded spreadsheet (the member import, a unit's roster)."""

    row: int
    column: str
    message: str
