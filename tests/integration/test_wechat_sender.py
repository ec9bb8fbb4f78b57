"""The WeChat subscription-message sender against a real local HTTP server standing in for
WeChat's API (it records what it received): the member's binding through a login code, the
access token fetched once and again when stale, retries of a busy answer, a refusal recorded
without holding back the other sends, and a member without a binding."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from services import topics
from services.events import NotificationCreated
from services.publisher import Publisher
from services.reads import notifications as reads
from services.reminder_job import Deliverer
from services.settings import Settings
from services.wechat import WechatSubscription, openid
from tests.support.net import free_port
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

PORT = free_port()
STACK_ENV = {
    "WECHAT_APP_ID": "wx-test-app",
    "WECHAT_APP_SECRET": "wx-test-secret",
    "WECHAT_API_BASE": f"http://127.0.0.1:{PORT}",
    "WECHAT_TEMPLATE_ID": "tpl-weekly",
    "SMS_RETRY_S": "0.05",
}


class FakeWechat:
    """Answers like WeChat's API: tokens, subscription sends and login codes. An openid's
    first sends may be answered with an errcode (`script`), then 0."""

    def __init__(self, port: int) -> None:
        self.tokens_issued = 0
        self.sends: list[dict[str, Any]] = []
        self.script: dict[str, list[int]] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, data: dict[str, Any]) -> None:
                out = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/cgi-bin/token":
                    if q.get("secret") != "wx-test-secret":
                        return self._answer({"errcode": 40125, "errmsg": "invalid appsecret"})
                    with outer.lock:
                        outer.tokens_issued += 1
                        n = outer.tokens_issued
                    return self._answer({"access_token": f"tok-{n}", "expires_in": 7200})
                if url.path == "/sns/jscode2session":
                    code = q.get("js_code", "")
                    if code.startswith("code-"):
                        return self._answer({"openid": "o-" + code.removeprefix("code-")})
                    return self._answer({"errcode": 40029, "errmsg": "invalid code"})
                self.send_response(404)
                self.end_headers()

            def do_POST(self) -> None:
                url = urlparse(self.path)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                token = parse_qs(url.query).get("access_token", [""])[0]
                with outer.lock:
                    outer.sends.append({**body, "access_token": token})
                    pending = outer.script.get(body["touser"], [])
                    code = pending.pop(0) if pending else 0
                self._answer({"errcode": code, "errmsg": "ok" if code == 0 else "scripted"})

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def wechat() -> Iterator[FakeWechat]:
    server = FakeWechat(PORT)
    yield server
    server.close()


@pytest.fixture(scope="module")
def world(stack: Stack, wechat: FakeWechat) -> dict[str, str]:
    tag = uuid.uuid4().hex[:4]
    unit = stack.create("/v1/units", {"name": f"微信局-{tag}"})["id"]
    c = stack.create("/v1/communities", {"name": f"微信社区-{tag}"})["id"]
    ids = {"community": c}
    for key in ("busy", "stale", "refused", "unbound", "leaving"):
        ids[key] = stack.create(
            "/v1/members", {"name": f"微信{key}{tag}", "unit_id": unit, "community_id": c}
        )["id"]
    return ids


def wh(stack: Stack) -> Any:
    return stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]


def bind(stack: Stack, member_id: str, code: str) -> Any:
    return stack.client.post(
        "/v1/me/wechat-binding", json={"code": code}, headers=stack.token("member", member_id)
    )


def test_a_member_binds_and_unbinds_wechat_with_a_login_code(
    stack: Stack, world: dict[str, str]
) -> None:
    member = world["leaving"]
    r = bind(stack, member, "code-leaving")
    assert r.status_code == 200, r.text
    assert r.json() == {"member_id": member, "bound": True}
    assert stack.wait_for(lambda: openid(wh(stack), member), timeout=60) == "o-leaving"
    r = stack.client.delete("/v1/me/wechat-binding", headers=stack.token("member", member))
    assert r.status_code == 200 and r.json()["bound"] is False
    assert stack.wait_for(lambda: openid(wh(stack), member) is None or None, timeout=60)
    # A code WeChat does not know, an empty one, and a caller who is no member.
    r = bind(stack, member, "stolen")
    assert (r.status_code, r.json()["error"]["code"]) == (502, "wechat_bind_failed")
    assert bind(stack, member, "").status_code == 422
    r = stack.client.post(
        "/v1/me/wechat-binding",
        json={"code": "code-x"},
        headers=stack.token("organizer", world["community"]),
    )
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")


def test_reminders_go_out_as_subscription_messages_with_retries(
    stack: Stack, world: dict[str, str], wechat: FakeWechat
) -> None:
    for key in ("busy", "stale", "refused"):
        assert bind(stack, world[key], f"code-{key}").status_code == 200
    for key in ("busy", "stale", "refused"):
        assert stack.wait_for(lambda k=key: openid(wh(stack), world[k]), timeout=60)
    wechat.script = {"o-busy": [-1], "o-stale": [42001], "o-refused": [43101]}
    settings = Settings(**stack.settings.model_dump())
    publisher = Publisher(settings)
    sender = WechatSubscription(settings)
    deliverer = Deliverer(settings, wh(stack), publisher, sender)
    stop = threading.Event()

    def fresh(member: str) -> NotificationCreated:
        nid = f"test-{uuid.uuid4()}"
        return NotificationCreated(
            event_id=nid,
            occurred_at=datetime.now(UTC),
            notification_id=nid,
            kind="weekly_nudge",
            recipient_kind="member",
            recipient_id=member,
            community_id=world["community"],
            week="2026-W48",
            title="本周志愿服务提醒",
            body="您本周尚未参加志愿服务，可就近到社区服务站扫码签到，谢谢支持",
        )

    notes = {k: fresh(world[k]) for k in ("refused", "busy", "stale", "unbound")}
    t = threading.Thread(target=deliverer.run, args=(stop,), daemon=True)
    t.start()
    try:
        publisher.send_many_sync(
            [(topics.NOTIFICATIONS, n.recipient_id, n) for n in notes.values()]
        )

        def outcome(key: str) -> Any:
            return stack.wait_for(
                lambda: reads.deliveries(wh(stack), notes[key].notification_id), timeout=60
            )

        # The refusal is recorded and holds back none of the others.
        assert outcome("refused") == [("wechat", "failed", 1, "wechat refused: errcode 43101")]
        assert outcome("busy") == [("wechat", "sent", 2, "")]
        assert outcome("stale") == [("wechat", "sent", 2, "")]
        assert outcome("unbound") == [("wechat", "no_address", 0, "")]
        to_busy = [s for s in wechat.sends if s["touser"] == "o-busy"]
        assert len(to_busy) == 2
        first = to_busy[-1]
        assert first["template_id"] == "tpl-weekly"
        assert first["data"]["thing1"]["value"] == "本周志愿服务提醒"
        assert len(first["data"]["thing2"]["value"]) == 20
        # One token until WeChat called it stale, then one more.
        assert wechat.tokens_issued == 2
        to_stale = [s["access_token"] for s in wechat.sends if s["touser"] == "o-stale"]
        assert to_stale == ["tok-1", "tok-2"]
    finally:
        stop.set()
        t.join(10)
        sender.close()
        publisher.close()
