"""Sending a reminder beyond the page: the sender interface (`Sender`, used by the delivery
consumer of services.reminder_job) and its SMS adapter, an HTTP SMS gateway as Chinese
providers offer one (the WeChat adapter: services.wechat).

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
from typing import Literal, Protocol

import httpx

from services.events.notifications import DeliveryChannel
from services.reads.notifications import phone as member_phone
from services.settings import Settings
from services.warehouse.client import Warehouse

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


class Sender(Protocol):
    """A channel beyond the inbox. `deliver` never raises: its outcome says what happened, so
    one failing send blocks no other."""

    channel: DeliveryChannel

    def address(self, wh: Warehouse, member_id: str) -> str | None:
        """Where this channel reaches the member (None: it cannot)."""
        ...

    def deliver(self, message_id: str, address: str, title: str, body: str) -> Outcome: ...

    def close(self) -> None: ...


def with_retries(
    once: Callable[[], None],
    attempts: int,
    retry_s: float,
    sleep: Callable[[float], None],
    what: str,
) -> Outcome:
    """Tries `once` up to `attempts` times (waiting `retry_s`, then twice as long each time)
    while it fails with a retryable SendFailed; never raises."""
    error = ""
    for attempt in range(1, attempts + 1):
        try:
            once()
            return Outcome("sent", attempt)
        except SendFailed as exc:
            error = str(exc)
            log.warning("%s: attempt %d failed: %s", what, attempt, error)
            if not exc.retryable:
                return Outcome("failed", attempt, error)
        if attempt < attempts:
            sleep(retry_s * 2 ** (attempt - 1))
    return Outcome("failed", attempts, error)


class SmsGateway:
    channel: DeliveryChannel = "sms"

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
        return with_retries(
            lambda: self.send_once(message_id, phone, text),
            self.attempts,
            self.retry_s,
            self.sleep,
            f"sms {message_id}",
        )

    def address(self, wh: Warehouse, member_id: str) -> str | None:
        return member_phone(wh, member_id)

    def deliver(self, message_id: str, address: str, title: str, body: str) -> Outcome:
        return self.send(message_id, address, f"【{title}】{body}")

    def close(self) -> None:
        self.client.close()
