"""The member's own data (issue 15): everything held about them, as JSON and as a download, for
the member alone; and how long raw scans are kept (ClickHouse TTLs set by the migrate step,
never on what a kept year's assessment needs)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.tokens import sign_station
from services.warehouse.client import Warehouse
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

PHONE = "13922220001"


@pytest.fixture(scope="module")
def served(stack: Stack) -> dict[str, Any]:
    u = stack.create("/v1/units", {"name": f"数据局{uuid.uuid4().hex[:4]}"})
    c = stack.create("/v1/communities", {"name": f"数据社区{uuid.uuid4().hex[:4]}"})
    s = stack.create(
        "/v1/stations", {"community_id": c["id"], "name": "数据服务站", "kind": "service_station"}
    )
    ids: dict[str, Any] = {"u": u["id"], "c": c["id"], "s": s["id"]}
    for n in (1, 2):
        m = stack.create(
            "/v1/members",
            {
                "name": f"数据党员{n}号",
                "unit_id": u["id"],
                "community_id": c["id"],
                "phone": f"1392222{n:04d}",
            },
        )
        ids[f"m{n}"] = m["id"]
    h = {
        "m1": stack.token("member", ids["m1"]),
        "m2": stack.token("member", ids["m2"]),
        "org": stack.token("organizer", c["id"]),
        "hr": stack.token("hr", u["id"]),
        "admin": stack.admin,
    }
    ids["h"] = h
    m1 = ids["m1"]
    now = datetime.now(UTC)
    for action, at in (("in", now - timedelta(hours=3)), ("out", now - timedelta(hours=2))):
        body = {
            "station_token": sign_station(stack.settings, s["id"]),
            "action": action,
            "client_event_id": str(uuid.uuid4()),
            "scanned_at": at.isoformat(),
        }
        assert stack.client.post("/v1/checkins", json=body, headers=h["m1"]).status_code == 202
    r = stack.client.put(
        f"/v1/members/{m1}/reminder-preferences", json={"weekly_nudge": False}, headers=h["m1"]
    )
    assert r.status_code == 202, r.text
    assert stack.client.get(f"/v1/members/{m1}/phone", headers=h["org"]).status_code == 200
    r = stack.client.patch(f"/v1/members/{m1}", json={"name": "数据党员一号"}, headers=h["org"])
    assert r.status_code == 200, r.text

    def complete() -> bool:
        parts = stack.client.get(f"/v1/members/{m1}/my-data", headers=h["m1"]).json()["parts"]
        return (
            len(parts["scans"]) == 2
            and any(x["status"] == "closed" for x in parts["sessions"])
            and len(parts["preferences"]) == 1
            and len(parts["access_log"]) >= 1
            and len(parts["registry_history"]) == 2
        )

    assert stack.wait_for(complete, timeout=120), "m1's data did not all arrive"
    return ids


def test_the_member_gets_everything_held_about_them(stack: Stack, served: dict[str, Any]) -> None:
    m1, h = served["m1"], served["h"]
    r = stack.client.get(f"/v1/members/{m1}/my-data", headers=h["m1"])
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["member_id"] == m1
    # Their own record, the phone in full: it is theirs.
    assert data["record"]["phone"] == PHONE and data["record"]["name"] == "数据党员一号"
    parts = data["parts"]
    assert set(parts) == {
        "registry_history",
        "scans",
        "sessions",
        "feedback",
        "wishes",
        "notifications",
        "notification_deliveries",
        "preferences",
        "access_log",
    }
    assert [x["action"] for x in parts["scans"]] == ["in", "out"]
    assert {x["station_id"] for x in parts["scans"]} == {served["s"]}
    closed = [x for x in parts["sessions"] if x["status"] == "closed"]
    assert closed and closed[0]["credited_seconds"] > 3000
    [pref] = parts["preferences"]
    assert pref["kind"] == "weekly_nudge" and pref["enabled"] is False
    reveal = [x for x in parts["access_log"] if x["kind"] == "phone_reveal"]
    assert (
        reveal and reveal[0]["actor_role"] == "organizer" and reveal[0]["actor_id"] == served["c"]
    )
    ops = [x["operation"] for x in parts["registry_history"]]
    assert len(ops) == 2 and "name" in parts["registry_history"][1]["fields"]
    assert data["retention"] == {"scans": 4, "access_log": 3}
    # Nothing of another member.
    assert served["m2"] not in r.text and "13922220002" not in r.text


def test_the_download_is_the_same_data_as_a_file(stack: Stack, served: dict[str, Any]) -> None:
    m1, h = served["m1"], served["h"]
    r = stack.client.get(f"/v1/members/{m1}/my-data?format=download", headers=h["m1"])
    assert r.status_code == 200, r.text
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment;") and f"my-data-{m1}-" in disposition
    assert r.headers["content-type"].startswith("application/json")
    data = json.loads(r.content.decode("utf-8"))
    assert "数据党员一号" in r.content.decode("utf-8")  # readable Chinese, not \\u escapes
    as_json = stack.client.get(f"/v1/members/{m1}/my-data", headers=h["m1"]).json()
    assert data["parts"] == as_json["parts"] and data["record"] == as_json["record"]


def test_nobody_else_reads_a_members_data(stack: Stack, served: dict[str, Any]) -> None:
    m1, h = served["m1"], served["h"]
    for who in ("m2", "org", "hr", "admin"):
        r = stack.client.get(f"/v1/members/{m1}/my-data", headers=h[who])
        assert r.status_code == 404 and r.json()["error"]["code"] == "member_not_found", who
        assert PHONE not in r.text
    r = stack.client.get(f"/v1/members/{m1}/my-data?format=pdf", headers=h["m1"])
    assert r.status_code == 422 and "format" in r.json()["error"]["message"]
    r = stack.client.get("/v1/members/mem_nobody/my-data", headers=h["m1"])
    assert r.status_code == 404


def _wh(stack: Stack) -> Warehouse:
    wh: Warehouse = stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]
    return wh


def test_raw_scans_are_kept_for_the_retention_years_and_sessions_for_good(
    stack: Stack, served: dict[str, Any]
) -> None:
    """SCAN_RETENTION_YEARS=4 (the default): the migrate step gave `checkins` a TTL of four
    local years; a scan of five years ago goes at the next merge, a scan of this year stays, and
    sessions (what the assessment and the record of service count) have no TTL at all."""
    wh = _wh(stack)

    def create(table: str) -> str:
        return str(wh.query(f"SHOW CREATE TABLE {table}")[0][0])

    assert "TTL toStartOfYear(toTimeZone(scanned_at, 'Asia/Shanghai')) + toIntervalYear(4)" in (
        create("checkins")
    )
    assert "toIntervalYear(3)" in create("access_log")
    for kept in ("sessions", "member_weeks", "feedback", "service_records"):
        assert " TTL " not in create(kept).replace("\n", " "), kept
    applied = dict(wh.query("SELECT table_name, years FROM retention_applied FINAL"))
    assert applied == {
        "checkins": 4,
        "notifications": 4,
        "notification_deliveries": 4,
        "access_log": 3,
    }

    old = datetime.now(UTC).replace(month=6, day=1) - timedelta(days=5 * 366)
    columns = ["event_id", "member_id", "station_id", "action", "client_event_id"]
    columns += ["scanned_at", "received_at"]
    rows = [
        ("old-scan", "mem_retention", "st_x", "in", str(uuid.uuid4()), old, old),
        ("new-scan", "mem_retention", "st_x", "in", str(uuid.uuid4()), datetime.now(UTC), old),
    ]
    wh.insert("checkins", rows, columns)
    wh.command("OPTIMIZE TABLE checkins FINAL")
    left = {
        r[0] for r in wh.query("SELECT event_id FROM checkins WHERE member_id = 'mem_retention'")
    }
    assert left == {"new-scan"}
    # M1's scans of this year are all still there.
    assert (
        int(wh.query(f"SELECT count() FROM checkins WHERE member_id = '{served['m1']}'")[0][0]) == 2
    )
