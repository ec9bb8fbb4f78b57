"""Issue 17 through the public API, real broker and chDB: names and free text with control or
text-direction characters refused naming the field (and shown without them when stored before
the rule), limits before work (a stranger's large body never read, the import streamed and cut
at its limit, zip bombs and XML entities refused, list caps), and the activation limiter
(addresses a client cannot forge, keys of the code and member, no lock-out of everyone)."""

from __future__ import annotations

import io
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import date
from typing import Any

import openpyxl
import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.main import SERVER_OPTIONS
from services.events import Member
from services.member_import import template_xlsx
from services.ratelimit import ActivationLimiter
from services.registry import MEMBER, Change
from services.tokens import Principal
from tests.support.net import free_port
from tests.support.stack import Stack

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

IMPORT_LIMIT = 2 * 1024 * 1024
STACK_ENV = {"IMPORT_MAX_BYTES": str(IMPORT_LIMIT)}
RLO = "\u202e"


@pytest.fixture(scope="module")
def county(stack: Stack) -> dict[str, Any]:
    unit = stack.create("/v1/units", {"name": "县卫健局"})
    community = stack.create("/v1/communities", {"name": "西城社区"})
    grid = stack.create(
        "/v1/grids", {"community_id": community["id"], "name": "第一网格", "level": 4}
    )
    member = stack.create(
        "/v1/members",
        {
            "name": "王五",
            "unit_id": unit["id"],
            "community_id": community["id"],
            "phone": "13900000001",
        },
    )
    return {"unit": unit, "community": community, "grid": grid, "member": member}


def _refused(r: Any, field: str, char: str) -> None:
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert message.startswith(f"{field}:") or f" {field}:" in message or f".{field}:" in message
    assert f"U+{ord(char):04X}" in message, message


# ---- text -----------------------------------------------------------------------------------


def test_names_and_texts_with_control_or_direction_characters_are_refused_naming_the_field(
    stack: Stack, county: dict[str, Any]
) -> None:
    c, m = county["community"]["id"], county["member"]["id"]
    cases: list[tuple[str, str, dict[str, Any], str, str]] = [
        ("POST", "/v1/units", {"name": f"县财政局{RLO}"}, "name", RLO),
        ("POST", "/v1/communities", {"name": "南城\x00社区"}, "name", "\x00"),
        (
            "POST",
            "/v1/members",
            {
                "name": "张\x1b[2J三",
                "unit_id": county["unit"]["id"],
                "community_id": c,
                "phone": "13900000002",
            },
            "name",
            "\x1b",
        ),
        ("PATCH", f"/v1/members/{m}", {"party_branch": "第一\u2066支部"}, "party_branch", "\u2066"),
        ("PATCH", f"/v1/members/{m}", {"name": "王\n五"}, "name", "\n"),
        (
            "POST",
            "/v1/wishes",
            {"community_id": c, "title": "修水管\u200f", "resident_name": "刘大妈"},
            "title",
            "\u200f",
        ),
        (
            "POST",
            "/v1/wishes",
            {
                "community_id": c,
                "title": "修水管",
                "description": "厨房\u202d漏水",
                "resident_name": "刘大妈",
            },
            "description",
            "\u202d",
        ),
        (
            "POST",
            "/v1/campaigns",
            {
                "name": f"疫情防控{RLO}",
                "community_id": c,
                "starts_at": "2026-11-01T00:00:00+08:00",
                "ends_at": "2026-11-30T00:00:00+08:00",
            },
            "name",
            RLO,
        ),
        (
            "POST",
            "/v1/feedback/member-service",
            {"member_id": m, "period": "2026", "rating": 5, "comment": "很好\x07"},
            "comment",
            "\x07",
        ),
    ]
    organizer = stack.token("organizer", c)
    for method, path, body, field, char in cases:
        headers = organizer if path.startswith("/v1/feedback") else stack.admin
        r = stack.client.request(method, path, json=body, headers=headers)
        _refused(r, field, char)
    # Nothing was stored; a comment may still span lines.
    units = stack.client.get("/v1/units?limit=500", headers=stack.admin).json()["items"]
    assert all(RLO not in u["name"] for u in units)
    assert stack.client.get(f"/v1/members/{m}", headers=stack.admin).json()["name"] == "王五"
    r = stack.client.post(
        "/v1/feedback/member-service",
        json={"member_id": m, "period": "2026", "rating": 5, "comment": "第一行\n第二行"},
        headers=organizer,
    )
    assert r.status_code == 201, r.text


def test_import_rows_with_such_characters_are_rejected_naming_the_column(
    stack: Stack, county: dict[str, Any]
) -> None:
    rows = [
        "姓名,手机号码,工作单位,居住社区,网格,报到日期",
        f"赵{RLO}六,13900000003,县卫健局,西城社区,第一网格,2022-03-15",
        "钱七,13900000004,县卫健局,西城\x1b社区,,",
        "孙八,13900000005,县卫健局,西城社区,,",
    ]
    r = stack.client.post(
        "/v1/imports/members",
        files={"file": ("名单.csv", ("\r\n".join(rows) + "\r\n").encode(), "text/csv")},
        headers=stack.admin,
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"]["code"] == "rows_rejected" and body["written"] is False
    errors = {(e["row"], e["column"]): e["message"] for e in body["errors"]}
    assert set(errors) == {(2, "姓名"), (3, "居住社区")}
    assert "U+202E" in errors[(2, "姓名")] and "U+001B" in errors[(3, "居住社区")]
    # The messages never repeat the offending text.
    assert all(RLO not in e and "\x1b" not in e for e in errors.values())


def test_text_stored_before_the_rule_is_shown_without_those_characters(
    stack: Stack, county: dict[str, Any]
) -> None:
    """A name stored before the rule held (written below the API, as an old record would be)
    reaches the export files and the printed record without its direction override."""
    registry = stack.client.app.state.ctx.registry  # type: ignore[attr-defined]
    legacy = f"李四{RLO}01.0\x1b"
    with registry.write_lock:
        before = registry.member(county["member"]["id"])
        after = Member.model_validate(
            {
                **before.model_dump(),
                "name": legacy,
                **registry.stamp(before, Principal("admin", "admin", "t", None)),
            }
        )
        registry.commit([Change(MEMBER, before, after)])
    unit = county["unit"]["id"]

    def exported() -> bytes | None:
        r = stack.client.get(f"/v1/units/{unit}/assessments?format=csv", headers=stack.admin)
        return r.content if r.status_code == 200 and "李四".encode() in r.content else None

    csv_bytes = stack.wait_for(exported)
    assert csv_bytes, "the member never reached the assessment export"
    text = csv_bytes.decode("utf-8-sig")
    assert "李四01.0" in text and RLO not in text and "\x1b" not in text
    x = stack.client.get(f"/v1/units/{unit}/assessments?format=xlsx", headers=stack.admin)
    ws = openpyxl.load_workbook(io.BytesIO(x.content), read_only=True).worksheets[0]
    cells = [str(v) for row in ws.iter_rows(values_only=True) for v in row if v is not None]
    assert "李四01.0" in cells and not any(RLO in v or "\x1b" in v for v in cells)
    issued = stack.client.post(
        f"/v1/members/{county['member']['id']}/service-records",
        json={"from": "2026-01-01", "to": date.today().isoformat()},
        headers=stack.admin,
    )
    assert issued.status_code == 201, issued.text
    page = stack.client.get(f"/records/{issued.json()['code']}")
    assert page.status_code == 200
    assert "李四01.0" in page.text and RLO not in page.text and "\x1b" not in page.text
    # The name as printed verifies.
    code = issued.json()["code"]
    checked = stack.client.get(f"/v1/verify/{code}", params={"member_name": "李四01.0"})
    assert checked.status_code == 200 and checked.json()["mismatches"] == [], checked.text
    other = stack.client.get(f"/v1/verify/{code}", params={"member_name": "李四10.0"})
    assert other.json()["mismatches"] == ["member_name"]


# ---- limits before work -----------------------------------------------------------------------


def test_a_campaign_naming_too_many_members_is_refused_naming_the_limit(
    stack: Stack, county: dict[str, Any]
) -> None:
    ids = [f"mem_{i:016x}" for i in range(5001)]
    r = stack.client.post(
        "/v1/campaigns",
        json={
            "name": "疫情防控",
            "community_id": county["community"]["id"],
            "starts_at": "2026-11-01T00:00:00+08:00",
            "ends_at": "2026-11-30T00:00:00+08:00",
            "assignments": [
                {"grid_id": county["grid"]["id"], "member_ids": ids[:3000]},
                {"grid_id": "grd_other", "member_ids": ids[3000:]},
            ],
        },
        headers=stack.admin,
    )
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert message.startswith("assignments:") and "at most 5000 members" in message
    assert "(this one 5001)" in message


def _bomb() -> bytes:
    src = template_xlsx()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(src)) as z, zipfile.ZipFile(out, "w") as dst:
        for info in z.infolist():
            data = z.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = b"<" + b"a" * (30 * 1024 * 1024)
            dst.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _with_entity() -> bytes:
    src = template_xlsx()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(src)) as z, zipfile.ZipFile(out, "w") as dst:
        for info in z.infolist():
            data = z.read(info)
            if info.filename == "xl/sharedStrings.xml" or info.filename.endswith("sheet1.xml"):
                # Before the root element, after the XML declaration if there is one.
                at = data.index(b"?>") + 2 if data.startswith(b"<?xml") else 0
                doctype = b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                data = data[:at] + doctype + data[at:]
            dst.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def test_xlsx_bombs_and_entities_are_refused_before_openpyxl(
    stack: Stack, county: dict[str, Any]
) -> None:
    def upload(data: bytes) -> Any:
        return stack.client.post(
            "/v1/imports/members",
            files={"file": ("名单.xlsx", data, "application/octet-stream")},
            headers=stack.admin,
        )

    bomb = _bomb()
    assert len(bomb) < 100 * 1024
    r = upload(bomb)
    assert r.status_code == 413, r.text
    assert (
        r.json()["error"]["code"] == "file_too_large" and "压缩比" in r.json()["error"]["message"]
    )
    r = upload(_with_entity())
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "unsafe_file" and "DOCTYPE" in r.json()["error"]["message"]


@pytest.fixture(scope="module")
def server(stack: Stack) -> Iterator[tuple[str, int]]:
    """The module's app served over a real socket by uvicorn with the options `python -m api`
    and `make run` use (the app's context is the in-process client's: no second lifespan)."""
    port = free_port()
    config = uvicorn.Config(
        stack.client.app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        **SERVER_OPTIONS,
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield ("127.0.0.1", port)
    srv.should_exit = True
    thread.join(10)


def _response_head(sock: socket.socket, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_a_strangers_large_import_is_refused_before_its_body_is_read(
    stack: Stack, server: tuple[str, int]
) -> None:
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(
            b"POST /v1/imports/members HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 1900000\r\n\r\n" + b"--b\r\n"
        )
        # Nothing more is sent: the answer must come without the body.
        head = _response_head(sock)
    assert head.startswith(b"HTTP/1.1 401"), head[:200]


def test_an_import_without_length_is_cut_off_at_its_limit_while_streaming(
    stack: Stack, server: tuple[str, int]
) -> None:
    token = stack.settings.admin_token.encode()
    sent = 0
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(
            b"POST /v1/imports/members HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + token + b"\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="m.csv"\r\n\r\n'
        sock.sendall(b"%x\r\n%s\r\n" % (len(head), head))
        chunk = b"a" * (256 * 1024)
        frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        answered = b""
        sock.settimeout(0.05)
        # Up to 4x the limit; the server must answer long before.
        for _ in range(4 * IMPORT_LIMIT // len(chunk)):
            try:
                sock.sendall(frame)
                sent += len(chunk)
            except OSError:
                break
            try:
                answered = sock.recv(65536)
                if answered:
                    break
            except TimeoutError:
                continue
        if not answered:
            answered = _response_head(sock)
    assert answered.startswith(b"HTTP/1.1 413"), answered[:300]
    assert b"file_too_large" in answered
    assert sent <= IMPORT_LIMIT + 4 * len(chunk), sent


# ---- the activation limiter --------------------------------------------------------------------


def _code(stack: Stack, member_id: str) -> str:
    r = stack.client.post("/v1/activations", json={"member_id": member_id}, headers=stack.admin)
    assert r.status_code == 201, r.text
    code: str = r.json()["code"]
    return code


def _fresh_limiter(stack: Stack) -> None:
    limiter = ActivationLimiter(per_client=3, per_code=2, total=8, window_s=600)
    stack.client.app.state.activation_limiter = limiter  # type: ignore[attr-defined]


def _redeem(stack: Stack, code: str, client: str, forwarded: str | None = None) -> int:
    # Not entered as a context: the app's lifespan already runs under the module's client.
    c = TestClient(stack.client.app, client=(client, 40000))
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    status: int = c.post("/v1/activations/redeem", json={"code": code}, headers=headers).status_code
    return status


def test_forwarded_addresses_are_ignored_unless_from_a_configured_proxy(
    stack: Stack, server: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    _fresh_limiter(stack)
    base = f"http://{server[0]}:{server[1]}"
    statuses = [
        httpx.post(
            f"{base}/v1/activations/redeem",
            json={"code": "AAAA-AAAA"},
            headers={"X-Forwarded-For": f"198.51.100.{i}"},
        ).status_code
        for i in range(5)
    ]
    # Served as `python -m api` serves: a new forged address per try changes nothing.
    assert statuses == [404, 404, 404, 429, 429], statuses
    # Behind a configured proxy the forwarded address is the client's.
    _fresh_limiter(stack)
    monkeypatch.setattr(stack.settings, "trusted_proxies", "127.0.0.0/8")
    statuses = [
        httpx.post(
            f"{base}/v1/activations/redeem",
            json={"code": "AAAA-AAAA"},
            headers={"X-Forwarded-For": f"6.6.6.6, 198.51.100.{i // 3}"},
        ).status_code
        for i in range(6)
    ]
    assert statuses == [404, 404, 404, 404, 404, 404], statuses
    assert (
        httpx.post(
            f"{base}/v1/activations/redeem",
            json={"code": "AAAA-AAAA"},
            headers={"X-Forwarded-For": "198.51.100.0"},
        ).status_code
        == 429
    )


def test_one_client_cannot_lock_out_everyone_and_a_used_code_is_stopped_by_its_keys(
    stack: Stack, county: dict[str, Any]
) -> None:
    _fresh_limiter(stack)
    member = county["member"]["id"]
    good = _code(stack, member)
    # One address hammering: stopped at its own limit, never reaching the total.
    assert [_redeem(stack, "ZZZZ-ZZZZ", "203.0.113.1") for _ in range(10)] == [404] * 3 + [429] * 7
    # Everyone else still binds their phone.
    assert _redeem(stack, good, "203.0.113.2") == 200
    # The used code tried again from ever new addresses: stopped by the code's own key.
    assert _redeem(stack, good, "203.0.113.3") == 409
    assert _redeem(stack, good, "203.0.113.4") == 409
    assert _redeem(stack, good, "203.0.113.5") == 429
    # Guessing from many addresses past the total: those that failed are refused at once, a
    # member typing a valid code from an address that has not failed still gets in.
    _fresh_limiter(stack)
    fresh = _code(stack, member)
    for i in range(8):
        assert _redeem(stack, "ZZZZ-ZZZZ", f"192.0.2.{i}") == 404
    assert _redeem(stack, "ZZZZ-ZZZZ", "192.0.2.0") == 429
    assert _redeem(stack, fresh, "192.0.2.200") == 200
