"""Sending a reminder beyond the page: an HTTP SMS gateway, as Chinese providers offer one.

The gateway takes `POST SMS_GATEWAY_URL` with a JSON body `{"id", "phone", "sign_name",
"text"}`, `Authorization: Bearer SMS_GATEWAY_KEY` and `Idempotency-Key: <notification id>` (a
retried send is the same message to a gateway that honours it), and answers 2xx with
`{"code": "OK"}` (or `0`) when it accepted the message. 429, 5xx, timeouts and refused
connections are retried; any other answer is a refusal that a retry would not change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx

from services.settings import Settings

log = logging.getLogger(__name__)


class SendFailed(Exception):
    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


@dataclass(frozen=True)
class Outcome:
    status: Literal["sent", "failed"]
    attempts: int
    error: str = ""


class SmsGateway:
    def __init__(self, settings: Settings, sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = settings.sms_gateway_url
        self.key = settings.sms_gateway_key
        self.sign_name = settings.sms_sign_name
        self.attempts = settings.sms_attempts
        self.retry_s = settings.sms_retry_s
        self.sleep = sleep
        self.client = httpx.Client(timeout=settings.sms_timeout_s)

    @staticmethod
    def enabled(settings: Settings) -> bool:
        return bool(settings.sms_gateway_url)

    def send_once(self, message_id: str, phone: str, text: str) -> None:
        try:
            r = self.client.post(
                self.url,
                json={"id": message_id, "phone": phone, "sign_name": self.sign_name, "text": text},
                headers={"Authorization": f"Bearer {self.key}", "Idempotency-Key": message_id},
            )
        except httpx.HTTPError as exc:
            raise SendFailed(f"gateway unreachable: {type(exc).__name__}", True) from exc
        if r.status_code == 429 or r.status_code >= 500:
            raise SendFailed(f"gateway answered {r.status_code}", True)
        if not 200 <= r.status_code < 300:
            raise SendFailed(f"gateway refused: {r.status_code} {r.text[:200]}", False)
        try:
            code = r.json().get("code")
        except ValueError as exc:
            raise SendFailed("gateway answered no JSON", False) from exc
        if code not in ("OK", "ok", 0, "0"):
            raise SendFailed(f"gateway refused: code {code!r}", False)

    def send(self, message_id: str, phone: str, text: str) -> Outcome:
        """Tries up to SMS_ATTEMPTS times (waiting SMS_RETRY_S, then twice as long each time);
        never raises: the outcome says what happened, so one failing send blocks no other."""
        error = ""
        for attempt in range(1, self.attempts + 1):
            try:
                self.send_once(message_id, phone, text)
                return Outcome("sent", attempt)
            except SendFailed as exc:
                error = str(exc)
                log.warning("sms %s: attempt %d failed: %s", message_id, attempt, error)
                if not exc.retryable:
                    return Outcome("failed", attempt, error)
            if attempt < self.attempts:
                self.sleep(self.retry_s * 2 ** (attempt - 1))
        return Outcome("failed", self.attempts, error)

    def close(self) -> None:
        self.client.close()
