"""Micro-wishes and the three lists, two-way feedback, and campaigns, on the real broker, a faust
worker and chDB (one stack for the whole module)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from services import topics
from services.events import utcnow
from services.lists import command
from services.periods import parse_period
from services.publisher import Publisher
from services.timeutil import local
from services.tokens import sign_station
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def wh(stack: Stack) -> Any:
    return stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def county(stack: Stack) -> dict[str, Any]:
    c = stack.create
    unit = c("/v1/units", {"name": "县民政局"})
    other_unit = c("/v1/units", {"name": "县卫健局"})
    community = c("/v1/communities", {"name": "南关社区"})
    other_community = c("/v1/communities", {"name": "北关社区"})
    grid = c("/v1/grids", {"community_id": community["id"], "name": "第一网格", "level": 4})
    grid2 = c("/v1/grids", {"community_id": community["id"], "name": "第二网格", "level": 4})
    other_grid = c(
        "/v1/grids", {"community_id": other_community["id"], "name": "北一网格", "level": 4}
    )
    station = c(
        "/v1/stations",
        {"community_id": community["id"], "name": "南关党群服务站", "kind": "service_station"},
    )
    other_station = c(
        "/v1/stations",
        {"community_id": other_community["id"], "name": "北关党员驿站", "kind": "member_post"},
    )

    def member(name: str, u: dict[str, Any], comm: dict[str, Any]) -> dict[str, Any]:
        return c("/v1/members", {"name": name, "unit_id": u["id"], "community_id": comm["id"]})

    out = {
        "unit": unit,
        "other_unit": other_unit,
        "community": community,
        "other_community": other_community,
        "grid": grid,
        "grid2": grid2,
        "other_grid": other_grid,
        "station": station,
        "other_station": other_station,
        "m1": member("刘洋", unit, community),
        "m2": member("陈晨", other_unit, community),
        "m3": member("杨帆", other_unit, other_community),
    }
    out["org"] = stack.token("organizer", community["id"])
    out["other_org"] = stack.token("organizer", other_community["id"])
    out["hr"] = stack.token("hr", unit["id"])
    out["other_hr"] = stack.token("hr", other_unit["id"])
    for k in ("m1", "m2", "m3"):
        out[f"{k}_tok"] = stack.token("member", out[k]["id"])
    return out


def serve(
    stack: Stack,
    member_tok: dict[str, str],
    member_id: str,
    station_id: str,
    hours_ago: float,
    hours: float,
) -> str:
    """A check-in and a check-out through the API; returns the closed session's id."""
    token = sign_station(stack.settings, station_id)
    now = datetime.now(UTC)
    for action, at in (
        ("in", now - timedelta(hours=hours_ago)),
        ("out", now - timedelta(hours=hours_ago - hours)),
    ):
        body = {
            "station_token": token,
            "action": action,
            "client_event_id": str(uuid.uuid4()),
            "scanned_at": at.isoformat(),
        }
        r = stack.client.post("/v1/checkins", json=body, headers=member_tok)
        assert r.status_code == 202, r.text
    start = now - timedelta(hours=hours_ago)

    def closed() -> str | None:
        rows = wh(stack).query(
            "SELECT session_id FROM sessions FINAL WHERE member_id = %(m)s AND status = 'closed' "
            "AND voided = 0 "
            "AND start >= %(s)s AND start < %(e)s",
            {"m": member_id, "s": start - timedelta(seconds=1), "e": start + timedelta(seconds=1)},
        )
        return str(rows[0][0]) if rows else None

    sid = stack.wait_for(closed, timeout=30)
    assert sid, "the session did not reach ClickHouse"
    return str(sid)


def wish_state(stack: Stack, wish_id: str, headers: dict[str, str]) -> dict[str, Any] | None:
    r = stack.client.get(f"/v1/wishes/{wish_id}", headers=headers)
    return r.json() if r.status_code == 200 else None


def wait_status(stack: Stack, wish_id: str, status: str, headers: dict[str, str]) -> dict[str, Any]:
    got = stack.wait_for(
        lambda: (w := wish_state(stack, wish_id, headers)) and w["status"] == status and w
    )
    assert got, f"wish {wish_id} did not reach {status}: {wish_state(stack, wish_id, headers)}"
    return dict(got)


def order(stack: Stack, county: dict[str, Any], title: str, **extra: Any) -> str:
    body = {
        "community_id": county["community"]["id"],
        "title": title,
        "resident_name": "张奶奶",
        "resident_contact": "南关小区3号楼",
        **extra,
    }
    r = stack.client.post("/v1/wishes", json=body, headers=county["org"])
    assert r.status_code == 202, r.text
    wish_id = str(r.json()["id"])
    wait_status(stack, wish_id, "ordered", county["org"])
    return wish_id


def post(stack: Stack, path: str, headers: dict[str, str], **body: Any) -> Any:
    return stack.client.post(path, json=body, headers=headers)


def assert_error(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.text


# ---- micro-wishes ----------------------------------------------------------------------------


def test_a_wish_whole_life_and_refused_transitions(stack: Stack, county: dict[str, Any]) -> None:
    org, m1 = county["org"], county["m1"]
    wish_id = order(stack, county, "帮忙买药")

    # Accepted before dispatched (not the member's wish yet: as if it did not exist), and a
    # dispatch by another community's organizer, are refused.
    r = post(stack, f"/v1/wishes/{wish_id}/accept", county["m1_tok"])
    assert_error(r, 404, "wish_not_found")
    r = post(
        stack,
        f"/v1/wishes/{wish_id}/dispatch",
        county["other_org"],
        assignee_kind="member",
        assignee_id=m1["id"],
    )
    assert_error(r, 404, "wish_not_found")
    # A member of another community cannot be dispatched here: to this organizer, who may not
    # read them, they answer as a member that does not exist.
    r = post(
        stack,
        f"/v1/wishes/{wish_id}/dispatch",
        org,
        assignee_kind="member",
        assignee_id=county["m3"]["id"],
    )
    assert_error(r, 422, "unknown_member")
    r = post(
        stack,
        f"/v1/wishes/{wish_id}/dispatch",
        stack.admin,
        assignee_kind="member",
        assignee_id=county["m3"]["id"],
    )
    assert_error(r, 422, "member_not_in_community")

    r = post(
        stack, f"/v1/wishes/{wish_id}/dispatch", org, assignee_kind="member", assignee_id=m1["id"]
    )
    assert r.status_code == 202 and r.json()["status"] == "dispatched", r.text
    wait_status(stack, wish_id, "dispatched", org)

    session_id = serve(stack, county["m1_tok"], m1["id"], county["station"]["id"], 30, 1)
    r = post(stack, f"/v1/wishes/{wish_id}/complete", county["m1_tok"], session_id=session_id)
    assert_error(r, 409, "not_accepted")
    # Only the assignee accepts: not another member, nor the unit's HR (to whom the wish is as
    # one that does not exist), nor the organizer.
    assert_error(
        post(stack, f"/v1/wishes/{wish_id}/accept", county["m2_tok"]), 404, "wish_not_found"
    )
    assert_error(post(stack, f"/v1/wishes/{wish_id}/accept", county["hr"]), 404, "wish_not_found")
    assert_error(post(stack, f"/v1/wishes/{wish_id}/accept", org), 403, "forbidden")

    assert post(stack, f"/v1/wishes/{wish_id}/accept", county["m1_tok"]).status_code == 202
    wait_status(stack, wish_id, "accepted", county["m1_tok"])
    assert_error(
        post(stack, f"/v1/wishes/{wish_id}/accept", county["m1_tok"]), 409, "already_claimed"
    )

    r = post(stack, f"/v1/wishes/{wish_id}/complete", county["m1_tok"], session_id="sess_nope")
    assert_error(r, 422, "unknown_session")
    other_session = serve(
        stack, county["m2_tok"], county["m2"]["id"], county["station"]["id"], 28, 1
    )
    # Another member's session is as unknown to this member as one that does not exist.
    r = post(stack, f"/v1/wishes/{wish_id}/complete", county["m1_tok"], session_id=other_session)
    assert_error(r, 422, "unknown_session")
    r = post(stack, f"/v1/wishes/{wish_id}/complete", county["m1_tok"], session_id=session_id)
    assert r.status_code == 202, r.text
    done = wait_status(stack, wish_id, "done", org)
    assert done["evidence_session_id"] == session_id
    assert done["fulfilled_by_member_id"] == m1["id"]

    assert_error(
        post(stack, f"/v1/wishes/{wish_id}/confirm", org, rating=9), 422, "invalid_request"
    )
    assert_error(
        post(stack, f"/v1/wishes/{wish_id}/confirm", county["m1_tok"], rating=5), 403, "forbidden"
    )
    assert (
        post(stack, f"/v1/wishes/{wish_id}/confirm", org, rating=5, comment="非常感谢").status_code
        == 202
    )
    confirmed = wait_status(stack, wish_id, "confirmed", org)
    assert confirmed["rating"] == 5 and confirmed["revision"] == 5
    history = stack.wait_for(
        lambda: (
            len((wish_state(stack, wish_id, org) or {}).get("history", [])) == 5
            and wish_state(stack, wish_id, org)
        )
    )
    assert history, "the transitions did not all reach ClickHouse"
    assert [(h["action"], h["status"], h["actor_role"]) for h in history["history"]] == [
        ("order", "ordered", "organizer"),
        ("dispatch", "dispatched", "organizer"),
        ("accept", "accepted", "member"),
        ("complete", "done", "member"),
        ("confirm", "confirmed", "organizer"),
    ]
    # Refused by the API, those never reached the log: nothing refused by the agent.
    assert history["rejections"] == []

    year = local(utcnow()).year
    r = stack.client.get(f"/v1/members/{m1['id']}/wishes", headers=county["hr"])
    assert r.status_code == 200 and r.json() == {
        "member_id": m1["id"],
        "year": year,
        "wishes_fulfilled": 1,
    }
    r = stack.client.get(f"/v1/units/{county['unit']['id']}/wishes", headers=county["hr"])
    assert r.json()["wishes_fulfilled"] == 1 and r.json()["members"] == {m1["id"]: 1}
    assert (
        stack.client.get(
            f"/v1/units/{county['unit']['id']}/wishes", headers=county["other_hr"]
        ).status_code
        == 404
    )

    # Lists with scope: the organizer sees it, the assignee sees it, another community does not.
    r = stack.client.get("/v1/wishes", params={"status": "confirmed"}, headers=org)
    assert r.json()["total"] >= 1 and wish_id in [w["wish_id"] for w in r.json()["items"]]
    r = stack.client.get("/v1/wishes", headers=county["m1_tok"])
    assert wish_id in [w["wish_id"] for w in r.json()["items"]]
    r = stack.client.get("/v1/wishes", headers=county["other_org"])
    assert r.json() == {"items": [], "total": 0}
    r = stack.client.get(
        "/v1/wishes",
        params={"community_id": county["community"]["id"]},
        headers=county["other_org"],
    )
    assert_error(r, 403, "forbidden")
    assert stack.client.get(f"/v1/wishes/{wish_id}", headers=county["m2_tok"]).status_code == 404


def test_a_resent_order_counts_once(stack: Stack, county: dict[str, Any]) -> None:
    cid = str(uuid.uuid4())
    body = {
        "community_id": county["community"]["id"],
        "title": "陪同就医",
        "resident_name": "李大爷",
        "client_event_id": cid,
    }
    a = stack.client.post("/v1/wishes", json=body, headers=county["org"])
    b = stack.client.post("/v1/wishes", json=body, headers=county["org"])
    assert a.status_code == b.status_code == 202
    assert a.json()["id"] == b.json()["id"]
    wait_status(stack, a.json()["id"], "ordered", county["org"])
    c = stack.client.post("/v1/wishes", json=body, headers=county["org"])
    assert c.json()["id"] == a.json()["id"]
    rows = wh(stack).query("SELECT count() FROM wishes FINAL WHERE title = '陪同就医'")
    assert rows[0][0] == 1
    # Bad input names the field and records nothing.
    r = stack.client.post(
        "/v1/wishes", json={**body, "client_event_id": None, "title": ""}, headers=county["org"]
    )
    assert_error(r, 422, "invalid_request")
    assert "title" in r.json()["error"]["message"]
    r = stack.client.post(
        "/v1/wishes", json={**body, "client_event_id": None}, headers=county["m1_tok"]
    )
    assert_error(r, 403, "forbidden")
    r = stack.client.post(
        "/v1/wishes",
        json={**body, "client_event_id": None, "community_id": "comm_nope"},
        headers=stack.admin,
    )
    assert_error(r, 422, "unknown_community")
    r = stack.client.get("/v1/wishes", params={"status": "bogus"}, headers=county["org"])
    assert_error(r, 422, "invalid_request")
    assert "status" in r.json()["error"]["message"]


def test_the_agent_is_the_authority_in_log_order(stack: Stack, county: dict[str, Any]) -> None:
    """Two claims that both passed the API's check (its view lagged) reach the agent in log
    order: the first is taken, the second refused with the reason, recorded for the wish."""
    wish_id = order(stack, county, "修理门锁")
    r = post(
        stack,
        f"/v1/wishes/{wish_id}/dispatch",
        county["org"],
        assignee_kind="member",
        assignee_id=county["m1"]["id"],
    )
    assert r.status_code == 202
    wait_status(stack, wish_id, "dispatched", county["org"])
    # A malformed command goes to the dead-letter topic; the agent carries on with the rest.
    raw = KafkaProducer(bootstrap_servers=stack.broker.bootstrap, api_version=(3, 9))
    raw.send(stack.settings.topic(topics.LIST_COMMANDS.name), key=wish_id.encode(), value=b"{oops")
    raw.flush()
    raw.close()
    publisher = Publisher(stack.settings)
    try:
        now = utcnow()
        common = {
            "item_kind": "wish",
            "item_id": wish_id,
            "actor_role": "member",
            "actor_id": county["m1"]["id"],
            "at": now,
        }
        first = command(action="accept", basis="race-1", **common)
        second = command(action="accept", basis="race-2", **common)
        for cmd in (first, second, first):  # the first re-delivered: dropped, not refused
            publisher.send_sync(topics.LIST_COMMANDS, wish_id, cmd)
        publisher.send_sync(
            topics.LIST_COMMANDS,
            "wish_ghost",
            command(action="accept", basis="g", **{**common, "item_id": "wish_ghost"}),
        )
    finally:
        publisher.close()
    # The wish and its rejections are two topics, loaded by the sink into two tables, each in
    # its own insert: wait until both moved, then check what they say.
    got = stack.wait_for(
        lambda: (
            (w := wish_state(stack, wish_id, county["org"]))
            and len(w["rejections"]) >= 1
            and w["status"] != "dispatched"
            and w
        )
    )
    assert got, f"the claims were not both judged: {wish_state(stack, wish_id, county['org'])}"
    assert got["status"] == "accepted" and got["last_event_id"] == first.event_id
    (rej,) = got["rejections"]
    assert rej["command_event_id"] == second.event_id and rej["code"] == "already_claimed"
    ghost = stack.wait_for(
        lambda: wh(stack).query(
            "SELECT code FROM list_rejections FINAL WHERE item_id = 'wish_ghost'"
        )
    )
    assert ghost and ghost[0][0] == "not_found"
    dead = KafkaConsumer(
        stack.settings.topic(topics.DEAD_LETTER.name),
        bootstrap_servers=stack.broker.bootstrap,
        api_version=(3, 9),
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    try:
        reasons = [dict(m.headers).get("source") for m in dead if m.value == b"{oops"]
    finally:
        dead.close()
    assert reasons == [b"judge_list_commands"]


# ---- resources and projects -------------------------------------------------------------------


def test_resources_and_projects(stack: Stack, county: dict[str, Any]) -> None:
    org, hr = county["org"], county["hr"]
    r = post(stack, "/v1/resources", hr, title="义诊服务", community_id=county["community"]["id"])
    assert r.status_code == 202, r.text
    res_id = r.json()["id"]
    got = stack.wait_for(
        lambda: stack.client.get(f"/v1/resources/{res_id}", headers=hr).status_code == 200
    )
    assert got
    assert_error(
        post(stack, "/v1/resources", hr, title="x", unit_id=county["other_unit"]["id"]),
        403,
        "forbidden",
    )
    assert_error(post(stack, "/v1/resources", county["m1_tok"], title="x"), 403, "forbidden")
    # Organizers see resources offered to them; another community's organizer does not.
    r = stack.client.get("/v1/resources", params={"status": "available"}, headers=org)
    assert res_id in [x["resource_id"] for x in r.json()["items"]]
    r = stack.client.get("/v1/resources", headers=county["other_org"])
    assert res_id not in [x["resource_id"] for x in r.json()["items"]]

    wish_id = order(stack, county, "老人体检")
    r = post(stack, "/v1/projects", county["other_org"], wish_id=wish_id, resource_id=res_id)
    assert_error(r, 404, "wish_not_found")
    r = post(stack, "/v1/projects", org, wish_id=wish_id, resource_id="res_nope")
    assert_error(r, 422, "unknown_resource")
    r = post(stack, "/v1/projects", org, wish_id=wish_id, resource_id=res_id)
    assert r.status_code == 202, r.text
    project = r.json()
    assert project["unit_id"] == county["unit"]["id"]
    w = wait_status(stack, wish_id, "dispatched", org)
    assert w["project_id"] == project["project_id"] and w["assignee_kind"] == "unit"
    matched = stack.wait_for(
        lambda: (
            stack.client.get(f"/v1/resources/{res_id}", headers=hr).json()["status"] == "matched"
        )
    )
    assert matched, "the resource was not matched by the agent"

    # The resource is taken: a second project on it is refused at once.
    wish2 = order(stack, county, "上门理发")
    assert_error(
        post(stack, "/v1/projects", org, wish_id=wish2, resource_id=res_id),
        409,
        "resource_unavailable",
    )
    # And if a second match slips past the API (its view lagged), the agent refuses the
    # resource and hands the wish back to `ordered`.
    publisher = Publisher(stack.settings)
    try:
        sneaky = command(
            item_kind="wish",
            item_id=wish2,
            action="dispatch",
            actor_role="organizer",
            actor_id=county["community"]["id"],
            at=utcnow(),
            basis="sneaky",
            assignee_kind="unit",
            assignee_id=county["unit"]["id"],
            resource_id=res_id,
            project_id="proj_sneaky",
        )
        publisher.send_sync(topics.LIST_COMMANDS, wish2, sneaky)
    finally:
        publisher.close()
    back = stack.wait_for(lambda: (x := wish_state(stack, wish2, org)) and x["revision"] >= 3 and x)
    assert back and back["status"] == "ordered" and back["project_id"] is None, back
    rej = wh(stack).query(
        "SELECT code FROM list_rejections FINAL WHERE item_id = %(r)s", {"r": res_id}
    )
    assert [x[0] for x in rej] == ["resource_unavailable"]

    # The unit's HR accepts, and completes with a session by one of the unit's members.
    assert_error(
        post(stack, f"/v1/wishes/{wish_id}/accept", county["m1_tok"]), 404, "wish_not_found"
    )
    assert post(stack, f"/v1/wishes/{wish_id}/accept", hr).status_code == 202
    wait_status(stack, wish_id, "accepted", hr)
    sid = serve(stack, county["m1_tok"], county["m1"]["id"], county["station"]["id"], 26, 2)
    assert post(stack, f"/v1/wishes/{wish_id}/complete", hr, session_id=sid).status_code == 202
    wait_status(stack, wish_id, "done", hr)

    r = stack.client.get("/v1/projects", headers=org)
    assert r.status_code == 200 and r.json()["total"] == 1
    (p,) = r.json()["items"]
    assert p["project_id"] == project["project_id"] and p["status"] == "done"
    assert p["resource_title"] == "义诊服务"
    assert stack.client.get(f"/v1/projects/{project['project_id']}", headers=hr).status_code == 200
    assert (
        stack.client.get(
            f"/v1/projects/{project['project_id']}", headers=county["other_hr"]
        ).status_code
        == 404
    )
    assert stack.client.get("/v1/projects", headers=county["other_hr"]).json()["total"] == 0
    assert_error(post(stack, f"/v1/resources/{res_id}/withdraw", hr), 409, "invalid_transition")


# ---- feedback -----------------------------------------------------------------------------------


def test_feedback_written_and_aggregated_by_member_community_unit_and_period(
    stack: Stack, county: dict[str, Any]
) -> None:
    org = county["org"]
    m1, m2 = county["m1"], county["m2"]
    now_local = local(utcnow())
    quarter = f"{now_local.year}-Q{(now_local.month - 1) // 3 + 1}"
    month = f"{now_local.year}-{now_local.month:02d}"
    year = str(now_local.year)
    sid = serve(stack, county["m1_tok"], m1["id"], county["station"]["id"], 20, 1)

    cid = str(uuid.uuid4())
    for _ in range(2):  # a re-sent request is the same evaluation
        r = post(
            stack,
            "/v1/feedback/member-service",
            org,
            member_id=m1["id"],
            session_id=sid,
            rating=4,
            comment="认真负责",
            client_event_id=cid,
        )
        assert r.status_code == 201, r.text
    r = post(
        stack, "/v1/feedback/member-service", org, member_id=m1["id"], period=quarter, rating=2
    )
    assert r.status_code == 201
    r = post(
        stack,
        "/v1/feedback/community-arrangement",
        county["m1_tok"],
        period=month,
        rating=5,
        comment="安排合理",
    )
    assert r.status_code == 201
    r = post(
        stack,
        "/v1/feedback/unit-summaries",
        org,
        period=quarter,
        items=[
            {"member_id": m1["id"], "grade": "优秀", "comment": "表现突出"},
            {"member_id": m2["id"], "grade": "良好"},
        ],
    )
    assert r.status_code == 201 and len(r.json()["feedback_ids"]) == 2

    # Refusals: scope, bad input, and nothing half-written.
    before = wh(stack).query("SELECT count() FROM feedback FINAL")[0][0]
    assert_error(
        post(
            stack,
            "/v1/feedback/member-service",
            county["other_org"],
            member_id=m1["id"],
            period=year,
            rating=3,
        ),
        422,
        "unknown_member",
    )
    assert_error(
        post(
            stack,
            "/v1/feedback/member-service",
            county["m2_tok"],
            member_id=m1["id"],
            period=year,
            rating=3,
        ),
        403,
        "forbidden",
    )
    assert_error(
        post(
            stack,
            "/v1/feedback/member-service",
            org,
            member_id=m1["id"],
            period=year,
            session_id=sid,
            rating=3,
        ),
        422,
        "invalid_request",
    )
    assert_error(
        post(
            stack,
            "/v1/feedback/member-service",
            org,
            member_id=m1["id"],
            period="2026-Q5",
            rating=3,
        ),
        422,
        "invalid_period",
    )
    assert_error(
        post(
            stack, "/v1/feedback/member-service", org, member_id=m2["id"], session_id=sid, rating=3
        ),
        422,
        "unknown_session",
    )
    assert_error(
        post(stack, "/v1/feedback/community-arrangement", org, period=month, rating=5),
        403,
        "forbidden",
    )
    r = post(
        stack,
        "/v1/feedback/unit-summaries",
        org,
        period=quarter,
        items=[
            {"member_id": m1["id"], "grade": "一般"},
            {"member_id": county["m3"]["id"], "grade": "良好"},
        ],
    )
    # Another community's member: as one that does not exist, to this organizer.
    assert_error(r, 422, "unknown_member")
    assert "items.1.member_id" in r.json()["error"]["message"]
    r = post(
        stack,
        "/v1/feedback/unit-summaries",
        org,
        period=quarter,
        items=[{"member_id": m1["id"], "grade": "很好"}],
    )
    assert_error(r, 422, "invalid_request")
    assert wh(stack).query("SELECT count() FROM feedback FINAL")[0][0] == before

    # Per member, for the year: the session rating once, the quarter rating, the confirmed wish.
    r = stack.client.get(
        f"/v1/members/{m1['id']}/feedback", params={"period": year}, headers=county["hr"]
    )
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["member_service"] == {"count": 2, "average": 3.0}
    (me,) = [x for x in f["members"] if x["member_id"] == m1["id"]]
    assert me["evaluations"] == [
        {
            "period": quarter,
            "grade": "优秀",
            "comment": "表现突出",
            "community_id": county["community"]["id"],
        }
    ]
    assert f["wish_ratings"]["count"] >= 1 and f["wish_ratings"]["average"] == 5.0
    # The quarter's rating does not fall inside one month.
    session_day = local(utcnow() - timedelta(hours=20)).date()
    in_month = parse_period(month).contains(session_day, session_day + timedelta(days=1))
    r = stack.client.get(
        f"/v1/members/{m1['id']}/feedback", params={"period": month}, headers=county["m1_tok"]
    )
    assert r.status_code == 200 and r.json()["member_service"]["count"] == int(in_month)

    # Per community: its members' ratings and evaluations, and the members' ratings of it.
    r = stack.client.get(
        f"/v1/communities/{county['community']['id']}/feedback",
        params={"period": quarter},
        headers=org,
    )
    c = r.json()
    assert c["community_arrangement"] == {"count": 1, "average": 5.0}
    assert c["grades"] == {"优秀": 1, "良好": 1}
    # Per unit: only the unit's members.
    r = stack.client.get(
        f"/v1/units/{county['other_unit']['id']}/feedback",
        params={"period": year},
        headers=county["other_hr"],
    )
    u = r.json()
    assert u["grades"] == {"良好": 1} and [x["member_id"] for x in u["members"]] == [m2["id"]]

    # A correction replaces the earlier version rather than adding to it.
    r = post(
        stack, "/v1/feedback/member-service", org, member_id=m1["id"], period=quarter, rating=4
    )
    assert r.status_code == 201
    f = stack.client.get(
        f"/v1/members/{m1['id']}/feedback", params={"period": year}, headers=org
    ).json()
    assert f["member_service"] == {"count": 2, "average": 4.0}

    # Scope refusals on reads.
    for path, h in (
        (f"/v1/members/{m1['id']}/feedback", county["other_hr"]),
        (f"/v1/members/{m1['id']}/feedback", county["m2_tok"]),
        (f"/v1/members/{m1['id']}/feedback", county["other_org"]),
        (f"/v1/communities/{county['community']['id']}/feedback", county["other_org"]),
        (f"/v1/communities/{county['community']['id']}/feedback", county["hr"]),
        (f"/v1/units/{county['unit']['id']}/feedback", county["other_hr"]),
        (f"/v1/units/{county['unit']['id']}/feedback", org),
    ):
        assert stack.client.get(path, headers=h).status_code == 404, path
    r = stack.client.get(
        f"/v1/units/{county['unit']['id']}/feedback", params={"period": "26"}, headers=county["hr"]
    )
    assert_error(r, 422, "invalid_period")

    # Once the sink has loaded the same versions from the log, nothing is doubled: four
    # evaluations of m1 (session, quarter, unit summary, arrangement), each counted once.
    assert stack.settled(), "the pipeline did not settle"
    rows = wh(stack).query(
        "SELECT count() FROM feedback FINAL WHERE member_id = %(m)s", {"m": m1["id"]}
    )
    assert rows[0][0] == 4


# ---- campaigns ----------------------------------------------------------------------------------


def test_a_campaign_tags_service_and_sums_it_separately(
    stack: Stack, county: dict[str, Any]
) -> None:
    c = stack.create
    camp_unit = c("/v1/units", {"name": "县应急管理局"})
    comm = county["community"]
    a = c(
        "/v1/members", {"name": "周敏", "unit_id": county["unit"]["id"], "community_id": comm["id"]}
    )
    b = c(
        "/v1/members",
        {
            "name": "吴磊",
            "unit_id": camp_unit["id"],
            "community_id": county["other_community"]["id"],
        },
    )
    idle = c(
        "/v1/members", {"name": "郑爽", "unit_id": county["unit"]["id"], "community_id": comm["id"]}
    )
    outsider = c(
        "/v1/members", {"name": "孙丽", "unit_id": county["unit"]["id"], "community_id": comm["id"]}
    )
    now = datetime.now(UTC)
    body = {
        "name": "疫情防控",
        "community_id": comm["id"],
        "starts_at": (now - timedelta(hours=12)).isoformat(),
        "ends_at": (now + timedelta(days=1)).isoformat(),
        "count_community_stations": False,
        "assignments": [
            {"grid_id": county["grid"]["id"], "member_ids": [a["id"], idle["id"]]},
            {"grid_id": county["grid2"]["id"], "unit_ids": [camp_unit["id"]]},
        ],
    }
    org = county["org"]
    assert_error(post(stack, "/v1/campaigns", county["other_org"], **body), 403, "forbidden")
    assert_error(
        post(stack, "/v1/campaigns", org, **{**body, "ends_at": body["starts_at"]}),
        422,
        "invalid_period",
    )
    bad = {
        **body,
        "assignments": [{"grid_id": county["other_grid"]["id"], "member_ids": [a["id"]]}],
    }
    assert_error(post(stack, "/v1/campaigns", org, **bad), 422, "grid_not_in_community")
    bad = {**body, "assignments": [{"grid_id": county["grid"]["id"], "member_ids": ["mem_nope"]}]}
    r = post(stack, "/v1/campaigns", org, **bad)
    assert_error(r, 422, "unknown_member")
    assert "assignments.0.member_ids.0" in r.json()["error"]["message"]
    r = post(stack, "/v1/campaigns", org, **body)
    assert r.status_code == 201, r.text
    camp = r.json()

    # Assigned a at the community's station, b (through the unit) at another community's
    # station; the outsider serves at the community's station but is not assigned.
    a_tok = stack.token("member", a["id"])
    # Before the campaign started: not the campaign's.
    serve(stack, a_tok, a["id"], county["station"]["id"], 20, 1)
    serve(stack, a_tok, a["id"], county["station"]["id"], 6, 1)
    serve(stack, stack.token("member", b["id"]), b["id"], county["other_station"]["id"], 5, 2)
    serve(
        stack, stack.token("member", outsider["id"]), outsider["id"], county["station"]["id"], 4, 1
    )

    # The admin reads everyone; the organizer only their own community's members (b lives in
    # another community), the unit's HR only the unit's (issue 17).
    r = stack.client.get(f"/v1/campaigns/{camp['id']}/summary", headers=org)
    assert r.status_code == 200, r.text
    mine = r.json()
    assert (mine["members_assigned"], mine["members_served"], mine["hours"]) == (2, 1, 1.0)
    assert b["id"] not in r.text
    hr = stack.token("hr", camp_unit["id"])
    r = stack.client.get(f"/v1/campaigns/{camp['id']}/summary", headers=hr)
    theirs = r.json()
    assert (theirs["members_assigned"], theirs["members_served"], theirs["hours"]) == (1, 1, 2.0)
    assert a["id"] not in r.text and idle["id"] not in r.text
    r = stack.client.get(f"/v1/campaigns/{camp['id']}/summary", headers=stack.admin)
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["members_assigned"] == 3 and s["members_served"] == 2
    assert s["sessions"] == 2 and s["hours"] == 3.0
    assert s["not_served"] == [idle["id"]]
    grids = {g["grid_id"]: g for g in s["by_grid"]}
    assert grids[county["grid"]["id"]] == {
        "grid_id": county["grid"]["id"],
        "members_assigned": 2,
        "members_served": 1,
        "hours": 1.0,
    }
    assert grids[county["grid2"]["id"]]["hours"] == 2.0
    # Counted in the totals as well.
    h = stack.client.get(f"/v1/members/{a['id']}/hours", headers=stack.admin).json()
    assert h["hours"] == 2.0

    # Counting the community's stations brings in the outsider's hour.
    r = post(
        stack,
        "/v1/campaigns",
        org,
        **{**body, "name": "创卫攻坚", "count_community_stations": True},
    )
    s2 = stack.client.get(f"/v1/campaigns/{r.json()['id']}/summary", headers=stack.admin).json()
    assert s2["members_served"] == 3 and s2["hours"] == 4.0 and s2["assigned_members_served"] == 2
    s2 = stack.client.get(f"/v1/campaigns/{r.json()['id']}/summary", headers=org).json()
    assert s2["members_served"] == 2 and s2["hours"] == 2.0 and s2["assigned_members_served"] == 1

    assert (
        stack.client.get(
            f"/v1/campaigns/{camp['id']}/summary", headers=county["other_org"]
        ).status_code
        == 404
    )
    assert (
        stack.client.get(
            f"/v1/campaigns/{camp['id']}/summary", headers=county["m1_tok"]
        ).status_code
        == 404
    )
    r = stack.client.get("/v1/campaigns", headers=org)
    assert r.json()["total"] == 2
    assert stack.client.get("/v1/campaigns", headers=county["other_org"]).json()["total"] == 0


# ---- replay ----------------------------------------------------------------------------------


def test_replaying_the_log_into_an_empty_database_gives_the_same_figures(
    stack: Stack, county: dict[str, Any]
) -> None:
    """Everything here is rebuilt from Kafka alone: the same feedback aggregates, wish counts,
    lists and campaign summaries (run last in the module: it replays what the others wrote)."""
    from kafka import TopicPartition

    from services import engagement
    from services.processors import ROUTES, InvalidMessage, process
    from services.warehouse.client import connect
    from services.warehouse.migrate import migrate

    # The live database must hold everything the log does before the two are compared.
    assert stack.settled(), "the pipeline did not settle"
    replay_settings = stack.settings.model_copy(
        update={"clickhouse_database": f"{stack.settings.clickhouse_database}_replay"}
    )
    fresh = connect(replay_settings)
    migrate(fresh)
    consumer = KafkaConsumer(bootstrap_servers=stack.broker.bootstrap, api_version=(3, 9))
    try:
        parts = [
            TopicPartition(stack.settings.topic(name), p)
            for name in ROUTES
            for p in consumer.partitions_for_topic(stack.settings.topic(name)) or ()
        ]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        rows: dict[str, tuple[Any, list[Any]]] = {}
        while any(consumer.position(tp) < end[tp] for tp in parts):
            for tp, messages in consumer.poll(timeout_ms=500).items():
                for m in messages:
                    try:
                        route, row = process(
                            tp.topic.removeprefix(stack.settings.topic_prefix), m.value
                        )
                    except InvalidMessage:
                        continue
                    rows.setdefault(route.table, (route, []))[1].append(row)
    finally:
        consumer.close()
    for table, (route, batch) in rows.items():
        fresh.insert(table, batch, route.columns)

    live = wh(stack)
    year = parse_period(str(local(utcnow()).year))
    for scope, sid in (
        ("member", county["m1"]["id"]),
        ("community", county["community"]["id"]),
        ("unit", county["unit"]["id"]),
        ("unit", county["other_unit"]["id"]),
    ):
        assert engagement.feedback_summary(fresh, scope, sid, year) == engagement.feedback_summary(
            live, scope, sid, year
        ), (scope, sid)
    y = int(year.label)
    assert engagement.wishes_fulfilled(fresh, y) == engagement.wishes_fulfilled(live, y) != {}
    scope = {"community_id = {p}": county["community"]["id"]}
    assert engagement.list_wishes(fresh, scope, 100, 0) == engagement.list_wishes(
        live, scope, 100, 0
    )
    assert engagement.list_resources(fresh, {}, 100, 0) == engagement.list_resources(
        live, {}, 100, 0
    )
    camps, n = engagement.list_campaigns(live, None, 100, 0)
    assert n == 2
    for c in camps:
        replayed = engagement.campaign(fresh, c.id)
        assert replayed == c
        assert engagement.campaign_summary(fresh, replayed) == engagement.campaign_summary(live, c)
    fresh.close()
