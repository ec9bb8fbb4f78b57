"""The unit's loop through the real API, Kafka and chDB: a roster uploaded (dry run, bad rows,
re-upload, removal), each line's report status (reported, lapsed, 未报到, another unit's),
the community's receipt (报到回执) the unit then sees, a member's move keeping their history,
and the lapsed rule's SQL twin against its Python rule."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import openpyxl
import pytest

from services import topics
from services.counting import LAPSED_SQL, lapsed, lapsed_cutoff
from services.events import CheckinScanned, derived_id
from services.timeutil import LOCAL_TZ
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

# The worker re-pairs scans from two months back (published to the log as the API would have).
STACK_ENV = {"SESSION_REDERIVE_HORIZON_H": str(400 * 24), "SESSION_REVIEW_WINDOW_DAYS": "400"}
HEADER = "姓名,手机号码,党支部,职务"
TODAY = datetime.now(LOCAL_TZ).date()


def _member(stack: Stack, name: str, phone: str, unit: str, community: str, **more: Any) -> Any:
    return stack.create(
        "/v1/members",
        {"name": name, "phone": phone, "unit_id": unit, "community_id": community, **more},
    )


def log_session(stack: Stack, c: dict[str, Any], m: dict[str, Any], day: date) -> None:
    for action, hour in (("in", 9), ("out", 11)):
        client_id = str(uuid.uuid4())
        ev = CheckinScanned(
            event_id=derived_id("checkin", m["id"], client_id),
            occurred_at=datetime(day.year, day.month, day.day, hour, tzinfo=LOCAL_TZ),
            member_id=m["id"],
            station_id=c["station"]["id"],
            station_community_id=c["c1"]["id"],
            unit_id=m["unit_id"],
            member_community_id=m["community_id"],
            action=action,  # type: ignore[arg-type]
            client_event_id=client_id,
            received_at=datetime.now(UTC),
        )
        stack.client.app.state.ctx.publisher.send_sync(topics.CHECKINS, m["id"], ev)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def county(stack: Stack) -> dict[str, Any]:
    u1 = stack.create("/v1/units", {"name": "县审计局"})
    u2 = stack.create("/v1/units", {"name": "县统计局"})
    c1 = stack.create("/v1/communities", {"name": "南城社区"})
    c2 = stack.create("/v1/communities", {"name": "西城社区"})
    station = stack.create(
        "/v1/stations",
        {"community_id": c1["id"], "name": "南城党群服务站", "kind": "service_station"},
    )
    reported = (TODAY - timedelta(days=300)).isoformat()
    c = {"u1": u1, "u2": u2, "c1": c1, "c2": c2, "station": station}
    c["active"] = _member(stack, "张伟", "13700000001", u1["id"], c1["id"], reported_on=reported)
    c["lapsed"] = _member(stack, "李强", "13700000002", u1["id"], c1["id"], reported_on=reported)
    c["unreported"] = _member(stack, "王芳", "13700000003", u1["id"], c1["id"])
    c["elsewhere"] = _member(stack, "赵敏", "13700000005", u2["id"], c2["id"], reported_on=reported)
    c["mover"] = _member(stack, "孙悦", "13700000006", u1["id"], c1["id"], reported_on=reported)
    log_session(stack, c, c["active"], TODAY - timedelta(days=7))
    log_session(stack, c, c["lapsed"], TODAY - timedelta(days=60))
    log_session(stack, c, c["mover"], TODAY - timedelta(days=14))
    wh = stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]

    def sessions() -> bool:
        rows = wh.query(
            "SELECT count() FROM sessions FINAL WHERE status = 'closed' AND member_id IN %(m)s",
            {"m": [c["active"]["id"], c["lapsed"]["id"], c["mover"]["id"]]},
        )
        return bool(rows[0][0] == 3)

    assert stack.wait_for(sessions, timeout=60), "sessions did not arrive"
    c["hr1"] = stack.token("hr", u1["id"])
    c["hr2"] = stack.token("hr", u2["id"])
    c["org1"] = stack.token("organizer", c1["id"])
    c["org2"] = stack.token("organizer", c2["id"])
    return c


ROSTER = (
    "张伟,13700000001,机关第一党支部,科长",
    "李强,13700000002,机关第一党支部,",
    "王芳,13700000003,机关第二党支部,科员",
    "周杰,13700000004,机关第二党支部,",  # never registered with a community
    "赵敏,13700000005,机关第二党支部,",  # registered to another unit's member
    "孙悦,13700000006,机关第二党支部,",
)


def csv_bytes(*rows: str, encoding: str = "utf-8") -> bytes:
    return ("\r\n".join([HEADER, *rows]) + "\r\n").encode(encoding)


def upload(stack: Stack, unit_id: str, data: bytes, headers: Any, query: str = "") -> Any:
    return stack.client.post(
        f"/v1/imports/units/{unit_id}/roster{query}",
        files={"file": ("名单.csv", data, "text/csv")},
        headers=headers,
    )


def roster(stack: Stack, c: dict[str, Any], query: str = "") -> dict[str, Any]:
    r = stack.client.get(f"/v1/units/{c['u1']['id']}/roster{query}", headers=c["hr1"])
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_upload_dry_run_then_status_of_every_line(stack: Stack, county: dict[str, Any]) -> None:
    c = county
    data = csv_bytes(*ROSTER, encoding="gb18030")
    dry = upload(stack, c["u1"]["id"], data, c["hr1"], "?dry_run=true")
    assert dry.status_code == 200, dry.text
    assert (dry.json()["added"], dry.json()["written"]) == (6, False)
    assert roster(stack, c)["total"] == 0
    r = upload(stack, c["u1"]["id"], data, c["hr1"])
    assert r.status_code == 200, r.text
    assert (r.json()["added"], r.json()["written"], r.json()["errors"]) == (6, True, [])

    body = roster(stack, c)
    status = {i["name"]: i["status"] for i in body["items"]}
    assert status == {
        "张伟": "reported",
        "李强": "lapsed",
        "王芳": "not_reported",
        "周杰": "not_registered",
        "赵敏": "other_unit",
        "孙悦": "reported",
    }
    assert body["counts"] == {
        "total": 6,
        "reported": 2,
        "lapsed": 1,
        "unreported": 2,
        "other_unit": 1,
        "inactive": 0,
        "confirmed": 0,
    }
    assert body["lapsed_after_weeks"] == 4
    zhang = next(i for i in body["items"] if i["name"] == "张伟")
    assert zhang["community_name"] == "南城社区" and zhang["phone"] == "137****0001"
    assert zhang["position"] == "科长" and zhang["last_service"] is not None
    # Another unit's member: the phone is registered, nothing more of theirs is shown.
    zhao = next(i for i in body["items"] if i["name"] == "赵敏")
    assert zhao["member_id"] is None and zhao["community_id"] is None
    assert "西城" not in str(zhao)

    unreported = roster(stack, c, "?status=unreported")
    # By name, as the registry's lists order names (code point order for Chinese names).
    assert [i["name"] for i in unreported["items"]] == ["周杰", "王芳"]
    export = stack.client.get(
        f"/v1/units/{c['u1']['id']}/roster?status=unreported&format=csv", headers=c["hr1"]
    )
    assert export.status_code == 200
    lines = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert lines[0][:5] == ["姓名", "手机号码", "党支部", "职务", "报到状态"]
    assert [row[0] for row in lines[1:]] == ["周杰", "王芳"]
    assert lines[2][1] == "137****0003" and lines[1][4] == "未报到（未登记）"
    xlsx = stack.client.get(f"/v1/units/{c['u1']['id']}/roster?format=xlsx", headers=c["hr1"])
    ws = openpyxl.load_workbook(io.BytesIO(xlsx.content)).worksheets[0]
    assert ws.max_row == 7 and ws["E1"].value == "报到状态"


def test_reupload_changes_nothing_and_a_shorter_roster_removes(
    stack: Stack, county: dict[str, Any]
) -> None:
    c = county
    assert upload(stack, c["u1"]["id"], csv_bytes(*ROSTER), c["hr1"]).status_code == 200
    again = upload(stack, c["u1"]["id"], csv_bytes(*ROSTER), c["hr1"])
    assert (again.json()["unchanged"], again.json()["written"]) == (6, False)
    # A broken file removes nobody and, without partial, writes nothing.
    bad = upload(stack, c["u1"]["id"], csv_bytes(ROSTER[0], "无号码,12,支部,"), c["hr1"])
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "rows_rejected"
    assert bad.json()["errors"][0]["row"] == 3 and roster(stack, c)["total"] == 6
    shorter = upload(stack, c["u1"]["id"], csv_bytes(*ROSTER[:3], *ROSTER[4:]), c["hr1"])
    assert (shorter.json()["removed"], shorter.json()["written"]) == (1, True)
    assert "周杰" not in {i["name"] for i in roster(stack, c)["items"]}
    upload(stack, c["u1"]["id"], csv_bytes(*ROSTER), c["hr1"])


def test_the_unit_sees_the_communitys_receipt(stack: Stack, county: dict[str, Any]) -> None:
    c = county
    upload(stack, c["u1"]["id"], csv_bytes(*ROSTER), c["hr1"])
    mid = c["active"]["id"]
    # Only the member's own community (or the admin) confirms; HR and the member cannot.
    assert (
        stack.client.post(f"/v1/members/{mid}/report-receipt", headers=c["org2"]).status_code == 404
    )
    assert (
        stack.client.post(f"/v1/members/{mid}/report-receipt", headers=c["hr1"]).status_code == 403
    )
    reports = stack.client.get(f"/v1/communities/{c['c1']['id']}/reports", headers=c["org1"])
    assert reports.status_code == 200
    before = {i["member_id"]: i["confirmed"] for i in reports.json()["items"]}
    assert before[mid] is False and c["unreported"]["id"] not in before
    r = stack.client.post(f"/v1/members/{mid}/report-receipt", headers=c["org1"])
    assert r.status_code == 201, r.text
    assert r.json()["confirmed_by"] == f"organizer:{c['c1']['id']}"
    again = stack.client.post(f"/v1/members/{mid}/report-receipt", headers=c["org1"])
    assert again.status_code == 201 and not again.json()["created"]
    assert again.json()["confirmed_at"] == r.json()["confirmed_at"]
    # Not reported: nothing to confirm.
    no = stack.client.post(f"/v1/members/{c['unreported']['id']}/report-receipt", headers=c["org1"])
    assert no.status_code == 409 and no.json()["error"]["code"] == "not_reported"
    body = roster(stack, c)
    zhang = next(i for i in body["items"] if i["name"] == "张伟")
    assert zhang["confirmed"] is True and body["counts"]["confirmed"] == 1
    assert [i["name"] for i in roster(stack, c, "?status=not_confirmed")["items"]] == [
        "孙悦",
        "李强",
    ]
    after = stack.client.get(f"/v1/communities/{c['c1']['id']}/reports", headers=c["org1"])
    assert {i["member_id"]: i["confirmed"] for i in after.json()["items"]}[mid] is True
    # The receipt is an event on the log (the audit trail), not only a row.
    rows = stack.client.app.state.ctx.warehouse.query(  # type: ignore[attr-defined]
        "SELECT confirmed_by FROM report_receipts FINAL WHERE member_id = %(m)s", {"m": mid}
    )
    assert rows == [(f"organizer:{c['c1']['id']}",)]


def test_a_member_who_moves_keeps_their_history(stack: Stack, county: dict[str, Any]) -> None:
    c = county
    upload(stack, c["u1"]["id"], csv_bytes(*ROSTER), c["hr1"])
    mover = c["mover"]
    r = stack.client.patch(
        f"/v1/members/{mover['id']}",
        json={"unit_id": c["u2"]["id"], "community_id": c["c2"]["id"]},
        headers=stack.admin,
    )
    assert r.status_code == 200, r.text
    history = stack.client.get(f"/v1/members/{mover['id']}/history", headers=stack.admin).json()
    moved = {ch["field"]: ch for e in history["items"] for ch in e["changes"]}
    assert c["u1"]["id"] in str(moved["unit_id"]) and c["u2"]["id"] in str(moved["unit_id"])
    assert c["c1"]["id"] in str(moved["community_id"])
    # The old unit's roster no longer shows where they are; their service stays with it.
    sun = next(i for i in roster(stack, c)["items"] if i["name"] == "孙悦")
    assert sun["status"] == "other_unit" and sun["community_id"] is None
    wh = stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]
    rows = wh.query(
        "SELECT unit_id, member_community_id FROM sessions FINAL WHERE member_id = %(m)s",
        {"m": mover["id"]},
    )
    assert rows == [(c["u1"]["id"], c["c1"]["id"])]
    y = (TODAY - timedelta(days=14)).year
    a = stack.client.get(f"/v1/units/{c['u1']['id']}/assessments?year={y}", headers=c["hr1"])
    assert any(i["member_id"] == mover["id"] and i["hours"] == 2.0 for i in a.json()["items"])


def test_bad_input_and_scope(stack: Stack, county: dict[str, Any]) -> None:
    c = county
    u1 = c["u1"]["id"]
    assert stack.client.get(f"/v1/units/{u1}/roster?status=x", headers=c["hr1"]).status_code == 422
    assert stack.client.get(f"/v1/units/{u1}/roster", headers=c["hr2"]).status_code == 404
    assert upload(stack, u1, csv_bytes(*ROSTER), c["hr2"]).status_code == 404
    assert (
        upload(stack, "unit_0000000000000000", csv_bytes(*ROSTER), stack.admin).status_code == 404
    )
    assert upload(stack, u1, csv_bytes(*ROSTER), c["org1"]).status_code == 403
    no_branch = upload(stack, u1, "姓名,手机号码\n张伟,13700000001\n".encode(), c["hr1"])
    assert no_branch.status_code == 422 and no_branch.json()["error"]["code"] == "bad_header"
    form = stack.client.post(f"/v1/imports/units/{u1}/roster", data={"x": "1"}, headers=c["hr1"])
    assert form.status_code in (415, 422)


@pytest.mark.parametrize("weeks", [1, 4])
def test_the_lapsed_sql_twin_agrees_with_the_rule(stack: Stack, weeks: int) -> None:
    wh = stack.client.app.state.ctx.warehouse  # type: ignore[attr-defined]
    cutoff = lapsed_cutoff(TODAY, weeks)
    days = [None, *(cutoff + timedelta(days=d) for d in (-8, -1, 0, 1, 20))]
    cases = [(r, s) for r in days for s in days]
    for reported_on, last_day in cases:
        # A service at the very start and the very end of its local day.
        for hour in (0, 23):
            last = (
                datetime(last_day.year, last_day.month, last_day.day, hour, 30, tzinfo=LOCAL_TZ)
                if last_day
                else None
            )
            got = wh.query(
                f"SELECT {LAPSED_SQL} FROM (SELECT %(r)s::Nullable(Date32) AS reported_on, "
                "%(s)s::Nullable(DateTime64(3, 'UTC')) AS last_service)",
                {
                    "r": reported_on,
                    "s": last.astimezone(UTC).replace(tzinfo=None) if last else None,
                    "lapsed_cutoff": cutoff,
                },
            )[0][0]
            assert bool(got) is lapsed(reported_on, last_day, cutoff), (reported_on, last, cutoff)
