"""Sending a reminder as a WeChat subscription message (订阅消息), the second `Sender`
(services.sms) of the delivery consumer; off while WECHAT_APP_ID is empty.

The calls follow the WeChat mini-program server API, under WECHAT_API_BASE:

- `GET /cgi-bin/token?grant_type=client_credential&appid=..&secret=..` gives an access token
  (`{"access_token", "expires_in"}`), kept until a minute before it expires, fetched again when
  a send answers that it is invalid or expired (errcode 40001, 40014, 42001);
- `POST /cgi-bin/message/subscribe/send?access_token=..` with `{"touser": openid,
  "template_id", "page", "data": {"thing1": {"value": title}, "thing2": {"value": text}}}`
  sends one message; `{"errcode": 0}` is accepted. The template's `thing` fields take 20
  characters, so the title and the text are cut to 20.
- `GET /sns/jscode2session?appid=..&secret=..&js_code=..&grant_type=authorization_code`
  turns the code a mini-program's `wx.login` gives into the member's `openid` (the binding:
  POST /v1/me/wechat-binding).

429, 5xx, timeouts, refused connections, errcode -1 (busy) and a stale token are retried
(SMS_ATTEMPTS, SMS_RETRY_S); any other errcode (43101: the member did not accept this
template's messages) is a refusal a retry would not change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from services.events.notifications import DeliveryChannel
from services.settings import Settings
from services.sms import Outcome, SendFailed, with_retries
from services.warehouse.client import Warehouse

_STALE_TOKEN = frozenset({40001, 40014, 42001})
_BUSY = -1
# A subscription template's `thing` value: at most 20 characters.
THING_MAX = 20


class BindFailed(Exception):
    """The login code gave no openid (expired, used, or WeChat refused it)."""


def openid(wh: Warehouse, member_id: str) -> str | None:
    """The member's bound openid (None: not bound, or unbound since)."""
    rows = wh.query(
        "SELECT openid FROM wechat_bindings FINAL WHERE member_id = %(m)s", {"m": member_id}
    )
    return str(rows[0][0]) if rows and rows[0][0] else None


class WechatSubscription:
    channel: DeliveryChannel = "wechat"

    def __init__(self, settings: Settings, sleep: Callable[[float], None] = time.sleep) -> None:
        self.base = settings.wechat_api_base.rstrip("/")
        self.app_id = settings.wechat_app_id
        self.secret = settings.wechat_app_secret
        self.template_id = settings.wechat_template_id
        self.page = settings.wechat_page
        self.attempts = settings.sms_attempts
        self.retry_s = settings.sms_retry_s
        self.sleep = sleep
        self.client = httpx.Client(timeout=settings.sms_timeout_s)
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    @staticmethod
    def enabled(settings: Settings) -> bool:
        return bool(settings.wechat_app_id)

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            r = self.client.get(f"{self.base}{path}", params=params)
        except httpx.HTTPError as exc:
            raise SendFailed(f"wechat unreachable: {type(exc).__name__}", True) from exc
        return _json(r)

    def access_token(self) -> str:
        with self._lock:
            if self._token is not None and self._token[1] > time.monotonic():
                return self._token[0]
            data = self._get(
                "/cgi-bin/token",
                {"grant_type": "client_credential", "appid": self.app_id, "secret": self.secret},
            )
            token = data.get("access_token")
            if not token:
                code = data.get("errcode")
                raise SendFailed(f"wechat token refused: errcode {code!r}", code == _BUSY)
            ttl = float(data.get("expires_in", 7200))
            self._token = (str(token), time.monotonic() + max(0.0, ttl - 60))
            return str(token)

    def send_once(self, openid: str, title: str, text: str) -> None:
        token = self.access_token()
        body = {
            "touser": openid,
            "template_id": self.template_id,
            "page": self.page,
            "data": {"thing1": {"value": title[:THING_MAX]}, "thing2": {"value": text[:THING_MAX]}},
        }
        try:
            r = self.client.post(
                f"{self.base}/cgi-bin/message/subscribe/send",
                params={"access_token": token},
                json=body,
            )
        except httpx.HTTPError as exc:
            raise SendFailed(f"wechat unreachable: {type(exc).__name__}", True) from exc
        code = _json(r).get("errcode", 0)
        if code == 0:
            return
        if code in _STALE_TOKEN:
            with self._lock:
                self._token = None
            raise SendFailed(f"wechat access token stale: errcode {code}", True)
        raise SendFailed(f"wechat refused: errcode {code!r}", code == _BUSY)

    def address(self, wh: Warehouse, member_id: str) -> str | None:
        return openid(wh, member_id)

    def deliver(self, message_id: str, address: str, title: str, body: str) -> Outcome:
        return with_retries(
            lambda: self.send_once(address, title, body),
            self.attempts,
            self.retry_s,
            self.sleep,
            f"wechat {message_id}",
        )

    def bind(self, code: str) -> str:
        """The openid behind a mini-program login code; raises BindFailed."""
        try:
            data = self._get(
                "/sns/jscode2session",
                {
                    "appid": self.app_id,
                    "secret": self.secret,
                    "js_code": code,
                    "grant_type": "authorization_code",
                },
            )
        except SendFailed as exc:
            raise BindFailed(str(exc)) from exc
        found = data.get("openid")
        if not isinstance(found, str) or not found or len(found) > 64:
            raise BindFailed(f"wechat gave no openid: errcode {data.get('errcode')!r}")
        return found

    def close(self) -> None:
        self.client.close()


def _json(r: httpx.Response) -> dict[str, Any]:
    if r.status_code == 429 or r.status_code >= 500:
        raise SendFailed(f"wechat answered {r.status_code}", True)
    if not 200 <= r.status_code < 300:
        raise SendFailed(f"wechat refused: {r.status_code} {r.text[:200]}", False)
    try:
        data = r.json()
    except ValueError as exc:
        raise SendFailed("wechat answered no JSON", False) from exc
    if not isinstance(data, dict):
        raise SendFailed("wechat answered no JSON object", False)
    return data
