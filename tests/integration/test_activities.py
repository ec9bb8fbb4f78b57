"""Service slots and sign-up on the real broker, a faust worker (the activities agent) and chDB:
publishing, the race for the last place, the waiting list's promotion, refusals, the roster
with attendance from scans, no-shows, recurring slots, cancelling a slot, bad input."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services import activities as rules
from services import topics
from services.events import ActivitySpec
from tests.support.slots import publish_past_slot, slot
from tests.support.sms import SmsProvider
from tests.support.stack import Stack, scan_token

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

# Generous under load: the route waits this long for the agent's verdict before `pending`.
STACK_ENV = {"ACTIVITY_WAIT_S": "8"}


@pytest.fixture(scope="module")
def county(stack: Stack) -> dict[str, Any]:
    c = stack.create
    unit = c("/v1/units", {"name": "县民政局"})
    other_unit = c("/v1/units", {"name": "县卫健局"})
    community = c("/v1/communities", {"name": "南关社区"})
    other_community = c("/v1/communities", {"name": "北关社区"})
    grid4 = c("/v1/grids", {"community_id": community["id"], "name": "第一网格", "level": 4})
    station = c(
        "/v1/stations",
        {"community_id": community["id"], "name": "南关党群服务站", "kind": "service_station"},
    )

    def member(name: str, u: dict[str, Any], comm: dict[str, Any]) -> dict[str, Any]:
        return c("/v1/members", {"name": name, "unit_id": u["id"], "community_id": comm["id"]})

    out = {
        "unit": unit,
        "other_unit": other_unit,
        "community": community,
        "grid4": grid4,
        "station": station,
        "m1": member("刘洋", unit, community),
        "m2": member("陈晨", other_unit, community),
        "m3": member("杨帆", other_unit, other_community),
        "m4": member("王磊", unit, community),
    }
    out["org"] = stack.token("organizer", community["id"])
    out["other_org"] = stack.token("organizer", other_community["id"])
    out["hr"] = stack.token("hr", unit["id"])
    for k in ("m1", "m2", "m3", "m4"):
        out[f"{k}_tok"] = stack.token("member", out[k]["id"])
    return out


def publish(stack: Stack, county: dict[str, Any], **kw: Any) -> str:
    r = stack.client.post("/v1/activities", json=slot(county, **kw), headers=county["org"])
    assert r.status_code == 202, r.text
    (aid,) = r.json()["ids"]
    landed = stack.wait_for(
        lambda: stack.client.get(f"/v1/activities/{aid}", headers=county["org"]).status_code == 200
    )
    assert landed, "the activity did not reach ClickHouse"
    return str(aid)


def get(stack: Stack, aid: str, headers: dict[str, str]) -> dict[str, Any]:
    r = stack.client.get(f"/v1/activities/{aid}", headers=headers)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def settled(stack: Stack, aid: str, headers: dict[str, str], status: str) -> dict[str, Any]:
    """The member's sign-up once it reads `status` (a `pending` answer is polled)."""
    got = stack.wait_for(
        lambda: (a := get(stack, aid, headers))["mine"] and a["mine"]["status"] == status and a
    )
    assert got, f"sign-up did not reach {status}: {get(stack, aid, headers)}"
    return dict(got["mine"])


def test_two_members_race_for_the_last_place(stack: Stack, county: dict[str, Any]) -> None:
    aid = publish(stack, county, capacity=1)
    answers: dict[str, Any] = {}

    def go(k: str) -> None:
        answers[k] = stack.client.post(
            f"/v1/activities/{aid}/signup", json={}, headers=county[f"{k}_tok"]
        )

    threads = [threading.Thread(target=go, args=(k,)) for k in ("m1", "m2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {a.status_code for a in answers.values()} == {202}, answers
    mine = {}
    for k in ("m1", "m2"):
        a = stack.wait_for(lambda k=k: get(stack, aid, county[f"{k}_tok"])["mine"])
        mine[k] = a
    statuses = sorted(m["status"] for m in mine.values())
    assert statuses == ["placed", "waiting"], mine
    waiting = next(m for m in mine.values() if m["status"] == "waiting")
    assert waiting["position"] == 1
    a = get(stack, aid, county["org"])
    assert (a["placed"], a["waiting"]) == (1, 1)

    # The placed member gives the place back: the waiting one is promoted.
    placed_k = next(k for k, m in mine.items() if m["status"] == "placed")
    waiting_k = "m2" if placed_k == "m1" else "m1"
    r = stack.client.delete(f"/v1/activities/{aid}/signup", headers=county[f"{placed_k}_tok"])
    assert r.status_code == 202, r.text
    assert r.json()["status"] in ("withdrawn", "pending")
    settled(stack, aid, county[f"{waiting_k}_tok"], "placed")
    settled(stack, aid, county[f"{placed_k}_tok"], "withdrawn")

    # The roster: the organizer sees both; HR of m1's unit only m1.
    r = stack.client.get(f"/v1/activities/{aid}/roster", headers=county["org"])
    assert r.status_code == 200, r.text
    rows = {x["member_id"]: x for x in r.json()["items"]}
    assert rows[county[waiting_k]["id"]]["status"] == "placed"
    assert rows[county[waiting_k]["id"]]["attendance"] == "pending"
    assert rows[county[waiting_k]["id"]]["name"] in ("刘洋", "陈晨")
    r = stack.client.get(f"/v1/activities/{aid}/roster", headers=county["hr"])
    assert r.status_code == 200, r.text
    assert [x["member_id"] for x in r.json()["items"]] == [county["m1"]["id"]]


def test_sign_up_answers_the_verdict_and_refusals(stack: Stack, county: dict[str, Any]) -> None:
    aid = publish(stack, county, capacity=5, unit_ids=[county["unit"]["id"]])
    r = stack.client.post(f"/v1/activities/{aid}/signup", json={}, headers=county["m1_tok"])
    assert r.status_code == 202, r.text
    if r.json()["status"] != "pending":
        assert (r.json()["status"], r.json()["position"]) == ("placed", None)
    settled(stack, aid, county["m1_tok"], "placed")
    # Again: already signed up (the API's own check against what the agent wrote).
    r = stack.client.post(f"/v1/activities/{aid}/signup", json={}, headers=county["m1_tok"])
    assert (r.status_code, r.json()["error"]["code"]) == (409, "already_signed_up")
    # Another unit's member, another community's member.
    r = stack.client.post(f"/v1/activities/{aid}/signup", json={}, headers=county["m2_tok"])
    assert (r.status_code, r.json()["error"]["code"]) == (409, "unit_not_allowed")
    r = stack.client.post(f"/v1/activities/{aid}/signup", json={}, headers=county["m3_tok"])
    assert (r.status_code, r.json()["error"]["code"]) == (409, "activity_not_in_community")
    # Not a member: the role gate.
    r = stack.client.post(f"/v1/activities/{aid}/signup", json={}, headers=county["org"])
    assert r.status_code == 403
    # Cancelling the slot cancels the sign-ups; signing up afterwards is refused.
    r = stack.client.post(f"/v1/activities/{aid}/cancel", json={}, headers=county["other_org"])
    assert r.status_code == 403, r.text
    r = stack.client.post(
        f"/v1/activities/{aid}/cancel", json={"reason": "天气预警"}, headers=county["org"]
    )
    assert r.status_code == 202, r.text
    settled(stack, aid, county["m1_tok"], "cancelled")
    r = stack.client.post(f"/v1/activities/{aid}/signup", json={}, headers=county["m4_tok"])
    assert (r.status_code, r.json()["error"]["code"]) == (409, "activity_cancelled")


def test_the_agent_refuses_what_the_api_could_not_see(stack: Stack, county: dict[str, Any]) -> None:
    """A sign-up published straight to the log after the deadline (the API's copy would have
    caught it): the agent refuses it and the refusal is what the API reads back."""
    aid = publish(stack, county, capacity=3)
    ctx = stack.client.app.state.ctx  # type: ignore[attr-defined]
    a = get(stack, aid, county["org"])
    late = datetime.fromisoformat(a["signup_deadline"]) + timedelta(minutes=1)
    cmd = rules.command(
        activity_id=aid,
        action="sign_up",
        at=late,
        basis="late",
        actor_role="member",
        actor_id=county["m4"]["id"],
        member_id=county["m4"]["id"],
        member_unit_id=county["unit"]["id"],
        member_community_id=county["community"]["id"],
    )
    ctx.publisher.send_sync(topics.ACTIVITY_COMMANDS, aid, cmd)
    from services.reads import activities as reads

    v = stack.wait_for(
        lambda: reads.verdict(ctx.warehouse, aid, county["m4"]["id"], cmd.event_id, True)
    )
    assert v is not None and v.code == "signup_closed"


def test_attendance_and_no_shows_come_from_scans(stack: Stack, county: dict[str, Any]) -> None:
    """A slot that ran two hours ago (published to the log as it was then): m1 scanned in and
    out at the station during it and attended; m4 had a place and no scan: a no-show. A sign-up
    credits nothing: m4 has no hours."""
    start = datetime.now(UTC) - timedelta(hours=3)
    spec = ActivitySpec(
        community_id=county["community"]["id"],
        title="已结束的服务",
        station_id=county["station"]["id"],
        starts_at=start,
        ends_at=start + timedelta(hours=2),
        capacity=5,
        signup_deadline=start,
        cancel_deadline=start,
    )
    aid = publish_past_slot(stack, spec, "act_past_", [county["m1"], county["m4"]])
    # m1 served 30 min into the slot, for an hour.
    for action, at in (
        ("in", start + timedelta(minutes=30)),
        ("out", start + timedelta(minutes=90)),
    ):
        body = {
            "station_token": scan_token(stack.settings, county["station"]["id"], at),
            "action": action,
            "client_event_id": str(uuid.uuid4()),
            "scanned_at": at.isoformat(),
        }
        r = stack.client.post("/v1/checkins", json=body, headers=county["m1_tok"])
        assert r.status_code == 202, r.text

    def roster() -> dict[str, Any] | None:
        r = stack.client.get(f"/v1/activities/{aid}/roster", headers=county["org"])
        if r.status_code != 200:
            return None
        out: dict[str, Any] = r.json()
        return out if out["attended"] == 1 and out["no_shows"] == 1 else None

    got = stack.wait_for(roster)
    assert got, stack.client.get(f"/v1/activities/{aid}/roster", headers=county["org"]).text
    att = {x["member_id"]: x["attendance"] for x in got["items"]}
    assert att == {county["m1"]["id"]: "attended", county["m4"]["id"]: "no_show"}

    r = stack.client.get("/v1/activities/no-shows", headers=county["org"])
    assert r.status_code == 200, r.text
    counts = {
        x["member_id"]: (x["placed"], x["attended"], x["no_shows"]) for x in r.json()["items"]
    }
    assert counts[county["m4"]["id"]] == (1, 0, 1)
    assert counts[county["m1"]["id"]] == (1, 1, 0)
    # HR sees its unit's members only (m1 and m4 are both of `unit`; other_unit's HR none).
    r = stack.client.get("/v1/activities/no-shows", headers=county["hr"])
    assert {x["unit_id"] for x in r.json()["items"]} == {county["unit"]["id"]}
    # A sign-up credits nothing: m4 has no hours this year.
    r = stack.client.get(f"/v1/members/{county['m4']['id']}/hours", headers=county["org"])
    assert r.status_code == 200, r.text
    assert r.json()["hours"] == 0


def test_recurring_rule_makes_the_same_slots_again(stack: Stack, county: dict[str, Any]) -> None:
    body = slot(county, capacity=10)
    del body["starts_at"], body["ends_at"]
    body |= {
        "recurrence": "every saturday 09:00-11:00",
        "weeks": 3,
        "client_event_id": str(uuid.uuid4()),
    }
    r = stack.client.post("/v1/activities", json=body, headers=county["org"])
    assert r.status_code == 202, r.text
    ids = r.json()["ids"]
    assert len(ids) == 3 and r.json()["rule_id"]
    landed = stack.wait_for(
        lambda: all(
            stack.client.get(f"/v1/activities/{i}", headers=county["org"]).status_code == 200
            for i in ids
        )
    )
    assert landed
    r2 = stack.client.post("/v1/activities", json=body, headers=county["org"])
    assert r2.status_code == 202 and r2.json()["ids"] == ids
    # The member's list of their community shows them, with no sign-up of theirs.
    r = stack.client.get("/v1/activities?to=2099-01-01", headers=county["m4_tok"])
    assert r.status_code == 422  # more than a year
    r = stack.client.get("/v1/activities", headers=county["m4_tok"])
    assert r.status_code == 200, r.text
    listed = {x["activity_id"]: x for x in r.json()["items"]}
    assert set(ids) & set(listed)
    for i in set(ids) & set(listed):
        a = listed[i]
        assert a["mine"] is None and a["title"] == "楼道清理"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"station_id": None}, 422),  # neither station nor grid
        ({"capacity": 0}, 422),
        ({"recurrence": "every someday 9:00-10:00"}, 422),
        ({"starts_at": "2026-01-01T09:00:00"}, 422),  # no time zone
        ({"title": ""}, 422),
        ({"unit_ids": ["unit_nope"]}, 422),
        ({"station_id": "st_nope"}, 422),
    ],
)
def test_bad_input_is_a_422(
    stack: Stack, county: dict[str, Any], change: dict[str, Any], code: int
) -> None:
    body = slot(county)
    body.update(change)
    r = stack.client.post("/v1/activities", json=body, headers=county["org"])
    assert r.status_code == code, r.text
    assert "error" in r.json()


def test_bad_input_more(stack: Stack, county: dict[str, Any]) -> None:
    past = datetime.now(UTC) - timedelta(days=1)
    r = stack.client.post(
        "/v1/activities",
        json=slot(
            county,
            starts_at=past.isoformat(),
            ends_at=(past + timedelta(hours=1)).isoformat(),
        ),
        headers=county["org"],
    )
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_activity")
    r = stack.client.post(
        "/v1/activities",
        json=slot(county, station_id=None, grid_id=county["grid4"]["id"]),
        headers=county["org"],
    )
    assert (r.status_code, r.json()["error"]["code"]) == (422, "grid_not_level_5")
    r = stack.client.post("/v1/activities", json=slot(county), headers=county["other_org"])
    assert r.status_code == 403
    r = stack.client.post("/v1/activities", json=slot(county), headers=county["m1_tok"])
    assert r.status_code == 403
    r = stack.client.get("/v1/activities/act_nope", headers=county["m1_tok"])
    assert r.status_code == 404
    r = stack.client.get("/v1/activities?from=2026-02-01&to=2026-01-01", headers=county["org"])
    assert r.status_code == 422
    r = stack.client.get("/v1/activities/act_nope/roster", headers=county["org"])
    assert r.status_code == 404
    r = stack.client.get("/v1/activities/no-shows", headers=county["m1_tok"])
    assert r.status_code == 403


def test_slot_reminders_from_the_job(stack: Stack, county: dict[str, Any]) -> None:
    """The reminder job decides the day-before and hour-before reminders of a member's place,
    and none once the member turned slot reminders off."""
    from services import reminder_job

    ctx = stack.client.app.state.ctx  # type: ignore[attr-defined]
    start = datetime.now(UTC) + timedelta(hours=20)
    aid = publish(
        stack,
        county,
        capacity=3,
        title="提醒测试活动",
        starts_at=start.isoformat(),
        ends_at=(start + timedelta(hours=1)).isoformat(),
    )
    m4 = county["m4"]["id"]
    r = stack.client.post(f"/v1/activities/{aid}/signup", json={}, headers=county["m4_tok"])
    assert r.status_code == 202, r.text
    settled(stack, aid, county["m4_tok"], "placed")
    a = get(stack, aid, county["org"])
    starts = datetime.fromisoformat(a["starts_at"])

    def mine(at: datetime) -> list[Any]:
        got = reminder_job.slot_reminders(ctx.warehouse, at)
        return [n for n in got if n.recipient_id == m4 and "提醒测试活动" in n.body]

    day = mine(datetime.now(UTC))
    assert [n.title for n in day] in (["活动提醒：明天有服务"], ["活动提醒：今天有服务"])
    assert "南关党群服务站" in day[0].body
    hour = mine(starts - timedelta(minutes=30))
    assert [n.title for n in hour] == ["活动即将开始"]
    r = stack.client.put(
        f"/v1/members/{m4}/reminder-preferences",
        json={"weekly_nudge": True, "slot_reminder": False},
        headers=county["m4_tok"],
    )
    assert r.status_code == 202, r.text
    assert stack.wait_for(lambda: not mine(datetime.now(UTC)))


def test_the_demo_month_of_slots_through_the_simulator(stack: Stack) -> None:
    """The simulator publishes a community's month of slots beside the server: the slots and
    their sign-ups land, and the roster reads attendance and no-shows from the scans; and its
    month of excused weeks."""
    from services.demo.county import generate, slice_county
    from services.demo.simulate import simulate
    from tests.support.demo import demo_client
    from tests.support.stack import run_async

    county = slice_county(generate(), ("c03",), 40)

    async def go() -> Any:
        async with demo_client(stack) as c:
            return await simulate(
                c,
                county,
                weeks=1,
                seed=5,
                lanes=8,
                signing=stack.settings,
                feedback=False,
                slots=True,
            )

    sim = run_async(go())
    cid = sim.loaded.communities["c03"]
    today = datetime.now(UTC).date()
    q = f"/v1/activities?community_id={cid}&from={today - timedelta(days=22)}&to={today + timedelta(days=8)}"

    def slots() -> list[Any] | None:
        items = stack.client.get(q, headers=stack.admin).json()["items"]
        return items if len(items) >= 8 and any(a["placed"] for a in items) else None

    items = stack.wait_for(slots, timeout=60)
    assert items, stack.client.get(q, headers=stack.admin).text
    assert {a["title"] for a in items} >= {"固定服务日：小区环境整治"}
    r = stack.client.get(
        f"/v1/activities/no-shows?community_id={cid}&from={today - timedelta(days=22)}",
        headers=stack.admin,
    )
    assert r.status_code == 200, r.text
    rows = r.json()["items"]
    assert sum(x["placed"] for x in rows) > 0
    assert sum(x["no_shows"] for x in rows) > 0

    # The month's excused weeks land beside the slots, as the API would have recorded them.
    def excusals() -> list[Any] | None:
        r = stack.client.get(f"/v1/communities/{cid}/excusals", headers=stack.admin)
        assert r.status_code == 200, r.text
        return list(r.json()["items"]) or None

    asked = stack.wait_for(excusals, timeout=60)
    assert asked, "the demo's excused weeks did not land"
    assert {a["status"] for a in asked} <= {"pending", "approved", "declined"}


def test_an_invalid_command_goes_to_the_dead_letter_topic(stack: Stack) -> None:
    """A message on activities.commands that is no command: the agent puts it aside with the
    reason and its source topic, and goes on with the next."""
    from kafka import KafkaConsumer, KafkaProducer

    producer = KafkaProducer(bootstrap_servers=stack.broker.bootstrap, api_version=(3, 9))
    try:
        producer.send(
            stack.settings.topic(topics.ACTIVITY_COMMANDS.name), key=b"act_x", value=b"{slot?"
        ).get(timeout=30)
    finally:
        producer.close()

    def dead() -> list[dict[str, bytes]]:
        consumer = KafkaConsumer(
            stack.settings.topic(topics.DEAD_LETTER.name),
            bootstrap_servers=stack.broker.bootstrap,
            api_version=(3, 9),
            auto_offset_reset="earliest",
            consumer_timeout_ms=3000,
        )
        try:
            return [dict(m.headers) for m in consumer if m.value == b"{slot?"]
        finally:
            consumer.close()

    got = stack.wait_for(dead, timeout=60)
    assert got, "the invalid command did not reach the dead-letter topic"
    assert got[0]["source"] == b"judge_activity_commands"
    assert got[0]["source_topic"] == topics.ACTIVITY_COMMANDS.name.encode()


# ---- service notices: a cancelled slot, a promotion (issue 14) ------------------------------


def inbox(stack: Stack, member_id: str, headers: dict[str, str], kind: str) -> list[Any]:
    r = stack.client.get(f"/v1/members/{member_id}/inbox?limit=50", headers=headers)
    assert r.status_code == 200, r.text
    return [x for x in r.json()["items"] if x["kind"] == kind]


def test_cancelling_a_slot_notifies_each_member_once_and_sms_delivers_it(
    stack: Stack, county: dict[str, Any]
) -> None:
    """A placed member (with a phone, slot reminders turned off) and a waiting one: the cancel,
    sent twice with the same id and once more with another, gives each exactly one notice in
    the inbox, in Chinese, and the SMS sender delivers the placed member's once although they
    turned slot reminders off (a service notice is not a reminder)."""
    from services.publisher import Publisher
    from services.reads import notifications as inbox_reads
    from services.reminder_job import Deliverer
    from services.settings import Settings
    from services.sms import SmsGateway

    phone = "139" + str(uuid.uuid4().int)[:8]
    p = stack.create(
        "/v1/members",
        {
            "name": "周手机",
            "unit_id": county["unit"]["id"],
            "community_id": county["community"]["id"],
            "phone": phone,
        },
    )
    p_tok = stack.token("member", p["id"])
    r = stack.client.put(
        f"/v1/members/{p['id']}/reminder-preferences",
        json={"weekly_nudge": True, "slot_reminder": False},
        headers=p_tok,
    )
    assert r.status_code == 202, r.text
    aid = publish(stack, county, capacity=1, title="取消通知测试")
    r = stack.client.post(f"/v1/activities/{aid}/signup", json={}, headers=p_tok)
    assert r.status_code == 202, r.text
    settled(stack, aid, p_tok, "placed")
    r = stack.client.post(f"/v1/activities/{aid}/signup", json={}, headers=county["m4_tok"])
    assert r.status_code == 202, r.text
    settled(stack, aid, county["m4_tok"], "waiting")
    assert stack.wait_for(
        lambda: inbox_reads.turned_off(
            stack.client.app.state.ctx.warehouse,  # type: ignore[attr-defined]
            "slot_reminder",
            [p["id"]],
        )
    )

    body = {"reason": "大风天气预警", "client_event_id": str(uuid.uuid4())}
    first = stack.client.post(f"/v1/activities/{aid}/cancel", json=body, headers=county["org"])
    assert first.status_code == 202, first.text
    # The same request again (a retry): the API's copy may not have the cancel yet, so it
    # may publish the same command again; the agent recognises it.
    again = stack.client.post(f"/v1/activities/{aid}/cancel", json=body, headers=county["org"])
    assert again.status_code in (202, 409), again.text
    settled(stack, aid, p_tok, "cancelled")
    settled(stack, aid, county["m4_tok"], "cancelled")
    # Once the cancel is read back, another cancel is refused.
    r = stack.client.post(f"/v1/activities/{aid}/cancel", json={}, headers=county["org"])
    assert (r.status_code, r.json()["error"]["code"]) == (409, "activity_cancelled")

    def notices(member: str, tok: dict[str, str]) -> list[Any]:
        return [
            x for x in inbox(stack, member, tok, "slot_cancelled") if "取消通知测试" in x["body"]
        ]

    got_p = stack.wait_for(lambda: notices(p["id"], p_tok))
    got_w = stack.wait_for(lambda: notices(county["m4"]["id"], county["m4_tok"]))
    assert got_p and got_w, "the cancellation notices did not reach the inboxes"
    assert got_p[0]["title"] == "活动取消通知"
    assert (
        "您报名的「取消通知测试」" in got_p[0]["body"] and "原因：大风天气预警" in got_p[0]["body"]
    )
    assert "您候补的「取消通知测试」" in got_w[0]["body"]
    # Give a duplicate time to land, then: exactly one each.
    time.sleep(3)
    assert len(notices(p["id"], p_tok)) == 1
    assert len(notices(county["m4"]["id"], county["m4_tok"])) == 1

    # Delivery: the SMS sender sends the placed member's notice, once.
    gateway = SmsProvider()
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
    nid = got_p[0]["id"]
    try:
        t = threading.Thread(
            target=Deliverer(settings, wh, publisher, SmsGateway(settings)).run,
            args=(stop,),
            daemon=True,
        )
        t.start()
        assert stack.wait_for(lambda: inbox_reads.deliveries(wh, nid), timeout=60) == [
            ("sms", "sent", 1, "")
        ]
        sent = [x for x in gateway.received if x["key"] == nid]
        assert len(sent) == 1 and sent[0]["phone"] == phone
        assert "活动取消通知" in sent[0]["text"] and "取消通知测试" in sent[0]["text"]
    finally:
        stop.set()
        publisher.close()
        gateway.close()


def test_a_member_promoted_from_the_waiting_list_is_told(
    stack: Stack, county: dict[str, Any]
) -> None:
    aid = publish(stack, county, capacity=1, title="递补通知测试")
    for k, status in (("m1", "placed"), ("m2", "waiting")):
        r = stack.client.post(f"/v1/activities/{aid}/signup", json={}, headers=county[f"{k}_tok"])
        assert r.status_code == 202, r.text
        settled(stack, aid, county[f"{k}_tok"], status)
    r = stack.client.delete(f"/v1/activities/{aid}/signup", headers=county["m1_tok"])
    assert r.status_code == 202, r.text
    settled(stack, aid, county["m2_tok"], "placed")

    def told(k: str) -> list[Any]:
        rows = inbox(stack, county[k]["id"], county[f"{k}_tok"], "slot_promoted")
        return [x for x in rows if "递补通知测试" in x["body"]]

    got = stack.wait_for(lambda: told("m2"))
    assert got, "the promotion notice did not reach the inbox"
    assert got[0]["title"] == "候补转正通知" and "您已由候补转为正式报名" in got[0]["body"]
    assert told("m1") == []  # the member who gave the place back is not told anything


def test_a_grid_slot_is_attended_at_a_station_of_its_community(
    stack: Stack, county: dict[str, Any]
) -> None:
    """Courtyard work at a level-5 grid: m1 scanned in at the community's second station during
    the slot and attended (the roster names that station); m2 served at another community's
    station at the same time: a no-show here. Published through the API, a grid slot reads back
    with the grid's name."""
    grid5 = stack.create(
        "/v1/grids",
        {
            "community_id": county["community"]["id"],
            "name": "3号院",
            "level": 5,
            "parent_id": county["grid4"]["id"],
        },
    )
    yard = stack.create(
        "/v1/stations",
        {"community_id": county["community"]["id"], "name": "南关党员驿站", "kind": "member_post"},
    )
    away = stack.create(
        "/v1/stations",
        {
            "community_id": county["m3"]["community_id"],
            "name": "北关党群服务站",
            "kind": "service_station",
        },
    )
    # A day earlier than the other past slot of this module, whose scans m1 makes too: two
    # sessions within one slot would leave which station proved attendance to their order.
    start = datetime.now(UTC) - timedelta(hours=27)
    spec = ActivitySpec(
        community_id=county["community"]["id"],
        title="院落清扫",
        grid_id=grid5["id"],
        starts_at=start,
        ends_at=start + timedelta(hours=2),
        capacity=5,
        signup_deadline=start,
        cancel_deadline=start,
    )
    aid = publish_past_slot(stack, spec, "act_grid_", [county["m1"], county["m2"]])
    for k, station in (("m1", yard), ("m2", away)):
        for action, at in (
            ("in", start + timedelta(minutes=10)),
            ("out", start + timedelta(minutes=80)),
        ):
            body = {
                "station_token": scan_token(stack.settings, station["id"], at),
                "action": action,
                "client_event_id": str(uuid.uuid4()),
                "scanned_at": at.isoformat(),
            }
            r = stack.client.post("/v1/checkins", json=body, headers=county[f"{k}_tok"])
            assert r.status_code == 202, r.text

    def roster() -> dict[str, Any] | None:
        r = stack.client.get(f"/v1/activities/{aid}/roster", headers=county["org"])
        if r.status_code != 200:
            return None
        out: dict[str, Any] = r.json()
        done = out["attended"] == 1 and out["no_shows"] == 1
        return out if done else None

    got = stack.wait_for(roster, timeout=60)
    assert got, stack.client.get(f"/v1/activities/{aid}/roster", headers=county["org"]).text
    assert (got["grid_id"], got["station_id"], got["place"]) == (grid5["id"], None, "3号院")
    rows = {x["member_id"]: x for x in got["items"]}
    m1, m2 = rows[county["m1"]["id"]], rows[county["m2"]["id"]]
    assert (m1["attendance"], m1["attended_station_id"], m1["attended_station"]) == (
        "attended",
        yard["id"],
        "南关党员驿站",
    )
    assert (m2["attendance"], m2["attended_station_id"], m2["attended_station"]) == (
        "no_show",
        None,
        "",
    )
    # The organizer publishes a grid slot through the API too.
    future = publish(stack, county, station_id=None, grid_id=grid5["id"], title="院落清扫（下周）")
    r = stack.client.get(f"/v1/activities/{future}/roster", headers=county["org"])
    assert r.status_code == 200, r.text
    assert (r.json()["place"], r.json()["items"]) == ("3号院", [])
