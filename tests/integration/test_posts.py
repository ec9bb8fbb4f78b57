"""Standing posts (岗位认领) through the real pipeline: the organizer creates a post on a level-5
grid, members of the community claim it, the organizer decides, the holder leaves, the organizer
ends a holding; every step is an event kept in ClickHouse, and a post holder's service counts as
any member's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.demo.county import generate, slice_county
from services.demo.loader import load_county, load_posts
from services.tokens import issue_bearer, sign_station
from tests.support.demo import demo_client
from tests.support.stack import Stack, run_async

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


@pytest.fixture(scope="module")
def world(stack: Stack) -> dict[str, str]:
    unit = stack.create("/v1/units", {"name": "县交通局"})["id"]
    c = stack.create("/v1/communities", {"name": "东铺社区"})["id"]
    other = stack.create("/v1/communities", {"name": "交通社区"})["id"]
    g4 = stack.create("/v1/grids", {"community_id": c, "name": "东铺第一网格", "level": 4})["id"]
    g5 = stack.create(
        "/v1/grids", {"community_id": c, "name": "3号楼2单元", "level": 5, "parent_id": g4}
    )["id"]
    station = stack.create(
        "/v1/stations", {"community_id": c, "name": "东铺服务站", "kind": "service_station"}
    )["id"]
    ids = {"unit": unit, "community": c, "other": other, "g4": g4, "g5": g5, "station": station}
    for key, name, cid in (
        ("a", "陈认领", c),
        ("b", "林也想", c),
        ("far", "黄外区", other),
    ):
        body = {"name": name, "unit_id": unit, "community_id": cid}
        if cid == c:
            body["grid_id"] = g5
        ids[key] = stack.create("/v1/members", body)["id"]
    return ids


def _get(stack: Stack, post_id: str, headers: dict[str, str]) -> Any:
    return stack.client.get(f"/v1/posts/{post_id}", headers=headers)


def _until(stack: Stack, post_id: str, pred: Any) -> dict[str, Any]:
    def ok() -> dict[str, Any] | None:
        r = _get(stack, post_id, stack.admin)
        if r.status_code != 200:
            return None
        body: dict[str, Any] = r.json()
        return body if pred(body) else None

    got = stack.wait_for(ok, timeout=60)
    assert got, _get(stack, post_id, stack.admin).text
    return dict(got)


def _create(stack: Stack, world: dict[str, str], title: str) -> str:
    org = stack.token("organizer", world["community"])
    r = stack.client.post(
        "/v1/posts",
        json={
            "community_id": world["community"],
            "grid_id": world["g5"],
            "kind": "unit_post",
            "title": title,
            "description": "联系本单元住户",
        },
        headers=org,
    )
    assert r.status_code == 202, r.text
    post_id = str(r.json()["post_id"])
    _until(stack, post_id, lambda p: p["status"] == "open")
    return post_id


def test_claim_decide_leave_and_end(stack: Stack, world: dict[str, str]) -> None:
    pid = _create(stack, world, "3号楼2单元党员责任岗")
    org = stack.token("organizer", world["community"])
    a, b = stack.token("member", world["a"]), stack.token("member", world["b"])
    # Both members of the community see it open on their list; a member elsewhere does not.
    listed = stack.client.get("/v1/posts", headers=a).json()["items"]
    assert [(p["post_id"], p["kind_label"], p["status_label"]) for p in listed] == [
        (pid, "单元党员责任岗", "待认领")
    ]
    far = stack.token("member", world["far"])
    assert stack.client.get("/v1/posts", headers=far).json()["items"] == []
    assert _get(stack, pid, far).status_code == 404
    assert stack.client.post(f"/v1/posts/{pid}/claim", headers=far).status_code == 404

    assert stack.client.post(f"/v1/posts/{pid}/claim", headers=a).status_code == 202
    assert stack.client.post(f"/v1/posts/{pid}/claim", headers=b).status_code == 202
    p = _until(stack, pid, lambda p: len(p["pending_claims"]) == 2)
    assert p["pending_claims"] == [world["a"], world["b"]]
    # A claimant sees their own claim only; the organizer sees both.
    assert _get(stack, pid, b).json()["pending_claims"] == [world["b"]]
    again = stack.client.post(f"/v1/posts/{pid}/claim", headers=a)
    assert again.status_code == 409 and again.json()["error"]["code"] == "post_claim_pending"

    r = stack.client.post(
        f"/v1/posts/{pid}/decision",
        json={"member_id": world["a"], "decision": "approve"},
        headers=org,
    )
    assert r.status_code == 202, r.text
    p = _until(stack, pid, lambda p: p["status"] == "held")
    assert (p["holder_id"], p["pending_claims"]) == (world["a"], [])
    # b's claim was answered with the approval: declined, named in the history.
    steps = [(h["action"], h["member_id"]) for h in p["history"]]
    assert steps == [
        ("create", ""),
        ("claim", world["a"]),
        ("claim", world["b"]),
        ("approve", world["a"]),
        ("decline", world["b"]),
    ]
    assert p["history"][3]["actor"] == f"organizer:{world['community']}"
    taken = stack.client.post(f"/v1/posts/{pid}/claim", headers=b)
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "post_taken"
    # b (not the holder) cannot leave it; a can: held mine, then open again.
    assert stack.client.post(f"/v1/posts/{pid}/leave", json={}, headers=b).status_code == 409
    mine = stack.client.get("/v1/posts", params={"mine": "true"}, headers=a).json()["items"]
    assert [m["post_id"] for m in mine] == [pid]
    r = stack.client.post(f"/v1/posts/{pid}/leave", json={"reason": "工作调动"}, headers=a)
    assert r.status_code == 202, r.text
    p = _until(stack, pid, lambda p: p["status"] == "open")
    assert p["history"][-1] == {**p["history"][-1], "action": "leave", "member_id": world["a"]}

    # b claims again, is approved, and the organizer ends the holding.
    assert stack.client.post(f"/v1/posts/{pid}/claim", headers=b).status_code == 202
    _until(stack, pid, lambda p: p["pending_claims"] == [world["b"]])
    stack.client.post(
        f"/v1/posts/{pid}/decision",
        json={"member_id": world["b"], "decision": "approve"},
        headers=org,
    )
    _until(stack, pid, lambda p: p["holder_id"] == world["b"])
    assert stack.client.post(f"/v1/posts/{pid}/leave", json={}, headers=org).status_code == 202
    p = _until(stack, pid, lambda p: p["status"] == "open")
    assert (p["history"][-1]["action"], p["history"][-1]["member_id"]) == ("end", world["b"])
    # Every step is an event row.
    wh = stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]
    n = wh.query("SELECT count() FROM post_events FINAL WHERE post_id = %(p)s", {"p": pid})
    assert n[0][0] == 8


def test_a_declined_claim_and_lists_by_grid_and_status(stack: Stack, world: dict[str, str]) -> None:
    pid = _create(stack, world, "3号楼楼栋党小组")
    org = stack.token("organizer", world["community"])
    b = stack.token("member", world["b"])
    stack.client.post(f"/v1/posts/{pid}/claim", headers=b)
    _until(stack, pid, lambda p: p["pending_claims"])
    r = stack.client.post(
        f"/v1/posts/{pid}/decision",
        json={"member_id": world["b"], "decision": "decline", "reason": "已有楼栋长"},
        headers=org,
    )
    assert r.status_code == 202
    p = _until(stack, pid, lambda p: not p["pending_claims"])
    assert p["status"] == "open" and p["history"][-1]["reason"] == "已有楼栋长"
    got = stack.client.get(
        "/v1/posts",
        params={"community_id": world["community"], "grid_id": world["g5"], "status": "open"},
        headers=org,
    ).json()["items"]
    assert pid in [i["post_id"] for i in got]
    other_grid = stack.client.get("/v1/posts", params={"grid_id": world["g4"]}, headers=org).json()
    assert other_grid["items"] == []


def test_bad_input_is_refused(stack: Stack, world: dict[str, str]) -> None:
    org = stack.token("organizer", world["community"])
    base = {"community_id": world["community"], "grid_id": world["g5"], "kind": "unit_post"}
    for body, status, code in (
        ({**base, "grid_id": world["g4"], "title": "x"}, 422, "not_level5_grid"),
        ({**base, "grid_id": "grid_nope", "title": "x"}, 422, "unknown_grid"),
        ({**base, "kind": "boss", "title": "x"}, 422, None),
        ({**base, "title": ""}, 422, None),
        ({**base, "title": "x", "extra": 1}, 422, None),
        ({**base, "community_id": world["other"], "title": "x"}, 403, "forbidden"),
    ):
        r = stack.client.post("/v1/posts", json=body, headers=org)
        assert r.status_code == status, (body, r.text)
        if code:
            assert r.json()["error"]["code"] == code
    pid = _create(stack, world, "2号楼1单元党员责任岗")
    for body in ({"member_id": world["a"], "decision": "approve"}, {"decision": "approve"}):
        r = stack.client.post(f"/v1/posts/{pid}/decision", json=body, headers=org)
        assert r.status_code == 422, r.text
    r = stack.client.post(f"/v1/posts/{pid}/leave", json={}, headers=org)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_post_holder"
    hr = stack.token("hr", world["unit"])
    assert stack.client.get("/v1/posts", headers=hr).status_code == 403
    assert stack.client.post(f"/v1/posts/{pid}/claim", headers=org).status_code == 403
    r = stack.client.get("/v1/posts", params={"community_id": world["other"]}, headers=org)
    assert r.status_code == 403


def test_a_holder_s_service_counts_as_usual(stack: Stack, world: dict[str, str]) -> None:
    # Holding a post changes nothing in counting: the holder's session is a service of their
    # week like anyone's, no more and no less.
    pid = _create(stack, world, "1号楼党员责任岗")
    org = stack.token("organizer", world["community"])
    a = stack.token("member", world["a"])
    stack.client.post(f"/v1/posts/{pid}/claim", headers=a)
    _until(stack, pid, lambda p: p["pending_claims"])
    stack.client.post(
        f"/v1/posts/{pid}/decision",
        json={"member_id": world["a"], "decision": "approve"},
        headers=org,
    )
    _until(stack, pid, lambda p: p["holder_id"] == world["a"])
    now = datetime.now(UTC)
    for action, at in (("in", now - timedelta(hours=2)), ("out", now - timedelta(hours=1))):
        r = stack.client.post(
            "/v1/checkins",
            json={
                "station_token": sign_station(stack.settings, world["station"]),
                "action": action,
                "client_event_id": str(uuid.uuid4()),
                "scanned_at": at.isoformat(),
            },
            headers=a,
        )
        assert r.status_code == 202, r.text

    def week() -> dict[str, Any] | None:
        y, w, _ = (now - timedelta(hours=2)).astimezone(ZoneInfo("Asia/Shanghai")).isocalendar()
        r = stack.client.get(
            f"/v1/members/{world['a']}/weekly", params={"week": f"{y}-W{w:02d}"}, headers=org
        )
        body: dict[str, Any] = r.json()
        return body if body["sessions"] else None

    got = stack.wait_for(week, timeout=60)
    assert got and (got["sessions"], got["hours"], got["target_met"]) == (1, 1.0, True)


def test_the_demo_county_s_posts_load_claimed_and_a_reload_creates_nothing(stack: Stack) -> None:
    county = slice_county(generate(), ("c03",), 80)
    assert county.posts and any(p.holder_key for p in county.posts)

    async def load() -> tuple[Any, dict[str, int]]:
        async with demo_client(stack) as c:
            loaded = await load_county(c, county)
            sign = lambda m: issue_bearer(stack.settings, "member", m)  # noqa: E731
            return loaded, await load_posts(c, county, loaded, sign)

    loaded, first = run_async(load())
    held = [p for p in county.posts if p.holder_key]
    assert first == {"posts": len(county.posts), "claimed": len(held), "approved": len(held)}
    c03 = loaded.communities["c03"]

    def all_held() -> list[Any] | None:
        items = stack.client.get(
            "/v1/posts", params={"community_id": c03}, headers=stack.admin
        ).json()["items"]
        return items if sum(1 for i in items if i["holder_id"]) == len(held) else None

    items = stack.wait_for(all_held, timeout=90)
    assert items, "the approvals did not land"
    by_title = {i["title"]: i for i in items}
    for p in county.posts:
        got = by_title[p.title]
        assert got["grid_id"] == loaded.grids[p.grid_key] and got["kind"] == p.kind
        assert got["holder_id"] == (loaded.members[p.holder_key] if p.holder_key else None)
    _, second = run_async(load())
    assert second == {"posts": 0, "claimed": 0, "approved": 0}
