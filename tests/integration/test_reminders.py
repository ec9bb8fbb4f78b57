"""Reminders through the real pipeline: who is nudged when (services.reminders), the inboxes,
the opt-out kept as an event, and SMS delivery to a real local HTTP gateway that records what it
received, retried and never sent twice (issue 14)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services import topics
from services.events import NotificationCreated
from services.publisher import Publisher
from services.reads import notifications as reads
from services.reminder_job import Decider, Deliverer
from services.settings import Settings
from services.sms import SmsGateway
from services.tokens import sign_station
from tests.support.sms import SmsProvider
from tests.support.stack import Stack
from tests.support.weeks import LAST_WEEK_ENV, last_week_at

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

# Scans are dated in last week (complete, wholly in the past): the decisions are made at that
# week's moments, whatever day the suite runs.
STACK_ENV = LAST_WEEK_ENV


@pytest.fixture(scope="module")
def world(stack: Stack) -> dict[str, str]:
    unit = stack.create("/v1/units", {"name": "县水务局"})["id"]
    c = stack.create("/v1/communities", {"name": "北关社区"})["id"]
    station = stack.create(
        "/v1/stations", {"community_id": c, "name": "北关服务站", "kind": "service_station"}
    )["id"]
    ids = {"unit": unit, "community": c, "station": station}
    for key, name, phone in (
        ("served", "赵服务", "13800000001"),
        ("idle", "钱未到", None),
        ("quiet", "孙不扰", "13800000003"),
        ("phone", "李短信", "13800000004"),
    ):
        body: dict[str, Any] = {"name": name, "unit_id": unit, "community_id": c}
        if phone:
            body["phone"] = phone
        ids[key] = stack.create("/v1/members", body)["id"]
    token = stack.token("member", ids["served"])
    for action, at in (
        ("in", last_week_at(1, 9)),
        ("out", last_week_at(1, 11)),
    ):
        r = stack.client.post(
            "/v1/checkins",
            json={
                "station_token": sign_station(stack.settings, station),
                "action": action,
                "client_event_id": str(uuid.uuid4()),
                "scanned_at": at.isoformat(),
            },
            headers=token,
        )
        assert r.status_code == 202, r.text
    r = stack.client.put(
        f"/v1/members/{ids['quiet']}/reminder-preferences",
        json={"weekly_nudge": False},
        headers=stack.token("member", ids["quiet"]),
    )
    assert r.status_code == 202, r.text
    wh = stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]
    week_of_served = stack.wait_for(
        lambda: wh.query(
            "SELECT sum(sessions) FROM member_weeks FINAL WHERE member_id = %(m)s",
            {"m": ids["served"]},
        )[0][0],
        timeout=60,
    )
    assert week_of_served, "the served member's week never reached ClickHouse"
    assert stack.wait_for(lambda: not reads.preferences(wh, ids["quiet"])["weekly_nudge"])
    return ids


def decide_at(stack: Stack, at: datetime) -> int:
    wh = stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]
    publisher = Publisher(stack.settings)
    try:
        return Decider(stack.settings, wh, publisher, clock=lambda: at).run_once()
    finally:
        publisher.close()


def inbox(stack: Stack, member: str) -> list[dict[str, Any]]:
    r = stack.client.get(f"/v1/members/{member}/inbox", headers=stack.token("member", member))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def test_nudges_go_to_the_not_served_who_did_not_turn_them_off(
    stack: Stack, world: dict[str, str]
) -> None:
    assert decide_at(stack, last_week_at(3, 17, 59)) == 0  # before Thursday evening
    assert decide_at(stack, last_week_at(3, 19)) == 2  # idle and phone; served and quiet not
    got = stack.wait_for(lambda: inbox(stack, world["phone"]))
    assert [i["kind"] for i in got] == ["weekly_nudge"]
    assert "李短信同志" in got[0]["body"] and "北关社区" in got[0]["body"]
    assert len(stack.wait_for(lambda: inbox(stack, world["idle"]))) == 1
    assert inbox(stack, world["served"]) == [] and inbox(stack, world["quiet"]) == []
    # Deciding again (the next run, another sink process) makes nothing new.
    assert decide_at(stack, last_week_at(3, 20)) == 0
    # Quiet hours (21:00-08:00): nothing is decided at 07:00 on Saturday, a new moment.
    assert decide_at(stack, last_week_at(5, 7)) == 0
    # Saturday morning: the second and last nudge of the week.
    assert decide_at(stack, last_week_at(5, 10, 30)) == 2
    assert stack.wait_for(lambda: len(inbox(stack, world["idle"])) == 2)
    assert decide_at(stack, last_week_at(6, 12)) == 0


def test_the_organizer_reads_sunday_evening_digest(stack: Stack, world: dict[str, str]) -> None:
    assert decide_at(stack, last_week_at(6, 18, 30)) == 1
    org = stack.token("organizer", world["community"])

    def digests() -> list[dict[str, Any]]:
        r = stack.client.get(f"/v1/communities/{world['community']}/inbox", headers=org)
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    got = stack.wait_for(digests)
    assert [i["kind"] for i in got] == ["organizer_digest"]
    body = got[0]["body"]
    assert "已报到党员4人" in body and "尚有3人" in body
    assert "钱未到" in body and "孙不扰" in body and "赵服务" not in body


def test_an_inbox_is_the_member_s_alone(stack: Stack, world: dict[str, str]) -> None:
    path = f"/v1/members/{world['idle']}/inbox"
    for who in (
        stack.token("member", world["phone"]),
        stack.token("organizer", world["community"]),
        stack.token("hr", world["unit"]),
    ):
        r = stack.client.get(path, headers=who)
        assert r.status_code == 404 and r.json()["error"]["code"] == "member_not_found"
    r = stack.client.put(
        f"/v1/members/{world['idle']}/reminder-preferences",
        json={"weekly_nudge": False},
        headers=stack.token("organizer", world["community"]),
    )
    assert r.status_code == 403, r.text
    r = stack.client.get(
        f"/v1/communities/{world['community']}/inbox", headers=stack.token("member", world["idle"])
    )
    assert r.status_code in (403, 404), r.text


def test_bad_input_is_refused_with_a_named_problem(stack: Stack, world: dict[str, str]) -> None:
    me = stack.token("member", world["idle"])
    path = f"/v1/members/{world['idle']}/reminder-preferences"
    for body in ({"weekly_nudge": "sometimes"}, {"weekly_nudge": True, "marketing": True}, {}):
        r = stack.client.put(path, json=body, headers=me)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["code"]
    r = stack.client.get(f"/v1/members/{world['idle']}/inbox?limit=0", headers=me)
    assert r.status_code == 422


@pytest.fixture
def gateway() -> Iterator[SmsProvider]:
    g = SmsProvider({"13800000004": 1})
    yield g
    g.close()


def test_sms_is_sent_once_retried_and_every_outcome_recorded(
    stack: Stack, world: dict[str, str], gateway: SmsProvider
) -> None:
    # Runs after the nudges above: their notifications are on the topic.
    settings = Settings(
        **{
            **stack.settings.model_dump(),
            "sms_gateway_url": gateway.url,
            "sms_gateway_key": "k-test",
            "sms_retry_s": 0.05,
        }
    )
    wh = stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]
    publisher = Publisher(settings)
    stop = threading.Event()

    def run_deliverer() -> threading.Thread:
        d = Deliverer(settings, wh, publisher, SmsGateway(settings))
        t = threading.Thread(target=d.run, args=(stop,), daemon=True)
        t.start()
        return t

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
            body="测试",
        )

    try:
        t = run_deliverer()
        # The nudges decided last week are past the 12 hours a send may lag its decision:
        # recorded as expired, nothing reaches the gateway.
        nudge = inbox(stack, world["phone"])[0]["id"]
        assert stack.wait_for(lambda: reads.deliveries(wh, nudge), timeout=60) == [
            ("sms", "expired", 0, "")
        ]
        assert gateway.received == []
        # Fresh ones: the first attempt gets a 503, the retry goes through; a member without a
        # phone is recorded; a notification published twice (two deciders) is sent once.
        to_phone, to_idle = fresh(world["phone"]), fresh(world["idle"])
        publisher.send_many_sync(
            [(topics.NOTIFICATIONS, n.recipient_id, n) for n in (to_phone, to_idle, to_phone)]
        )
        assert stack.wait_for(lambda: reads.deliveries(wh, to_phone.notification_id), 60) == [
            ("sms", "sent", 2, "")
        ]
        assert stack.wait_for(lambda: reads.deliveries(wh, to_idle.notification_id), 60) == [
            ("sms", "no_address", 0, "")
        ]
        sent = [r for r in gateway.received if r["id"] == to_phone.notification_id]
        assert len(sent) == 2  # the 503 and the retry, nothing more
        assert {r["key"] for r in sent} == {to_phone.notification_id}
        assert sent[0]["phone"] == "13800000004" and sent[0]["auth"] == "Bearer k-test"
        assert sent[0]["text"].startswith("【本周志愿服务提醒】")
        # A new delivery process (a restart) sends nothing again.
        stop.set()
        t.join(10)
        stop.clear()
        publisher.send_sync(topics.NOTIFICATIONS, to_phone.recipient_id, to_phone)
        t = run_deliverer()
        time_limit = datetime.now(UTC) + timedelta(seconds=8)
        while datetime.now(UTC) < time_limit:
            assert len([r for r in gateway.received if r["id"] == to_phone.notification_id]) == 2
            stop.wait(0.5)
    finally:
        stop.set()
        publisher.close()
