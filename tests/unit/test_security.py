"""api.security and services.logging's redaction: limits before work, CSP, /metrics access,
credentials out of the access log (no network: the app is driven in-process)."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api import security
from services.logging import RedactSecrets, redact_path
from services.settings import Settings


def app_with(settings: Settings) -> FastAPI:
    app = FastAPI()
    security.install(app, settings)

    @app.post("/v1/checkins")
    async def checkin(request: Request) -> dict[str, int]:
        return {"got": len(await request.body())}

    @app.post("/v1/feedback")
    async def feedback(request: Request) -> dict[str, int]:
        return {"got": len(await request.body())}

    @app.get("/page", response_class=HTMLResponse)
    def page() -> str:
        return "<!doctype html><p>页面</p>"

    return app


SETTINGS = Settings(body_max_bytes=64 * 1024)


def test_a_declared_body_over_the_route_limit_is_refused_before_the_route_runs() -> None:
    client = TestClient(app_with(SETTINGS))
    r = client.post("/v1/checkins", content=b"x" * (17 * 1024))
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    assert "16 KB" in r.json()["error"]["message"]
    assert client.post("/v1/checkins", content=b"x" * 1000).json() == {"got": 1000}
    # Another route class has its own limit (a body over 16 KB needs a valid token).
    auth = {"Authorization": f"Bearer {SETTINGS.admin_token}"}
    big = b"x" * (20 * 1024)
    assert client.post("/v1/feedback", content=big, headers=auth).json() == {"got": 20 * 1024}
    assert client.post("/v1/feedback", content=b"x" * (65 * 1024), headers=auth).status_code == 413


def test_a_body_without_length_is_cut_off_at_the_limit() -> None:
    client = TestClient(app_with(SETTINGS))

    def chunks(n: int, size: int = 4096):  # type: ignore[no-untyped-def]
        for _ in range(n):
            yield b"y" * size

    r = client.post("/v1/checkins", content=chunks(8))  # 32 KB, chunked
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert client.post("/v1/checkins", content=chunks(2)).json() == {"got": 8192}


def test_html_pages_carry_a_content_security_policy_and_json_does_not_need_one() -> None:
    client = TestClient(app_with(SETTINGS))
    page = client.get("/page")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in client.post("/v1/feedback", content=b"{}").headers


def test_metrics_answer_only_whom_the_setting_allows() -> None:
    assert security.metrics_allowed(SETTINGS, "127.0.0.1", "")
    assert security.metrics_allowed(SETTINGS, "::1", "")
    assert not security.metrics_allowed(SETTINGS, "10.1.2.3", "")
    token = Settings(metrics_access="token", metrics_token="s" * 20)
    assert security.metrics_allowed(token, "10.1.2.3", "Bearer " + "s" * 20)
    assert not security.metrics_allowed(token, "127.0.0.1", "Bearer wrong")
    assert security.metrics_allowed(Settings(metrics_access="open"), "10.1.2.3", "")
    with pytest.raises(ValidationError, match="METRICS_TOKEN"):
        Settings(metrics_access="token")


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("/me?t=eyJhbGciOi.abc.def", "/me?t=***"),
        ("/org?t=tok&week=2026-W48", "/org?t=***&week=2026-W48"),
        ("/stations/st_1/screen?key=k1", "/stations/st_1/screen?key=***"),
        ("/bind/ABCD-EFGH", "/bind/***"),
        ("/s/eyJ0b2tlbiI6MX0.sig?x=1", "/s/***?x=1"),
        ("/v1/members/m1/hours?year=2026", "/v1/members/m1/hours?year=2026"),
    ],
)
def test_credentials_in_addresses_are_redacted(path: str, want: str) -> None:
    assert redact_path(path) == want


def test_the_access_log_record_is_redacted() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "x",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/me?t=secret", "1.1", 200),
        None,
    )
    assert RedactSecrets().filter(record)
    assert "secret" not in record.getMessage() and "/me?t=***" in record.getMessage()


def test_a_page_with_its_own_policy_keeps_it() -> None:
    app = app_with(SETTINGS)

    @app.get("/strict", response_class=HTMLResponse)
    def strict() -> HTMLResponse:
        return HTMLResponse("<p>x</p>", headers={"Content-Security-Policy": "default-src 'none'"})

    r = TestClient(app).get("/strict")
    assert r.headers.get_list("content-security-policy") == ["default-src 'none'"]
