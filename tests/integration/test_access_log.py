"""The personal-data access log (issue 15): phone reveals, files with phones and member records
read by someone other than the member become events on Kafka, kept in ClickHouse, read by the
admin through GET /v1/access-log (filters, paging); a read that cannot be logged is refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.publisher import PublishUnavailable
from tests.support.access_log import log_page, wait_entries
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


@pytest.fixture(scope="module")
def town(stack: Stack) -> dict[str, Any]:
    u = stack.create("/v1/units", {"name": f"日志局{uuid.uuid4().hex[:4]}"})
    ids: dict[str, Any] = {"u": u["id"]}
    for n in (1, 2):
        c = stack.create("/v1/communities", {"name": f"日志社区{n}-{uuid.uuid4().hex[:4]}"})
        ids[f"c{n}"] = c["id"]
    for n, c in ((1, "c1"), (2, "c1"), (3, "c2")):
        m = stack.create(
            "/v1/members",
            {
                "name": f"日志党员{n}号",
                "unit_id": u["id"],
                "community_id": ids[c],
                "phone": f"1391111{n:04d}",
            },
        )
        ids[f"m{n}"] = m["id"]
    ids["h"] = {
        "org1": stack.token("organizer", ids["c1"]),
        "org2": stack.token("organizer", ids["c2"]),
        "hr": stack.token("hr", u["id"]),
        "m1": stack.token("member", ids["m1"]),
        "admin": stack.admin,
    }
    return ids


def test_a_phone_reveal_is_logged_with_who_whose_and_where(
    stack: Stack, town: dict[str, Any]
) -> None:
    h, m1 = town["h"], town["m1"]
    before = datetime.now(UTC) - timedelta(seconds=1)
    r = stack.client.get(f"/v1/members/{m1}/phone", headers=h["org1"])
    assert r.status_code == 200 and r.json() == {"member_id": m1, "phone": "13911110001"}
    [entry] = wait_entries(stack, 1, member_id=m1, kind="phone_reveal")
    assert entry["actor_role"] == "organizer" and entry["actor_id"] == town["c1"]
    assert entry["member_ids"] == [m1] and entry["member_names"] == ["日志党员1号"]
    assert entry["actor_name"].startswith("日志社区1-")
    assert entry["route"] == "GET /v1/members/{member_id}/phone"
    assert datetime.fromisoformat(entry["at"]) >= before


def test_a_refused_reveal_shows_nothing_and_logs_nothing(
    stack: Stack, town: dict[str, Any]
) -> None:
    h, m2 = town["h"], town["m2"]
    for who in ("org2", "hr", "m1"):
        r = stack.client.get(f"/v1/members/{m2}/phone", headers=h[who])
        assert r.status_code == 404 and "13911110002" not in r.text, (who, r.text)
    # A logged read that follows lands; none of the refused ones is there.
    assert stack.client.get(f"/v1/members/{m2}/phone", headers=h["admin"]).status_code == 200
    entries = wait_entries(stack, 1, member_id=m2)
    assert [(e["kind"], e["actor_role"]) for e in entries] == [("phone_reveal", "admin")]


def test_the_not_served_file_is_logged_with_every_member_it_lists(
    stack: Stack, town: dict[str, Any]
) -> None:
    h, c1 = town["h"], town["c1"]
    r = stack.client.get(f"/v1/communities/{c1}/roster?format=csv", headers=h["org1"])
    assert r.status_code == 200 and "13911110001" in r.text and "13911110002" in r.text
    [entry] = wait_entries(stack, 1, kind="phones_export", actor_id=c1)
    assert sorted(entry["member_ids"]) == sorted([town["m1"], town["m2"]])
    assert entry["route"] == "GET /v1/communities/{community_id}/roster"
    assert "csv" in entry["detail"]
    # The JSON roster shows phones masked: nothing to log.
    r = stack.client.get(f"/v1/communities/{c1}/roster", headers=h["org1"])
    assert r.status_code == 200 and "13911110001" not in r.text
    assert len(log_page(stack, kind="phones_export", actor_id=c1)["items"]) == 1


def test_a_member_record_read_by_others_is_logged_by_the_member_not(
    stack: Stack, town: dict[str, Any]
) -> None:
    h, m3 = town["h"], town["m3"]
    assert stack.client.get(f"/v1/members/{m3}", headers=h["hr"]).status_code == 200
    assert stack.client.get(f"/v1/members/{m3}/history", headers=h["org2"]).status_code == 200
    entries = wait_entries(stack, 2, member_id=m3, kind="member_record")
    assert sorted((e["actor_role"], e["detail"]) for e in entries) == [
        ("hr", ""),
        ("organizer", "history"),
    ]
    m1 = town["m1"]
    stack.client.get(f"/v1/members/{m1}/phone", headers=h["admin"])  # a marker after
    assert stack.client.get(f"/v1/members/{m1}", headers=h["m1"]).status_code == 200
    assert stack.client.get(f"/v1/members/{m1}/history", headers=h["m1"]).status_code == 200
    wait_entries(stack, 1, member_id=m1, actor_role="admin")
    assert log_page(stack, member_id=m1, kind="member_record")["total"] == 0


def test_filters_and_paging(stack: Stack, town: dict[str, Any]) -> None:
    h, m2 = town["h"], town["m2"]
    for _ in range(3):
        assert stack.client.get(f"/v1/members/{m2}/phone", headers=h["org1"]).status_code == 200
    mine = {"member_id": m2, "actor_role": "organizer", "kind": "phone_reveal"}
    entries = wait_entries(stack, 3, **mine)
    assert len(entries) == 3
    first = log_page(stack, **mine, limit=2)
    second = log_page(stack, **mine, limit=2, offset=2)
    assert first["total"] == second["total"] == 3
    assert len(first["items"]) == 2 and len(second["items"]) == 1
    ids = [e["id"] for e in first["items"] + second["items"]]
    assert len(set(ids)) == 3 and ids == [e["id"] for e in entries]  # newest first, stable
    ats = [e["at"] for e in entries]
    assert ats == sorted(ats, reverse=True)
    # A period: nothing before the module began, everything since.
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert log_page(stack, member_id=m2, since=future)["total"] == 0
    assert log_page(stack, member_id=m2, until=future)["total"] >= 3
    assert log_page(stack, member_id=m2, actor_id="nobody")["total"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"kind": "everything"},
        {"actor_role": "root"},
        {"since": "2026-01-01T00:00:00"},  # a time without its zone
        {"until": "yesterday"},
        {"limit": "0"},
        {"limit": "501"},
        {"offset": "-1"},
        {"member_id": "x" * 65},
        {"since": "0133-03-20T18:44:33Z"},  # no year ClickHouse can read
    ],
)
def test_bad_filters_are_422_naming_the_field(stack: Stack, params: dict[str, str]) -> None:
    r = stack.client.get("/v1/access-log", params=params, headers=stack.admin)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"
    assert next(iter(params)) in r.json()["error"]["message"]


def test_only_the_admin_reads_thelog_page(stack: Stack, town: dict[str, Any]) -> None:
    for who in ("org1", "hr", "m1"):
        r = stack.client.get("/v1/access-log", headers=town["h"][who])
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text


def test_a_read_that_cannot_be_logged_is_refused(
    stack: Stack, town: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log is written before the answer: with Kafka away the phone is not shown (503)."""
    ctx = stack.client.app.state.ctx  # type: ignore[attr-defined]

    def down(*_: Any, **__: Any) -> None:
        raise PublishUnavailable("broker away")

    monkeypatch.setattr(ctx.publisher, "send_sync", down)
    h, m1 = town["h"], town["m1"]
    r = stack.client.get(f"/v1/members/{m1}/phone", headers=h["org1"])
    assert r.status_code == 503 and "13911110001" not in r.text
    r = stack.client.get(f"/v1/communities/{town['c1']}/roster?format=csv", headers=h["org1"])
    assert r.status_code == 503 and "13911110001" not in r.text
    # A member's own record needs no log entry: it is answered.
    assert stack.client.get(f"/v1/members/{m1}", headers=h["m1"]).status_code == 200
