"""Lists that name members without their phones are in the access log too (个人信息保护法: a
member's name with where they serve is personal information): a slot's roster, the no-shows, a
team leader's team, the review queue, the community's reports and the unit's assessment (its
page and its files). One `member_list` entry per answer, naming every member on it but the
caller, and the route; the admin reads it through GET /v1/access-log."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.counting import current_year
from services.events import ActivitySpec
from services.publisher import PublishUnavailable
from tests.support.access_log import logged
from tests.support.slots import publish_past_slot
from tests.support.stack import Stack, api_scan

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

STACK_ENV = {"ACTIVITY_WAIT_S": "8"}


@pytest.fixture(scope="module")
def world(stack: Stack) -> dict[str, Any]:
    unit = stack.create("/v1/units", {"name": f"名单局{uuid.uuid4().hex[:4]}"})
    c1 = stack.create("/v1/communities", {"name": f"名单社区{uuid.uuid4().hex[:4]}"})
    c2 = stack.create("/v1/communities", {"name": f"名单二社区{uuid.uuid4().hex[:4]}"})
    s1 = stack.create(
        "/v1/stations",
        {"community_id": c1["id"], "name": "名单服务站", "kind": "service_station"},
    )
    out: dict[str, Any] = {"unit": unit["id"], "c1": c1["id"], "c2": c2["id"], "s1": s1["id"]}
    for key, name, c in (
        ("a", "孔明亮", c1),
        ("b", "孟秋实", c1),
        ("c", "曹雪松", c1),
        ("d", "苏东岭", c2),
    ):
        out[key] = stack.create(
            "/v1/members",
            {
                "name": name,
                "unit_id": unit["id"],
                "community_id": c["id"],
                "reported_on": "2026-03-01",
            },
        )
    out["org1"] = stack.token("organizer", c1["id"])
    out["hr"] = stack.token("hr", unit["id"])
    return out


def entry_of(
    stack: Stack,
    route: str,
    actor_id: str,
    where: Callable[[dict[str, Any]], bool] = lambda _: True,
) -> dict[str, Any]:
    """The newest `member_list` entry of this route and reader (that `where` accepts), once the
    sink has loaded it."""

    def found() -> dict[str, Any] | None:
        items = logged(stack, kind="member_list", actor_id=actor_id)
        hits = [i for i in items if i["route"] == route and where(i)]
        return hits[0] if hits else None

    got = stack.wait_for(found, timeout=60)
    assert got, f"no member_list entry of {route} by {actor_id}: {logged(stack, actor_id=actor_id)}"
    return dict(got)


def names(world: dict[str, Any], *keys: str) -> set[str]:
    return {world[k]["name"] for k in keys}


def ids(world: dict[str, Any], *keys: str) -> set[str]:
    return {world[k]["id"] for k in keys}


def _past_slot(stack: Stack, world: dict[str, Any], members: tuple[str, ...]) -> str:
    """A slot that ended an hour ago, created a day before and signed up for by `members`,
    published to the log as it was then (the API accepts only slots to come)."""
    start = datetime.now(UTC) - timedelta(hours=3)
    spec = ActivitySpec(
        community_id=world["c1"],
        title="名单测试服务",
        station_id=world["s1"],
        starts_at=start,
        ends_at=start + timedelta(hours=2),
        capacity=5,
        signup_deadline=start,
        cancel_deadline=start,
    )
    return publish_past_slot(stack, spec, "act_names_", [world[k] for k in members])


def test_a_slot_roster_and_the_no_shows_are_logged(stack: Stack, world: dict[str, Any]) -> None:
    aid = _past_slot(stack, world, ("a", "b"))

    def roster() -> dict[str, Any] | None:
        r = stack.client.get(f"/v1/activities/{aid}/roster", headers=world["org1"])
        body: dict[str, Any] = r.json()
        return body if r.status_code == 200 and len(body["items"]) == 2 else None

    got = stack.wait_for(roster, timeout=90)
    assert got, "the slot's sign-ups did not land"
    assert {i["member_id"] for i in got["items"]} == ids(world, "a", "b")
    route = "GET /v1/activities/{activity_id}/roster"
    e = entry_of(stack, route, world["c1"])
    assert set(e["member_ids"]) == ids(world, "a", "b") and len(e["member_ids"]) == 2
    assert set(e["member_names"]) == names(world, "a", "b")
    assert e["actor_role"] == "organizer" and e["detail"] == f"slot roster {aid}"
    # HR reads its unit's rows of the same roster: its own entry.
    r = stack.client.get(f"/v1/activities/{aid}/roster", headers=world["hr"])
    assert r.status_code == 200 and len(r.json()["items"]) == 2, r.text
    e = entry_of(stack, route, world["unit"])
    assert e["actor_role"] == "hr" and set(e["member_ids"]) == ids(world, "a", "b")

    r = stack.client.get(
        "/v1/activities/no-shows", params={"community_id": world["c1"]}, headers=world["org1"]
    )
    assert r.status_code == 200, r.text
    listed = {i["member_id"] for i in r.json()["items"]}
    assert listed == ids(world, "a", "b")
    e = entry_of(stack, "GET /v1/activities/no-shows", world["c1"])
    assert set(e["member_ids"]) == listed and set(e["member_names"]) == names(world, "a", "b")
    assert e["detail"] == "no-shows"


def test_a_team_leader_reading_the_team_names_the_team_not_themself(
    stack: Stack, world: dict[str, Any]
) -> None:
    a = world["a"]["id"]
    for k in ("b", "c"):
        r = stack.client.patch(
            f"/v1/members/{world[k]['id']}", json={"team_leader_id": a}, headers=world["org1"]
        )
        assert r.status_code == 200, r.text

    def team() -> set[str] | None:
        r = stack.client.get("/v1/me/team", headers=stack.token("member", a))
        assert r.status_code == 200, r.text
        got = {i["member_id"] for i in r.json()["items"]}
        return got if got == ids(world, "b", "c") else None

    assert stack.wait_for(team, timeout=60), "the team did not reach the leader's list"
    e = entry_of(stack, "GET /v1/me/team", a, lambda i: len(i["member_ids"]) == 2)
    assert e["actor_role"] == "member" and e["detail"] == "team"
    assert set(e["member_ids"]) == ids(world, "b", "c") and a not in e["member_ids"]
    assert set(e["member_names"]) == names(world, "b", "c")


def test_the_review_queue_is_logged(stack: Stack, world: dict[str, Any]) -> None:
    # A check-in and a check-out a moment apart: below the weekly minimum, so it waits for review.
    c = world["c"]["id"]
    for action in ("in", "out"):
        api_scan(stack, c, world["s1"], action, datetime.now(UTC))

    url = f"/v1/communities/{world['c1']}/review-queue"

    def queued() -> list[str] | None:
        r = stack.client.get(url, headers=world["org1"])
        assert r.status_code == 200, r.text
        found = [i["member_id"] for i in r.json()["items"]]
        return found if c in found else None

    listed = stack.wait_for(queued, timeout=120)
    assert listed, "the short session did not reach the review queue"
    e = entry_of(
        stack,
        "GET /v1/communities/{community_id}/review-queue",
        world["c1"],
        lambda i: c in i["member_ids"],
    )
    assert set(e["member_ids"]) == set(listed) and world["c"]["name"] in e["member_names"]
    assert e["detail"] == "review queue"


def test_the_communitys_reports_are_logged(stack: Stack, world: dict[str, Any]) -> None:
    r = stack.client.get(f"/v1/communities/{world['c1']}/reports", headers=world["org1"])
    assert r.status_code == 200, r.text
    listed = {i["member_id"] for i in r.json()["items"]}
    assert listed == ids(world, "a", "b", "c")
    e = entry_of(stack, "GET /v1/communities/{community_id}/reports", world["c1"])
    assert set(e["member_ids"]) == listed and set(e["member_names"]) == names(world, "a", "b", "c")
    assert e["detail"] == "reports"


def test_the_units_assessment_and_its_files_are_logged(stack: Stack, world: dict[str, Any]) -> None:
    url, unit, y = f"/v1/units/{world['unit']}/assessments", world["unit"], current_year()
    everyone = ids(world, "a", "b", "c", "d")
    r = stack.client.get(url, headers=world["hr"])
    assert r.status_code == 200, r.text
    assert {i["member_id"] for i in r.json()["items"]} == everyone
    route = "GET /v1/units/{unit_id}/assessments"
    e = entry_of(stack, route, unit, lambda i: i["detail"] == f"assessment {y}")
    assert set(e["member_ids"]) == everyone and set(e["member_names"]) == names(
        world, "a", "b", "c", "d"
    )
    # A page names only the members on it.
    r = stack.client.get(url, params={"limit": 1, "offset": 1}, headers=world["hr"])
    [second] = r.json()["items"]
    e = entry_of(stack, route, unit, lambda i: len(i["member_ids"]) == 1)
    assert e["member_ids"] == [second["member_id"]]
    # The file holds every member, named before it is streamed.
    r = stack.client.get(url, params={"format": "csv"}, headers=world["hr"])
    assert r.status_code == 200 and world["d"]["name"] in r.text, r.text
    e = entry_of(stack, route, unit, lambda i: i["detail"] == f"assessment {y} csv")
    assert set(e["member_ids"]) == everyone


def test_a_names_list_that_cannot_be_logged_is_refused(
    stack: Stack, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = stack.client.app.state.ctx  # type: ignore[attr-defined]

    def down(*_: Any, **__: Any) -> None:
        raise PublishUnavailable("broker away")

    monkeypatch.setattr(ctx.publisher, "send_sync", down)
    for url, h in (
        (f"/v1/communities/{world['c1']}/reports", world["org1"]),
        (f"/v1/units/{world['unit']}/assessments", world["hr"]),
        (f"/v1/units/{world['unit']}/assessments?format=csv", world["hr"]),
    ):
        r = stack.client.get(url, headers=h)
        assert r.status_code == 503, (url, r.text)
        assert world["a"]["name"] not in r.text, url
