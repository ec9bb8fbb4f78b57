"""Phones masked everywhere (个人信息保护法, issue 15): every GET of the API, as every caller, in
every format it answers, shows a member's phone only as 138****0004, except where the role must
call: the organizer's (and the admin's) logged reveal and the not-served file, and the member's
own data download."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import openpyxl
import pytest

from services.tokens import sign_station
from tests.integration.test_access_matrix import (
    CASES,
    PRINCIPALS,
    World,
    _path,
    operations,
    world,  # noqa: F401 (the fixture, built again for this module's own stack)
)
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# As the world registers M1 and M2; M3 (C1's, never served) is added here so that the
# not-served file lists a phone.
PHONES = {"m1": "13812340001", "m2": "13812340002", "m3": "13812340003"}
MASKED = {"m1": "138****0001", "m2": "138****0002", "m3": "138****0003"}
REVEAL = "/v1/members/{member_id}/phone"
ROSTER = "/v1/communities/{community_id}/roster"
MY_DATA = "/v1/members/{member_id}/my-data"
NATIONAL = "/v1/communities/{community_id}/national-export"


def _full_phone_allowed(template: str, fmt: str | None, who: str) -> bool:
    """Where a phone may be shown in full, and to whom."""
    if template == REVEAL:
        return who in ("org1", "admin")  # must call; logged
    if template == ROSTER and fmt in ("csv", "xlsx"):
        return who in ("org1", "admin")  # the not-served file, for calling; logged
    if template == NATIONAL:
        return who in ("org1", "admin")  # the volunteer's key in the national system; logged
    if template == MY_DATA:
        return who == "m1"  # the member's own data
    return False


def _text(r: Any) -> str:
    """What an answer shows, an XLSX's cells included (its zip hides them from the bytes)."""
    if r.headers.get("content-type", "").startswith(XLSX):
        book = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True)
        cells = (
            str(c) for ws in book.worksheets for row in ws.iter_rows(values_only=True) for c in row
        )
        return "\n".join(cells)
    return str(r.text)


def _formats(op: dict[str, Any]) -> list[str | None]:
    for p in op.get("parameters", []):
        if p["name"] == "format":
            schema = p.get("schema", {})
            values = schema.get("enum") or [
                v for s in schema.get("anyOf", []) for v in s.get("enum", [])
            ]
            return [str(v) for v in values]
    return [None]


@pytest.fixture(scope="module")
def on_site(stack: Stack, world: World) -> None:  # noqa: F811
    """M1 and M2 checked in (not out) at their own stations: both on-site lists name them. M3
    of C1 has not served: the not-served file lists them."""
    m3 = stack.create(
        "/v1/members",
        {
            "name": "矩阵党员3号",
            "unit_id": world.ids["u1"],
            "community_id": world.ids["c1"],
            "phone": PHONES["m3"],
        },
    )
    assert m3["phone"] == MASKED["m3"]  # the answer to a write is masked too
    for n in (1, 2):
        body = {
            "station_token": sign_station(stack.settings, world.ids[f"s{n}"]),
            "action": "in",
            "client_event_id": str(uuid.uuid4()),
            "scanned_at": (datetime.now(UTC) - timedelta(minutes=20)).isoformat(),
        }
        r = stack.client.post("/v1/checkins", json=body, headers=world.headers[f"m{n}"])
        assert r.status_code == 202, r.text

    def both() -> bool:
        return all(
            stack.client.get(
                f"/v1/communities/{world.ids[f'c{n}']}/on-site", headers=stack.admin
            ).json()["total"]
            for n in (1, 2)
        )

    assert stack.wait_for(both, timeout=120), "the open sessions did not arrive"


def test_no_answer_shows_a_phone_in_full_but_where_the_role_must_call(
    stack: Stack,
    world: World,  # noqa: F811
    on_site: None,
) -> None:
    ops = operations(stack.client.app)
    checked, full_seen = 0, set()
    for (method, template), case in sorted(CASES.items()):
        if method != "GET":
            continue
        path = _path(template, case, world)
        for fmt in _formats(ops[(method, template)]):
            params = {**case.query, **({"format": fmt} if fmt else {})}
            for who in PRINCIPALS:
                r = stack.client.get(path, params=params, headers=world.headers[who])
                text = _text(r)
                for m, phone in PHONES.items():
                    if phone in text:
                        where = f"GET {path} format={fmt} as {who} shows {m}'s phone in full"
                        assert _full_phone_allowed(template, fmt, who), where
                        full_seen.add((template, fmt, who))
                checked += 1
    assert checked > 150
    # The sweep sees a phone when one is there: the reveal, the not-served file and the
    # member's own data show it in full to whom they must.
    assert (REVEAL, None, "org1") in full_seen
    assert (ROSTER, "csv", "org1") in full_seen and (ROSTER, "xlsx", "admin") in full_seen
    assert (MY_DATA, "json", "m1") in full_seen


def test_lists_show_the_masked_phone(stack: Stack, world: World, on_site: None) -> None:  # noqa: F811
    org1, c1, m1 = world.headers["org1"], world.ids["c1"], world.ids["m1"]
    onsite = stack.client.get(f"/v1/communities/{c1}/on-site", headers=org1).json()
    mine = [i for i in onsite["items"] if i["member_id"] == m1]
    assert mine and mine[0]["phone"] == MASKED["m1"] and mine[0]["phone_revealable"] is True
    roster = stack.client.get(f"/v1/communities/{c1}/roster", headers=org1).json()
    assert {i["phone"] for i in roster["items"] if i["member_id"] == m1} == {MASKED["m1"]}
    page = stack.client.get(f"/v1/members?community_id={c1}", headers=org1).json()
    assert {i["phone"] for i in page["items"] if i["id"] == m1} == {MASKED["m1"]}
    record = stack.client.get(f"/v1/members/{m1}", headers=world.headers["m1"]).json()
    assert record["phone"] == MASKED["m1"]


def test_a_changed_phone_is_masked_in_the_history_and_the_write_answers(
    stack: Stack,
    world: World,  # noqa: F811
) -> None:
    org1, m1 = world.headers["org1"], world.ids["m1"]
    r = stack.client.patch(f"/v1/members/{m1}", json={"phone": "13912345678"}, headers=org1)
    assert r.status_code == 200 and r.json()["phone"] == "139****5678", r.text
    try:
        hist = stack.client.get(f"/v1/members/{m1}/history", headers=org1)
        assert hist.status_code == 200
        assert "13912345678" not in hist.text and PHONES["m1"] not in hist.text
        changes = [c for i in hist.json()["items"] for c in i["changes"] if c["field"] == "phone"]
        assert {"before": MASKED["m1"], "after": "139****5678"} in [
            {"before": c["before"], "after": c["after"]} for c in changes
        ]
        # The organizer still reaches the member: the reveal gives the new number.
        phone = stack.client.get(f"/v1/members/{m1}/phone", headers=org1).json()["phone"]
        assert phone == "13912345678"
    finally:
        r = stack.client.patch(f"/v1/members/{m1}", json={"phone": PHONES["m1"]}, headers=org1)
        assert r.status_code == 200, r.text
