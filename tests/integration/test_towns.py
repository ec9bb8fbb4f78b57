"""Towns in the registry (issue 15): created, renamed and listed like the other kinds, with
their history; a community placed in a town (and moved) with its history; the county office's
and a town office's tokens, issued by the admin."""

from __future__ import annotations

import pytest

from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def test_a_town_is_kept_with_its_history(stack: Stack) -> None:
    t = stack.create("/v1/towns", {"name": "巩昌镇"})
    assert t["id"].startswith("town_") and t["name"] == "巩昌镇"
    r = stack.client.patch(f"/v1/towns/{t['id']}", json={"name": "巩昌街道"}, headers=stack.admin)
    assert r.status_code == 200 and r.json()["name"] == "巩昌街道"
    history = stack.client.get(f"/v1/towns/{t['id']}/history", headers=stack.admin).json()
    assert [i["operation"] for i in history["items"]] == ["create", "update"]
    assert history["items"][1]["changes"] == [
        {"field": "name", "before": "巩昌镇", "after": "巩昌街道"}
    ]
    listed = stack.client.get("/v1/towns", params={"q": "巩昌"}, headers=stack.admin).json()
    assert [i["id"] for i in listed["items"]] == [t["id"]]
    # Anyone signed in reads the directory; only the admin changes it.
    unit = stack.create("/v1/units", {"name": "县教育局"})["id"]
    hr = stack.token("hr", unit)
    assert stack.client.get(f"/v1/towns/{t['id']}", headers=hr).status_code == 200
    r = stack.client.post("/v1/towns", json={"name": "新镇"}, headers=hr)
    assert r.status_code == 403
    assert stack.client.get("/v1/towns/town_0000000000000000", headers=hr).status_code == 404


def test_a_community_lies_in_a_town_and_may_move(stack: Stack) -> None:
    t1 = stack.create("/v1/towns", {"name": "文峰镇"})["id"]
    t2 = stack.create("/v1/towns", {"name": "柯寨镇"})["id"]
    c = stack.create("/v1/communities", {"name": "东铺社区", "town_id": t1})
    assert c["town_id"] == t1
    other = stack.create("/v1/communities", {"name": "交通社区"})
    assert other["town_id"] is None
    r = stack.client.get("/v1/communities", params={"town_id": t1}, headers=stack.admin)
    assert [i["id"] for i in r.json()["items"]] == [c["id"]]
    r = stack.client.patch(f"/v1/communities/{c['id']}", json={"town_id": t2}, headers=stack.admin)
    assert r.status_code == 200 and r.json()["town_id"] == t2
    history = stack.client.get(f"/v1/communities/{c['id']}/history", headers=stack.admin).json()
    assert history["items"][-1]["changes"] == [{"field": "town_id", "before": t1, "after": t2}]
    # An unknown town is the caller's input error, named.
    for body in ({"name": "无镇社区", "town_id": "town_nope"},):
        r = stack.client.post("/v1/communities", json=body, headers=stack.admin)
        assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_town"
        assert "town_id" in r.json()["error"]["message"]
    r = stack.client.patch(
        f"/v1/communities/{c['id']}", json={"town_id": "town_nope"}, headers=stack.admin
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_town"
    # Cleared: the community lies in no town.
    r = stack.client.patch(
        f"/v1/communities/{c['id']}", json={"town_id": None}, headers=stack.admin
    )
    assert r.status_code == 200 and r.json()["town_id"] is None


def test_county_and_town_tokens(stack: Stack) -> None:
    t = stack.create("/v1/towns", {"name": "云田镇"})["id"]
    for role, subject in (("county", "county"), ("town", t)):
        headers = stack.token(role, subject)
        me = stack.client.get("/v1/auth/me", headers=headers).json()
        assert (me["role"], me["subject_id"]) == (role, subject)
    for role, subject in (("county", "admin"), ("town", "town_nope"), ("town", "county")):
        r = stack.client.post(
            "/v1/auth/tokens", json={"role": role, "subject_id": subject}, headers=stack.admin
        )
        assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_subject"
    # Neither office changes the registry, nor lists members by person.
    county = stack.token("county", "county")
    town = stack.token("town", t)
    r = stack.client.post("/v1/communities", json={"name": "某社区"}, headers=county)
    assert r.status_code == 403
    assert stack.client.get("/v1/members", headers=county).status_code == 200
    assert stack.client.get("/v1/members", headers=town).status_code == 403
