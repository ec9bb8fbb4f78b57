"""Phone activation codes: issued by an organizer, redeemed once by the member's phone."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.events.base import Event, UtcDatetime, event_type


@event_type
class ActivationRecorded(Event):
    """The latest state of one activation code, keyed by the code's HMAC (never the code).

    Revision 1 is the issue, revision 2 the redemption; the compacted topic and the
    ReplacingMergeTree keep the highest, so a redeemed code reads as redeemed after a replay.
    """

    event_type: Literal["activation.recorded"] = "activation.recorded"
    code_hash: str
    revision: int = Field(ge=1)
    member_id: str
    community_id: str
    issued_by: str
    issued_at: UtcDatetime
    expires_at: UtcDatetime
    redeemed_at: UtcDatetime | None = None
