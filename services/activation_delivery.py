"""Where an activation code will reach a phone by SMS: the interface point for the reminders
issue's sender. Nothing sends SMS yet; the organizer reads the code aloud or sends the link, and
a member re-binds another browser with their registered mobile plus a new code
(`POST /v1/activations/redeem {"code", "phone"}`). A sender implements `CodeSender` and is
called where `api/routers/activation.py` issues a code."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class CodeSender(Protocol):
    def send_activation(self, phone: str, code: str, expires_at: datetime) -> bool:
        """Deliver the code; False when it could not be sent (the organizer hands it over)."""
        ...


class NoSender:
    """The default: no SMS; the organizer hands the code over."""

    def send_activation(self, phone: str, code: str, expires_at: datetime) -> bool:
        return False
