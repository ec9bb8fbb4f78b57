"""A micro-wish's resident (个人信息保护法): every list and get of wishes shows the resident's name
masked (王**) and of the free-text contact only the phone, masked; the address and the rest are
withheld, with a hint saying who may see them. The reveal (GET /v1/wishes/{id}/contact) gives
both in full to the wish's community and the member who accepted it, logged; what each other
reader sees: a member of the community, an organizer of another community, the county office
and a stranger."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.access_log import logged
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

NAME = "欧阳秀英"
CONTACT = "欧阳秀英 139 8765 4321，东铺小区7号楼2单元"
SECRETS = ("秀英", "东铺", "7号楼", "8765 4321", "87654321")


@pytest.fixture(scope="module")
def world(stack: Stack) -> dict[str, Any]:
    unit = stack.create("/v1/units", {"name": f"心愿局{uuid.uuid4().hex[:4]}"})
    c1 = stack.create("/v1/communities", {"name": f"东铺社区{uuid.uuid4().hex[:4]}"})
    c2 = stack.create("/v1/communities", {"name": f"交通社区{uuid.uuid4().hex[:4]}"})

    def member(name: str, c: dict[str, Any]) -> str:
        m = stack.create(
            "/v1/members", {"name": name, "unit_id": unit["id"], "community_id": c["id"]}
        )
        return str(m["id"])

    w: dict[str, Any] = {"c1": c1["id"], "c2": c2["id"]}
    w["helper"] = member("何志远", c1)
    w["neighbour"] = member("邻居甲", c1)
    w["org1"] = stack.token("organizer", c1["id"])
    w["org2"] = stack.token("organizer", c2["id"])
    w["county"] = stack.token("county", "county")
    w["helper_tok"] = stack.token("member", w["helper"])
    w["neighbour_tok"] = stack.token("member", w["neighbour"])
    r = stack.client.post(
        "/v1/wishes",
        json={
            "community_id": c1["id"],
            "title": "帮忙取药",
            "resident_name": NAME,
            "resident_contact": CONTACT,
        },
        headers=w["org1"],
    )
    assert r.status_code == 202, r.text
    w["wish"] = r.json()["id"]
    assert _until(stack, w, "ordered")
    return w


def _get(stack: Stack, w: dict[str, Any], headers: dict[str, str]) -> Any:
    return stack.client.get(f"/v1/wishes/{w['wish']}", headers=headers)


def _until(stack: Stack, w: dict[str, Any], status: str) -> dict[str, Any] | None:
    def landed() -> dict[str, Any] | None:
        r = _get(stack, w, w["org1"])
        return r.json() if r.status_code == 200 and r.json()["status"] == status else None

    got = stack.wait_for(landed, timeout=60)
    return dict(got) if got else None


def _listed(stack: Stack, w: dict[str, Any], headers: dict[str, str]) -> list[dict[str, Any]]:
    r = stack.client.get("/v1/wishes", params={"limit": 500}, headers=headers)
    assert r.status_code == 200, r.text
    return [i for i in r.json()["items"] if i["wish_id"] == w["wish"]]


def _withheld(item: dict[str, Any], revealable: bool) -> None:
    assert item["resident_name"] == "欧阳**"
    assert item["resident_contact"] == "139****4321"
    assert item["contact_revealable"] is revealable
    assert "隐去" in item["contact_hint"]
    assert ("查看联系方式" in item["contact_hint"]) is revealable
    for secret in SECRETS:
        assert secret not in str(item), secret


def test_the_community_sees_the_resident_withheld_and_reveals_with_a_log(
    stack: Stack, world: dict[str, Any]
) -> None:
    w = world
    _withheld(_get(stack, w, w["org1"]).json(), revealable=True)
    [item] = _listed(stack, w, w["org1"])
    _withheld(item, revealable=True)
    r = stack.client.get(f"/v1/wishes/{w['wish']}/contact", headers=w["org1"])
    assert r.status_code == 200, r.text
    assert r.json() == {"wish_id": w["wish"], "resident_name": NAME, "resident_contact": CONTACT}

    def entry() -> dict[str, Any] | None:
        items = logged(stack, kind="wish_contact", actor_id=w["c1"])
        items = [i for i in items if i["detail"] == f"wish {w['wish']}"]
        return items[0] if items else None

    e = stack.wait_for(entry, timeout=60)
    assert e and e["route"] == "GET /v1/wishes/{wish_id}/contact" and e["member_ids"] == []


def test_the_county_office_reads_the_wish_withheld_and_may_not_reveal(
    stack: Stack, world: dict[str, Any]
) -> None:
    w = world
    _withheld(_get(stack, w, w["county"]).json(), revealable=False)
    [item] = _listed(stack, w, w["county"])
    _withheld(item, revealable=False)
    r = stack.client.get(f"/v1/wishes/{w['wish']}/contact", headers=w["county"])
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
    assert NAME not in r.text


def test_an_organizer_of_another_community_and_a_stranger_see_nothing(
    stack: Stack, world: dict[str, Any]
) -> None:
    w = world
    for path in (f"/v1/wishes/{w['wish']}", f"/v1/wishes/{w['wish']}/contact"):
        r = stack.client.get(path, headers=w["org2"])
        assert r.status_code == 404 and r.json()["error"]["code"] == "wish_not_found", r.text
        r = stack.client.get(path)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", r.text
        assert NAME not in r.text and "4321" not in r.text
    assert _listed(stack, w, w["org2"]) == []
    assert stack.client.get("/v1/wishes").status_code == 401


def test_a_member_sees_the_wish_once_sent_to_them_and_the_contact_once_accepted(
    stack: Stack, world: dict[str, Any]
) -> None:
    w = world
    # A member of the community the wish was not sent to: as if it did not exist.
    assert _get(stack, w, w["neighbour_tok"]).status_code == 404
    assert _listed(stack, w, w["neighbour_tok"]) == []
    r = stack.client.post(
        f"/v1/wishes/{w['wish']}/dispatch",
        json={"assignee_kind": "member", "assignee_id": w["helper"]},
        headers=w["org1"],
    )
    assert r.status_code == 202, r.text
    assert _until(stack, w, "dispatched")
    # Sent, not yet accepted: the wish withheld, the contact not theirs yet.
    _withheld(_get(stack, w, w["helper_tok"]).json(), revealable=False)
    [item] = _listed(stack, w, w["helper_tok"])
    _withheld(item, revealable=False)
    url = f"/v1/wishes/{w['wish']}/contact"
    assert stack.client.get(url, headers=w["helper_tok"]).status_code == 403
    r = stack.client.post(f"/v1/wishes/{w['wish']}/accept", json={}, headers=w["helper_tok"])
    assert r.status_code == 202, r.text
    assert _until(stack, w, "accepted")
    # Accepted: still withheld in the wish, revealable in full (logged) on a tap.
    _withheld(_get(stack, w, w["helper_tok"]).json(), revealable=True)
    r = stack.client.get(url, headers=w["helper_tok"])
    assert r.status_code == 200 and r.json()["resident_name"] == NAME, r.text
    assert r.json()["resident_contact"] == CONTACT
    assert _get(stack, w, w["neighbour_tok"]).status_code == 404


@pytest.mark.parametrize("suffix", ["", "/contact"])
def test_an_unknown_wish_is_a_404_in_json(stack: Stack, world: dict[str, Any], suffix: str) -> None:
    r = stack.client.get(f"/v1/wishes/wish_{'0' * 16}{suffix}", headers=world["org1"])
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "wish_not_found" and r.json()["error"]["message"]


def test_a_bad_list_filter_is_a_422_naming_it(stack: Stack, world: dict[str, Any]) -> None:
    r = stack.client.get("/v1/wishes", params={"status": "granted"}, headers=world["org1"])
    assert r.status_code == 422 and "status" in r.json()["error"]["message"], r.text
