"""The foundation's path end to end on the real broker, a faust worker and chDB."""

from __future__ import annotations

import io
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import zxingcpp
from kafka import KafkaConsumer, TopicPartition
from PIL import Image

from services.events import Member, MemberUpserted, derived_id
from services.processors import route_for_event
from services.tokens import sign_station
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


@pytest.fixture(scope="module")
def demo(stack: Stack) -> dict[str, Any]:
    unit = stack.create("/v1/units", {"name": "县财政局"})
    community = stack.create("/v1/communities", {"name": "城关社区"})
    other_community = stack.create("/v1/communities", {"name": "东关社区"})
    other_unit = stack.create("/v1/units", {"name": "县教育局"})
    station = stack.create(
        "/v1/stations",
        {"community_id": community["id"], "name": "城关党群服务站", "kind": "service_station"},
    )
    member = stack.create(
        "/v1/members", {"name": "张伟", "unit_id": unit["id"], "community_id": community["id"]}
    )
    other = stack.create(
        "/v1/members",
        {"name": "李娜", "unit_id": other_unit["id"], "community_id": other_community["id"]},
    )
    return {
        "unit": unit,
        "community": community,
        "other_community": other_community,
        "other_unit": other_unit,
        "station": station,
        "member": member,
        "other": other,
    }


def checkin(stack: Stack, headers: dict[str, str], token: str, action: str, **extra: Any) -> Any:
    body = {"station_token": token, "action": action, "client_event_id": str(uuid.uuid4()), **extra}
    return stack.client.post("/v1/checkins", json=body, headers=headers)


def hours(stack: Stack, member_id: str, headers: dict[str, str]) -> dict[str, Any]:
    r = stack.client.get(f"/v1/members/{member_id}/hours", headers=headers)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def checkins_in_log(stack: Stack) -> int:
    topic = stack.settings.topic("checkins")
    c = KafkaConsumer(bootstrap_servers=stack.broker.bootstrap, api_version=(3, 9))
    try:
        parts = [TopicPartition(topic, p) for p in c.partitions_for_topic(topic) or ()]
        return sum(c.end_offsets(parts).values())
    finally:
        c.close()


def test_end_to_end_qr_offline_checkin_then_checkout_counts_two_hours(
    stack: Stack, demo: dict[str, Any]
) -> None:
    station, member = demo["station"], demo["member"]
    r = stack.client.get(f"/v1/stations/{station['id']}/qr?format=png", headers=stack.admin)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(r.content)))
    assert len(decoded) == 1
    url = decoded[0].text
    assert url.startswith(f"{stack.settings.public_url}/s/")
    token = url.rsplit("/s/", 1)[1]

    # The page the phone opens shows the station, in Chinese.
    page = stack.client.get(f"/s/{token}")
    assert page.status_code == 200 and "城关党群服务站" in page.text and "签到" in page.text

    me = stack.token("member", member["id"])
    now = datetime.now(UTC)
    r_in = checkin(stack, me, token, "in", scanned_at=(now - timedelta(hours=2)).isoformat())
    assert r_in.status_code == 202, r_in.text
    r_out = checkin(stack, me, token, "out", scanned_at=now.isoformat())
    assert r_out.status_code == 202, r_out.text
    assert r_in.json()["event_id"] != r_out.json()["event_id"]

    got = stack.wait_for(
        lambda: (h := hours(stack, member["id"], me))["sessions"] == 1 and h, timeout=10
    )
    assert got, "the session did not reach ClickHouse within 10 s"
    assert got["hours"] == 2.0
    assert got["sessions"] == 1
    assert got["year"] == datetime.now(UTC).year


def test_tampered_and_foreign_station_tokens_are_refused_and_nothing_published(
    stack: Stack, demo: dict[str, Any]
) -> None:
    station, member = demo["station"], demo["member"]
    me = stack.token("member", member["id"])
    good = sign_station(stack.settings, station["id"])
    version, sid, sig = good.split(".")
    other_station = stack.create(
        "/v1/stations",
        {"community_id": demo["community"]["id"], "name": "城关党员驿站", "kind": "member_post"},
    )
    flipped = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    wrong_key = sign_station(
        stack.settings.model_copy(update={"secret_key": "another-key-x"}), station["id"]
    )
    bad_tokens = {
        "tampered signature": f"{version}.{sid}.{flipped}",
        "wrong key": wrong_key,
        "station id changed": f"{version}.{other_station['id']}.{sig}",
        "unknown key version": f"v9.{sid}.{sig}",
        "garbage": "not-a-token",
    }
    before = checkins_in_log(stack)
    for label, token in bad_tokens.items():
        r = checkin(stack, me, token, "in")
        assert r.status_code == 400, (label, r.text)
        assert r.json()["error"]["code"] == "invalid_station_token", label
    assert checkins_in_log(stack) == before


def test_same_client_event_id_twice_counts_once(stack: Stack, demo: dict[str, Any]) -> None:
    station, unit, community = demo["station"], demo["unit"], demo["community"]
    m = stack.create(
        "/v1/members", {"name": "王芳", "unit_id": unit["id"], "community_id": community["id"]}
    )
    me = stack.token("member", m["id"])
    token = sign_station(stack.settings, station["id"])
    now = datetime.now(UTC)
    cin = {
        "station_token": token,
        "action": "in",
        "client_event_id": str(uuid.uuid4()),
        "scanned_at": (now - timedelta(hours=1)).isoformat(),
    }
    cout = {
        "station_token": token,
        "action": "out",
        "client_event_id": str(uuid.uuid4()),
        "scanned_at": now.isoformat(),
    }
    ids = []
    for body in (cin, cin, cout, cout):
        r = stack.client.post("/v1/checkins", json=body, headers=me)
        assert r.status_code == 202, r.text
        ids.append(r.json()["event_id"])
    assert ids[0] == ids[1] and ids[2] == ids[3]
    got = stack.wait_for(lambda: (h := hours(stack, m["id"], me))["sessions"] >= 1 and h)
    assert got and got["sessions"] == 1 and got["hours"] == 1.0
    # The raw scans are another topic than the sessions: wait until every one is loaded.
    assert stack.settled(), "the pipeline did not settle"
    rows = stack.client.app.state.ctx.warehouse.query(  # type: ignore[attr-defined]
        "SELECT count() FROM checkins FINAL WHERE member_id = %(m)s", {"m": m["id"]}
    )
    assert rows[0][0] == 2


def test_scanned_at_bounds(stack: Stack, demo: dict[str, Any]) -> None:
    me = stack.token("member", demo["member"]["id"])
    token = sign_station(stack.settings, demo["station"]["id"])
    now = datetime.now(UTC)
    too_old = checkin(stack, me, token, "in", scanned_at=(now - timedelta(hours=73)).isoformat())
    assert (
        too_old.status_code == 422 and too_old.json()["error"]["code"] == "scanned_at_out_of_range"
    )
    future = checkin(stack, me, token, "in", scanned_at=(now + timedelta(hours=1)).isoformat())
    assert future.status_code == 422 and future.json()["error"]["code"] == "scanned_at_out_of_range"
    naive = checkin(stack, me, token, "in", scanned_at="2026-01-01T10:00:00")
    assert naive.status_code == 422


def test_reads_by_the_wrong_member_hr_or_organizer_are_refused(
    stack: Stack, demo: dict[str, Any]
) -> None:
    member = demo["member"]
    allowed = {
        "self": stack.token("member", member["id"]),
        "own organizer": stack.token("organizer", demo["community"]["id"]),
        "own hr": stack.token("hr", demo["unit"]["id"]),
        "admin": stack.admin,
    }
    refused = {
        "another member": stack.token("member", demo["other"]["id"]),
        "another community's organizer": stack.token("organizer", demo["other_community"]["id"]),
        "another unit's hr": stack.token("hr", demo["other_unit"]["id"]),
    }
    for label, h in allowed.items():
        r = stack.client.get(f"/v1/members/{member['id']}/hours", headers=h)
        assert r.status_code == 200, (label, r.text)
    for label, h in refused.items():
        r = stack.client.get(f"/v1/members/{member['id']}/hours", headers=h)
        assert r.status_code in (403, 404), (label, r.text)
        assert "error" in r.json()
    assert stack.client.get(f"/v1/members/{member['id']}/hours").status_code == 401
    # A member cannot create registry entries or issue tokens.
    me = allowed["self"]
    assert stack.client.post("/v1/units", json={"name": "x"}, headers=me).status_code == 403
    r = stack.client.post(
        "/v1/auth/tokens", json={"role": "admin", "subject_id": "admin"}, headers=me
    )
    assert r.status_code == 403


def test_registry_refuses_unknown_references_and_subjects(
    stack: Stack, demo: dict[str, Any]
) -> None:
    c = stack.client
    r = c.post(
        "/v1/members",
        json={"name": "赵磊", "unit_id": "unit_nope", "community_id": demo["community"]["id"]},
        headers=stack.admin,
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_unit"
    r = c.post(
        "/v1/stations",
        json={"community_id": "comm_nope", "name": "x", "kind": "member_post"},
        headers=stack.admin,
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_community"
    r = c.post(
        "/v1/stations",
        json={"community_id": demo["community"]["id"], "name": "x", "kind": "bar"},
        headers=stack.admin,
    )
    assert r.status_code == 422 and "kind" in r.json()["error"]["message"]
    r = c.post(
        "/v1/auth/tokens", json={"role": "member", "subject_id": "mem_nope"}, headers=stack.admin
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_subject"
    r = c.post(
        "/v1/auth/tokens",
        json={"role": "hr", "subject_id": demo["community"]["id"]},
        headers=stack.admin,
    )
    assert r.status_code == 422


def test_healthz_reports_ok(stack: Stack) -> None:
    r = stack.client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert {k: body[k] for k in ("status", "kafka", "clickhouse", "lagging")} == {
        "status": "ok",
        "kafka": "ok",
        "clickhouse": "ok",
        "lagging": [],
    }
    # The consumer groups' lag (issue 13): measured, far below HEALTH_MAX_LAG here.
    assert set(body["lag"]) == {"worker", "sink"}


def test_a_member_who_left_cannot_check_in(stack: Stack, demo: dict[str, Any]) -> None:
    m = stack.create(
        "/v1/members",
        {"name": "钱进", "unit_id": demo["unit"]["id"], "community_id": demo["community"]["id"]},
    )
    me = stack.token("member", m["id"])
    token = sign_station(stack.settings, demo["station"]["id"])
    assert checkin(stack, me, token, "in").status_code == 202
    r = stack.client.patch(f"/v1/members/{m['id']}", json={"status": "left"}, headers=stack.admin)
    assert r.status_code == 200, r.text
    before = checkins_in_log(stack)
    r = checkin(stack, me, token, "out")
    assert r.status_code == 403 and r.json()["error"]["code"] == "member_not_active"
    assert checkins_in_log(stack) == before


def test_a_member_set_inactive_through_another_api_process_is_refused_within_the_bound(
    stack: Stack, demo: dict[str, Any]
) -> None:
    """Check-ins read members from an in-memory replica; a change made through another API
    process (here: its write-through into ClickHouse, behind this process's back) must reach
    this process's check-ins within REGISTRY_REFRESH_S (plus the refresh's own time)."""
    m = stack.create(
        "/v1/members",
        {"name": "孙丽", "unit_id": demo["unit"]["id"], "community_id": demo["community"]["id"]},
    )
    me = stack.token("member", m["id"])
    token = sign_station(stack.settings, demo["station"]["id"])
    assert checkin(stack, me, token, "in").status_code == 202
    ctx = stack.client.app.state.ctx  # type: ignore[attr-defined]
    assert ctx.registry.replica.lookup(demo["station"]["id"], m["id"]) is not None
    before = Member.model_validate(ctx.registry.member(m["id"]).model_dump())
    left = before.model_copy(
        update={"status": "left", "version": before.version + 1, "updated_by": "admin:other"}
    )
    event = MemberUpserted(
        event_id=derived_id("member", left.id, str(left.version)),
        occurred_at=left.updated_at,
        record=left,
    )
    route = route_for_event(event)
    ctx.warehouse.insert(route.table, [route.to_row(event)], route.columns)
    t0 = time.monotonic()
    while True:
        refs = ctx.registry.replica.lookup(demo["station"]["id"], m["id"])
        if refs is not None and refs[1].status == "left":
            break
        # Polled here rather than by scanning: the member's rate limit would answer first.
        assert time.monotonic() - t0 < stack.settings.registry_refresh_s + 2.0, "not seen yet"
        time.sleep(0.05)
    r = checkin(stack, me, token, "out")
    assert r.status_code == 403 and r.json()["error"]["code"] == "member_not_active"
