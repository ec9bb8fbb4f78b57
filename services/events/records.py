"""Records of service (服务证明) issued to members: what the paper says, kept for verification."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.events.base import Event, UtcDatetime, event_type


class RecordedSession(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    session_id: str
    station_name: str
    start: UtcDatetime
    end: UtcDatetime | None
    hours: float
    status: str


@event_type
class ServiceRecordIssued(Event):
    """Everything printed on one record; `code` is what the paper carries and `/v1/verify` takes."""

    event_type: Literal["service_record.issued"] = "service_record.issued"
    code: str
    member_id: str
    member_name: str
    unit_name: str
    community_name: str
    period_from: date
    period_to: date
    hours: float
    sessions: int
    items: list[RecordedSession] = Field(default_factory=list)
    digest: str
    issued_by: str
    # What the national rules ask a record to name (《志愿服务记录与证明出具办法（试行）》 and the
    # civil-affairs certificate template; issue 15). Added later: records issued before carry the
    # defaults and print without them.
    person_in_charge: str | None = None
    handler: str | None = None
    contact_phone: str | None = None
    # Never an ID number: the member's volunteer number, masked (`service_records.volunteer_no`).
    volunteer_no: str | None = None
