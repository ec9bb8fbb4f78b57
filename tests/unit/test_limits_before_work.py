"""Limits before work (issue 17), in-process: a large body is read only for a caller whose token
verifies, and an uploaded file is read from the stream with its limit enforced while reading,
never spooled to disk (api.security, api.uploads)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from api import security
from api.uploads import BadUpload, UploadTooLarge, read_file_part
from services.settings import Settings
from services.tokens import issue_bearer

SETTINGS = Settings(body_max_bytes=1024 * 1024, import_max_bytes=2 * 1024 * 1024)
ADMIN = {"Authorization": f"Bearer {SETTINGS.admin_token}"}


def _app(ran: list[str]) -> FastAPI:
    app = FastAPI()
    security.install(app, SETTINGS)

    @app.post("/v1/feedback")
    async def feedback(request: Request) -> dict[str, int]:
        ran.append("feedback")
        return {"got": len(await request.body())}

    @app.post("/v1/imports/members")
    async def upload(request: Request) -> dict[str, Any]:
        ran.append("import")
        try:
            data = await read_file_part(request, "file", 100 * 1024)
        except UploadTooLarge:
            return {"error": "too_large"}
        except BadUpload as exc:
            return {"error": f"bad: {exc}"}
        return {"size": None if data is None else len(data), "head": (data or b"")[:8].decode()}

    return app


class Chunks:
    """A body sent without a length, counting how much of it the server pulled."""

    def __init__(self, n: int, size: int = 8192, head: bytes = b"", tail: bytes = b"") -> None:
        self.n, self.size, self.head, self.tail = n, size, head, tail
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        if self.head:
            yield self.head
        for _ in range(self.n):
            self.sent += 1
            yield b"z" * self.size
        if self.tail:
            yield self.tail


def test_a_large_declared_body_without_a_valid_token_is_refused_before_the_route_runs() -> None:
    ran: list[str] = []
    client = TestClient(_app(ran))
    body = b"x" * (200 * 1024)
    for headers in (
        {},
        {"Authorization": "Bearer forged.token.here"},
        {"Authorization": "Basic x"},
    ):
        r = client.post("/v1/feedback", content=body, headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["error"]["code"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
    assert ran == []
    member = issue_bearer(SETTINGS, "member", "mem_1")
    ok = client.post("/v1/feedback", content=body, headers={"Authorization": f"Bearer {member}"})
    assert ok.json() == {"got": 200 * 1024}
    # Small bodies are the routes' business (the public ones are small).
    assert client.post("/v1/feedback", content=b"x" * 1000).json() == {"got": 1000}


def test_a_large_body_without_length_and_token_is_cut_off_at_16_kb() -> None:
    ran: list[str] = []
    client = TestClient(_app(ran))
    # (The test client sends the whole body whatever the server reads: that the server stops
    # reading is shown over a socket, tests/integration/test_hygiene.py.)
    r = client.post("/v1/feedback", content=Chunks(100))  # 800 KB
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    stream = Chunks(100)
    assert client.post("/v1/feedback", content=stream, headers=ADMIN).json() == {"got": 800 * 1024}


def _multipart(file: bytes, extra: bytes = b"") -> tuple[bytes, dict[str, str]]:
    b = b"----hygiene"
    body = (
        extra
        + b"--" + b + b'\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
        + b"--" + b + b'\r\nContent-Disposition: form-data; name="file"; filename="m.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\n" + file + b"\r\n--" + b + b"--\r\n"
    )  # fmt: skip
    return body, {"content-type": "multipart/form-data; boundary=----hygiene", **ADMIN}


def test_the_file_part_is_read_from_the_stream_without_touching_disk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_disk(*_: Any, **__: Any) -> Any:
        raise AssertionError("the upload was spooled to a temporary file")

    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", no_disk)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", no_disk)
    client = TestClient(_app([]))
    body, headers = _multipart(b"name,phone\r\n" + b"a" * 50_000)
    assert client.post("/v1/imports/members", content=body, headers=headers).json() == {
        "size": 50_012,
        "head": "name,pho",
    }


def test_an_upload_without_length_stops_being_read_at_its_limit() -> None:
    client = TestClient(_app([]))
    head, headers = _multipart(b"")
    start, end = head.split(b"text/csv\r\n\r\n")
    stream = Chunks(25, head=start + b"text/csv\r\n\r\n", tail=end)  # 200 KB of file
    r = client.post("/v1/imports/members", content=stream, headers=headers)
    assert r.json() == {"error": "too_large"}
    stream = Chunks(12, head=start + b"text/csv\r\n\r\n", tail=end)  # 96 KB
    r = client.post("/v1/imports/members", content=stream, headers=headers)
    assert r.json() == {"size": 96 * 1024, "head": "zzzzzzzz"}


def test_bad_multipart_bodies_are_told_apart() -> None:
    client = TestClient(_app([]))
    body, headers = _multipart(b"x")
    no_file = body.replace(b'name="file"', b'name="other"')
    assert client.post("/v1/imports/members", content=no_file, headers=headers).json() == {
        "size": None,
        "head": "",
    }
    twice = body.replace(b'name="note"', b'name="file"')
    r = client.post("/v1/imports/members", content=twice, headers=headers)
    assert r.json()["error"].startswith("bad: more than one part")
    no_boundary = {**headers, "content-type": "multipart/form-data"}
    r = client.post("/v1/imports/members", content=body, headers=no_boundary)
    assert r.json()["error"].startswith("bad:")
    # Form fields beside the file are an envelope of 64 KB at most.
    pad = b'------hygiene\r\nContent-Disposition: form-data; name="pad"\r\n\r\n'
    padded, _ = _multipart(b"x", extra=pad + b"p" * (70 * 1024) + b"\r\n")
    r = client.post("/v1/imports/members", content=padded, headers=headers)
    assert r.json() == {"error": "too_large"}


# Lists whose size is capped as a whole by the model holding them, not field by field.
_CAPPED_BY_THEIR_HOLDER = {
    # CampaignIn caps the members and units over all its assignments (api/routers/campaigns.py).
    "GridAssignment.member_ids",
    "GridAssignment.unit_ids",
}


def test_every_list_in_a_request_body_has_a_cap() -> None:
    """A list or map field without a cap would let one request name a million items, each
    costing a lookup before anything is refused."""
    import typing

    from annotated_types import MaxLen

    from api.main import create_app
    from tests.support.request_models import request_fields

    uncapped = []
    lists = 0
    for label, f in request_fields(create_app(Settings())):
        shapes = {typing.get_origin(a) for a in (f.annotation, *typing.get_args(f.annotation))}
        if not shapes & {list, dict, set, tuple}:
            continue
        lists += 1
        if label in _CAPPED_BY_THEIR_HOLDER:
            continue
        if not any(isinstance(m, MaxLen) for m in f.metadata):
            uncapped.append(label)
    assert lists >= 5
    assert uncapped == [], f"list fields without max_length: {uncapped}"


def test_a_campaigns_members_are_capped_over_all_its_assignments() -> None:
    from pydantic import ValidationError

    from api.routers.campaigns import CAMPAIGN_MEMBERS_MAX, CampaignIn

    def campaign(*sizes: int) -> dict[str, Any]:
        return {
            "name": "疫情防控",
            "community_id": "comm_1",
            "starts_at": "2026-11-01T00:00:00+08:00",
            "ends_at": "2026-11-30T00:00:00+08:00",
            "assignments": [
                {"grid_id": f"g{i}", "member_ids": [f"m{i}_{j}" for j in range(n)]}
                for i, n in enumerate(sizes)
            ],
        }

    CampaignIn.model_validate(campaign(CAMPAIGN_MEMBERS_MAX - 1, 1))
    with pytest.raises(ValidationError, match=f"at most {CAMPAIGN_MEMBERS_MAX} members"):
        CampaignIn.model_validate(campaign(CAMPAIGN_MEMBERS_MAX, 1))


class _Body(BaseModel):
    x: str


def test_a_body_cut_off_while_a_json_route_parses_it_is_answered_as_such_not_400() -> None:
    """FastAPI turns any error while reading a JSON body into 400 "error parsing the body"; the
    guard's own answer (413, 401) replaces it."""
    from api import errors

    app = FastAPI()
    small = Settings(body_max_bytes=64 * 1024)
    security.install(app, small)
    errors.install(app)

    @app.post("/v1/feedback")
    def feedback(body: _Body) -> dict[str, str]:
        return {"x": body.x}

    client = TestClient(app)
    json = {"content-type": "application/json"}
    r = client.post("/v1/feedback", content=Chunks(4), headers=json)
    assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthorized")
    auth = {**json, "Authorization": f"Bearer {small.admin_token}"}
    r = client.post("/v1/feedback", content=Chunks(20), headers=auth)
    assert (r.status_code, r.json()["error"]["code"]) == (413, "payload_too_large")
    ok = client.post("/v1/feedback", content=iter([b'{"x":', b'"y"}']), headers=json)
    assert ok.json() == {"x": "y"}
