"""Assisted (代签到) and team check-in through the public API on the real broker, a faust
worker and chDB: the organizer and a station's tablet find a member by name or phone (masked)
and check them in and out; a team leader checks in the team; each session is flagged and names
who did it; the scans keep who made them; refusals answer JSON errors."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.sessions import assisted_by
from services.tokens import sign_station
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]
STACK_ENV = {"TEAM_CHECKIN_MAX": "3", "WEEK_MIN_CREDITED_MIN": "0"}


@pytest.fixture(scope="module")
def world(stack: Stack) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:4]
    u = stack.create("/v1/units", {"name": f"代签局-{tag}"})
    c1 = stack.create("/v1/communities", {"name": f"代签社区-{tag}"})
    c2 = stack.create("/v1/communities", {"name": f"邻社区-{tag}"})
    phone_base = 13900000000 + int(uuid.uuid4().int % 10_000_000) * 10

    def member(name: str, community: str, n: int) -> dict[str, Any]:
        return stack.create(
            "/v1/members",
            {
                "name": name,
                "unit_id": u["id"],
                "community_id": community,
                "phone": str(phone_base + n),
            },
        )

    out: dict[str, Any] = {
        "c1": c1["id"],
        "c2": c2["id"],
        "elder": member(f"王秀英{tag}", c1["id"], 1),
        "leader": member(f"李队长{tag}", c1["id"], 2),
        "t1": member(f"队员甲{tag}", c1["id"], 3),
        "t2": member(f"队员乙{tag}", c1["id"], 4),
        "t3": member(f"队员丙{tag}", c1["id"], 5),
        "t4": member(f"队员丁{tag}", c1["id"], 6),
        "loner": member(f"非队员{tag}", c1["id"], 7),
        "away": member(f"邻社区党员{tag}", c2["id"], 8),
    }
    out["station"] = stack.create(
        "/v1/stations", {"community_id": c1["id"], "name": "代签服务站", "kind": "service_station"}
    )
    out["other_station"] = stack.create(
        "/v1/stations", {"community_id": c2["id"], "name": "邻站", "kind": "service_station"}
    )
    out["org1"] = stack.token("organizer", c1["id"])
    out["org2"] = stack.token("organizer", c2["id"])
    return out


def error(r: Any) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


def sessions(stack: Stack, member_id: str) -> list[dict[str, Any]]:
    r = stack.client.get(f"/v1/members/{member_id}/sessions", headers=stack.admin)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def wait_closed(stack: Stack, member_id: str) -> dict[str, Any]:
    def closed() -> dict[str, Any] | None:
        return next((s for s in sessions(stack, member_id) if s["status"] == "closed"), None)

    got = stack.wait_for(closed, timeout=180)  # a shared machine: the worker may lag
    assert got, sessions(stack, member_id)
    return dict(got)


def scans_of(stack: Stack, member_id: str) -> list[dict[str, Any]]:
    wh = stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]
    return list(
        wh.query_dicts(
            "SELECT action, assist, assisted_by, activity_id, device_id FROM checkins FINAL "
            "WHERE member_id = %(m)s ORDER BY scanned_at",
            {"m": member_id},
        )
    )


def test_the_organizer_finds_a_member_by_name_or_phone_with_the_phone_masked(
    stack: Stack, world: dict[str, Any]
) -> None:
    c1, elder = world["c1"], world["elder"]
    url = f"/v1/communities/{c1}/assisted/members"
    r = stack.client.get(url, params={"q": elder["name"][:3]}, headers=world["org1"])
    assert r.status_code == 200, r.text
    found = {i["member_id"]: i for i in r.json()["items"]}
    assert elder["id"] in found
    phone = elder["phone"]
    assert found[elder["id"]]["phone"] == f"{phone[:3]}****{phone[-4:]}"
    r = stack.client.get(url, params={"q": phone[-4:]}, headers=world["org1"])
    assert [i["member_id"] for i in r.json()["items"]] == [elder["id"]]
    # Another community's member is never found here; another organizer, a member, HR: 404.
    r = stack.client.get(url, params={"q": world["away"]["name"]}, headers=world["org1"])
    assert r.json()["items"] == []
    for who in (world["org2"], stack.token("member", elder["id"])):
        assert error(stack.client.get(url, params={"q": "王"}, headers=who)) == (
            404,
            "community_not_found",
        )
    # Bad input: no query, or one too long.
    assert stack.client.get(url, headers=world["org1"]).status_code == 422
    assert stack.client.get(url, params={"q": "x" * 41}, headers=world["org1"]).status_code == 422


def test_an_assisted_check_in_and_out_makes_a_session_flagged_with_who_did_it(
    stack: Stack, world: dict[str, Any]
) -> None:
    c1, elder, station = world["c1"], world["elder"], world["station"]
    url = f"/v1/communities/{c1}/assisted/checkins"
    for action in ("in", "out"):
        body = {
            "member_id": elder["id"],
            "station_id": station["id"],
            "action": action,
            "client_event_id": str(uuid.uuid4()),
        }
        r = stack.client.post(url, json=body, headers=world["org1"])
        assert r.status_code == 202, r.text
        assert r.json()["assisted_by"] == f"organizer:{c1}"
        # A re-send is the same scan.
        again = stack.client.post(url, json=body, headers=world["org1"])
        assert again.json()["event_ids"] == r.json()["event_ids"]
    s = wait_closed(stack, elder["id"])
    assert "assisted" in s["flags"] and assisted_by(s["flags"]) == [f"organizer:{c1}"]
    # It counts as usual and waits for no review.
    queue = stack.client.get(f"/v1/communities/{c1}/review-queue", headers=world["org1"])
    assert s["id"] not in {i["id"] for i in queue.json()["items"]}
    kept = stack.wait_for(lambda: len(scans_of(stack, elder["id"])) == 2 or None, timeout=60)
    assert kept
    assert {
        (x["assist"], x["assisted_by"], x["device_id"]) for x in scans_of(stack, elder["id"])
    } == {("assisted", f"organizer:{c1}", None)}


def test_an_organizer_assists_only_in_their_own_community(
    stack: Stack, world: dict[str, Any]
) -> None:
    c1 = world["c1"]
    url = f"/v1/communities/{c1}/assisted/checkins"

    def post(member: str, station: str, headers: dict[str, str], path: str = url) -> Any:
        body = {
            "member_id": member,
            "station_id": station,
            "action": "in",
            "client_event_id": str(uuid.uuid4()),
        }
        return stack.client.post(path, json=body, headers=headers)

    # Another community's member or station: not visible to this organizer.
    assert error(post(world["away"]["id"], world["station"]["id"], world["org1"])) == (
        404,
        "member_not_found",
    )
    assert error(post(world["elder"]["id"], world["other_station"]["id"], world["org1"]))[0] == 404
    # The other organizer, through this community's path: 404; a member: 403 (role gate).
    assert error(post(world["elder"]["id"], world["station"]["id"], world["org2"]))[0] == 404
    member = stack.token("member", world["elder"]["id"])
    assert error(post(world["elder"]["id"], world["station"]["id"], member)) == (403, "forbidden")
    # The admin, naming a member and a station of another community than the path's: 422.
    assert error(post(world["away"]["id"], world["other_station"]["id"], stack.admin)) == (
        422,
        "not_in_community",
    )
    # Bad input.
    bad = {"member_id": world["elder"]["id"], "station_id": world["station"]["id"]}
    for body in (bad, {**bad, "action": "sideways", "client_event_id": str(uuid.uuid4())}):
        r = stack.client.post(url, json=body, headers=world["org1"])
        assert r.status_code == 422 and r.json()["error"]["code"]
    assert error(post("mem_nobody", world["station"]["id"], world["org1"])) == (
        404,
        "member_not_found",
    )


def test_a_station_tablet_checks_in_a_member_of_its_community(
    stack: Stack, world: dict[str, Any]
) -> None:
    station, member = world["station"], world["loner"]
    r = stack.client.post(f"/v1/stations/{station['id']}/screen-keys", headers=world["org1"])
    assert r.status_code == 201, r.text
    key = {"X-Screen-Key": r.json()["key"]}
    base = f"/v1/stations/{station['id']}/kiosk"
    r = stack.client.get(f"{base}/members", params={"q": member["name"]}, headers=key)
    assert r.status_code == 200, r.text
    assert [i["member_id"] for i in r.json()["items"]] == [member["id"]]
    assert "****" in r.json()["items"][0]["phone"]
    for action in ("in", "out"):
        body = {"member_id": member["id"], "action": action, "client_event_id": str(uuid.uuid4())}
        r = stack.client.post(f"{base}/checkins", json=body, headers=key)
        assert r.status_code == 202, r.text
    s = wait_closed(stack, member["id"])
    assert "assisted" in s["flags"]
    assert assisted_by(s["flags"]) == [f"station:{station['id']}"]
    # Refused: no key, a key of another station, another community's member.
    body = {"member_id": member["id"], "action": "in", "client_event_id": str(uuid.uuid4())}
    assert error(stack.client.post(f"{base}/checkins", json=body)) == (401, "unauthorized")
    assert error(stack.client.get(f"{base}/members", params={"q": "x"})) == (401, "unauthorized")
    other = f"/v1/stations/{world['other_station']['id']}/kiosk/checkins"
    assert error(stack.client.post(other, json=body, headers=key)) == (404, "station_not_found")
    away = {**body, "member_id": world["away"]["id"]}
    assert error(stack.client.post(f"{base}/checkins", json=away, headers=key)) == (
        422,
        "unknown_member",
    )


def test_a_station_tablet_s_member_search_is_rate_limited_per_screen_key(
    stack: Stack, world: dict[str, Any]
) -> None:
    """A leaked screen key must not page through the community's members: past the burst, 429
    `rate_limited` with Retry-After; another key of the same station has its own count; a
    forged key is refused (401) without using up anyone's searches."""
    from services.ratelimit import RateLimiter

    ctx = stack.client.app.state.ctx  # type: ignore[attr-defined]
    saved = ctx.limits.kiosk_search
    ctx.limits.kiosk_search = RateLimiter(3, 1 / 60)
    try:
        station = world["station"]
        base = f"/v1/stations/{station['id']}/kiosk/members"

        def new_key() -> dict[str, str]:
            r = stack.client.post(
                f"/v1/stations/{station['id']}/screen-keys", headers=world["org1"]
            )
            assert r.status_code == 201, r.text
            return {"X-Screen-Key": r.json()["key"]}

        first, second = new_key(), new_key()
        forged = {"X-Screen-Key": first["X-Screen-Key"][:-4] + "AAAA"}
        for _ in range(5):
            assert error(stack.client.get(base, params={"q": "王"}, headers=forged)) == (
                401,
                "unauthorized",
            )
        for _ in range(3):
            r = stack.client.get(base, params={"q": "王"}, headers=first)
            assert r.status_code == 200, r.text
        r = stack.client.get(base, params={"q": "王"}, headers=first)
        assert error(r) == (429, "rate_limited")
        assert int(r.headers["Retry-After"]) >= 1
        # The station's other screen searches on.
        assert stack.client.get(base, params={"q": "王"}, headers=second).status_code == 200
        # Check-ins are limited apart (per station): the limited screen still checks in.
        for action in ("in", "out"):
            body = {
                "member_id": world["loner"]["id"],
                "action": action,
                "client_event_id": str(uuid.uuid4()),
            }
            r = stack.client.post(
                f"/v1/stations/{station['id']}/kiosk/checkins", json=body, headers=first
            )
            assert r.status_code == 202, r.text
    finally:
        ctx.limits.kiosk_search = saved


def test_a_team_leader_checks_in_the_team_for_an_activity(
    stack: Stack, world: dict[str, Any]
) -> None:
    leader = world["leader"]
    team = [world[k] for k in ("t1", "t2", "t3", "t4")]
    for m in team:
        r = stack.client.patch(
            f"/v1/members/{m['id']}", json={"team_leader_id": leader["id"]}, headers=world["org1"]
        )
        assert r.status_code == 200, r.text
    # A leader of another community, or oneself: refused by the registry.
    r = stack.client.patch(
        f"/v1/members/{world['loner']['id']}",
        json={"team_leader_id": world["away"]["id"]},
        headers=stack.admin,
    )
    assert error(r) == (422, "invalid_member")
    r = stack.client.patch(
        f"/v1/members/{leader['id']}", json={"team_leader_id": leader["id"]}, headers=stack.admin
    )
    assert error(r) == (422, "invalid_member")

    h = stack.token("member", leader["id"])
    r = stack.client.get("/v1/me/team", headers=h)
    assert r.status_code == 200, r.text
    assert {i["member_id"] for i in r.json()["items"]} == {m["id"] for m in team}
    assert r.json()["max_per_checkin"] == 3

    token = sign_station(stack.settings, world["station"]["id"])
    chosen = [m["id"] for m in team[:3]]
    for action in ("in", "out"):
        body = {
            "station_token": token,
            "action": action,
            "member_ids": chosen,
            "client_event_id": str(uuid.uuid4()),
            "activity_id": "act_test_1",
        }
        r = stack.client.post("/v1/team-checkins", json=body, headers=h)
        assert r.status_code == 202, r.text
        assert len(r.json()["event_ids"]) == 3
    for mid in chosen:
        s = wait_closed(stack, mid)
        assert "team" in s["flags"] and assisted_by(s["flags"]) == [f"member:{leader['id']}"]
    got = stack.wait_for(lambda: scans_of(stack, chosen[0]) or None, timeout=60)
    assert {(x["assist"], x["activity_id"]) for x in got} == {("team", "act_test_1")}

    def post(member_ids: list[str], headers: dict[str, str] = h, **kw: Any) -> Any:
        body = {
            "station_token": token,
            "action": "in",
            "member_ids": member_ids,
            "client_event_id": str(uuid.uuid4()),
            **kw,
        }
        return stack.client.post("/v1/team-checkins", json=body, headers=headers)

    # Nothing half-written: one member outside the team refuses the whole request.
    assert error(post([team[3]["id"], world["loner"]["id"]])) == (422, "not_in_team")
    assert error(post(["mem_nobody"])) == (422, "not_in_team")
    assert error(post([m["id"] for m in team])) == (422, "team_too_large")
    assert error(post([team[0]["id"], team[0]["id"]])) == (422, "invalid_request")
    assert error(post([team[0]["id"]], station_token="v1.st_x.bad")) == (
        400,
        "invalid_station_token",
    )
    assert post([]).status_code == 422
    # Not a member: the role gate; a member who leads nobody: not in their team.
    assert error(post([team[0]["id"]], headers=world["org1"])) == (403, "forbidden")
    loner = stack.token("member", world["loner"]["id"])
    assert error(post([team[0]["id"]], headers=loner)) == (422, "not_in_team")
    assert sessions(stack, team[3]["id"]) == []
