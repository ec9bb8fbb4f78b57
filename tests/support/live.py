"""The browser tests' harness: the API served by uvicorn in a subprocess (`Live`), the marks,
chromium's settings, a context that refuses every request leaving the app, and screenshots.
The fixtures that use them are in tests/browser/conftest.py."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from infra import stack as infra_stack
from services.settings import Settings
from tests.support.stack import scan_token, settings_env

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
TABLET = {"width": 800, "height": 1100}
DESK = {"width": 1366, "height": 900}

BROWSER_MARKS = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.clickhouse]


class Live:
    """The API served by uvicorn in a subprocess, plus helpers to set up data through it."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.base_url = settings.public_url
        self.log_path = log_path
        self.proc: infra_stack.Proc | None = None
        self.http = httpx.Client(base_url=self.base_url, timeout=30)

    def env(self) -> dict[str, str]:
        s = self.settings
        return {
            **os.environ,
            **settings_env(s),
            "API_HOST": s.api_host,
            "API_PORT": str(s.api_port),
            "PUBLIC_URL": s.public_url,
            "SINK_BATCH_MS": str(s.sink_batch_ms),
            "STATION_CODE_WINDOW_S": str(s.station_code_window_s),
            "STATION_CODE_GRACE_S": str(s.station_code_grace_s),
        }

    def start(self) -> None:
        """The API in a process of its own, started by the stack helper (infra.stack) the way
        `make run`, the benchmarks and the drills start it."""
        proc = infra_stack.api_proc(
            self.settings.api_port, self.env(), self.log_path, host=self.settings.api_host
        )
        self.proc = infra_stack.start_api(proc, self.settings.api_port, timeout_s=90)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    # ---- data helpers --------------------------------------------------------------------

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.admin_token}"}

    def token(self, role: str, subject_id: str) -> str:
        r = self.http.post(
            "/v1/auth/tokens", json={"role": role, "subject_id": subject_id}, headers=self.admin
        )
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    def auth(self, role: str, subject_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, subject_id)}"}

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.http.post(path, json=body, headers=self.admin)
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    def community_with_member(self, name: str = "张伟") -> dict[str, Any]:
        """A unit, a community with one service station, and one member reporting there."""
        tag = uuid.uuid4().hex[:4]
        unit = self.create("/v1/units", {"name": f"县财政局{tag}"})
        community = self.create("/v1/communities", {"name": f"城关社区{tag}"})
        station = self.create(
            "/v1/stations",
            {"community_id": community["id"], "name": "城关党群服务站", "kind": "service_station"},
        )
        member = self.create(
            "/v1/members", {"name": name, "unit_id": unit["id"], "community_id": community["id"]}
        )
        return {"unit": unit, "community": community, "station": station, "member": member}

    def wait_for(self, fn: Callable[[], Any], timeout: float = 20.0, interval: float = 0.3) -> Any:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = fn()
            if last:
                return last
            time.sleep(interval)
        return last


def browser_context(browser: Browser, live: Live, **options: Any) -> Iterator[BrowserContext]:
    ctx = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", **options)
    outside: list[str] = []

    def only_the_app(route: Any) -> None:
        url = route.request.url
        if url.startswith(live.base_url) or url.startswith("data:"):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    ctx.route("**/*", only_the_app)
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()
    assert not outside, f"pages tried to load from outside the app: {outside}"


def save_shot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def scan(live: Live, member_id: str, station_id: str, action: str, at: datetime) -> None:
    """A member's phone that scanned the station's screen at `at` and sent it now: the rotating
    code of that moment proves the time, so a seeded past scan is not a back-dated poster scan
    (which would be flagged for review)."""
    code = scan_token(live.settings, station_id, at)
    r = live.http.post(
        "/v1/checkins",
        json={
            "station_token": code,
            "action": action,
            "client_event_id": str(uuid.uuid4()),
            "scanned_at": at.isoformat(),
        },
        headers=live.auth("member", member_id),
    )
    assert r.status_code == 202, r.text
