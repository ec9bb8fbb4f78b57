"""Access events: a bearer token withdrawn before its expiry."""

from __future__ import annotations

from typing import Literal

from services.events.base import Event, UtcDatetime, event_type


@event_type
class TokenRevoked(Event):
    event_type: Literal["token.revoked"] = "token.revoked"
    token_id: str
    role: str
    subject_id: str
    # Kept so the revocation list can forget a token once it would have expired anyway.
    expires_at: UtcDatetime
    revoked_by: str
