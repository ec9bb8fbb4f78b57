"""Who read whose personal data (个人信息保护法): one event per read that showed more than the
minimum, kept in the log and in ClickHouse for the admin and for the member it is about."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.events.base import Event, event_type

# phone_reveal: one phone shown in full on a tap; phones_export: a file listing phones in full
# (the not-served list, for calling); member_record: a member's registry record or its history
# read by someone other than the member; member_list: a list of members by name with masked
# phones (a roster, a search), one entry per request naming every member listed;
# wish_contact: a micro-wish's resident contact shown in full (the resident is no member: the
# wish is named in `detail`).
AccessKind = Literal[
    "phone_reveal", "phones_export", "member_record", "member_list", "wish_contact"
]
ACCESS_KINDS: tuple[AccessKind, ...] = (
    "phone_reveal",
    "phones_export",
    "member_record",
    "member_list",
    "wish_contact",
)


@event_type
class PersonalDataRead(Event):
    event_type: Literal["personal_data.read"] = "personal_data.read"
    kind: AccessKind
    actor_role: str
    actor_id: str
    # Whose data was read: one member for a reveal or a record, every member listed in an export.
    member_ids: list[str] = Field(max_length=100_000)
    # The route read ("GET /v1/members/{member_id}/phone"), and what of it (a week, a format).
    route: str
    detail: str = ""
