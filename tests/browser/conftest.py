"""The browser-test harness: the real stack served over real HTTP, driven by Debian's chromium.

- One Kafka broker per test session (its own: the integration suite's `broker` fixture is not
  visible from here, and pytest would start a second copy if it were imported).
- Per test module (`live`): a fresh topic prefix, a faust worker process, and the API as a
  uvicorn subprocess with its own embedded chDB folder (a separate process, exactly as
  `make run` serves it; chDB allows one data folder per process, so it cannot share ours).
  A module may set `LIVE_SETTINGS = {...}` (Settings fields) to change the server's settings,
  e.g. a short station-code window.
- `browser`: /usr/bin/chromium through Playwright (`executable_path`), never a downloaded
  browser. `phone` and `tablet` give a fresh context; each context refuses every request that
  leaves the app and the test fails if a page tried one (pages must not use a CDN).
- `shot(page, name)` saves a full-page screenshot under `test-output/screenshots/`.

Tests here are marked `browser`, `kafka` and `clickhouse`. To add pages (organizer, HR), write a
`test_*.py` here with `pytestmark = BROWSER_MARKS` and use `live`, `phone`/`desk` and `shot`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from infra.kafka import Broker, create_topics
from services.settings import Settings
from tests.integration import conftest as integration

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
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.base_url, timeout=30)

    def env(self) -> dict[str, str]:
        s = self.settings
        return {
            **os.environ,
            **integration.settings_env(s),
            "API_HOST": s.api_host,
            "API_PORT": str(s.api_port),
            "PUBLIC_URL": s.public_url,
            "SINK_BATCH_MS": str(s.sink_batch_ms),
            "STATION_CODE_WINDOW_S": str(s.station_code_window_s),
            "STATION_CODE_GRACE_S": str(s.station_code_grace_s),
        }

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.main:create_app",
                "--factory",
                "--host",
                self.settings.api_host,
                "--port",
                str(self.settings.api_port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"API exited: {self.log_path.read_text()[-3000:]}")
            try:
                if self.http.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"API not healthy: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
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


@pytest.fixture(scope="session")
def live_broker(broker: Broker) -> Broker:
    # The session's one broker (tests/conftest.py), shared with the integration tests.
    return broker


@pytest.fixture(scope="module")
def live(
    request: pytest.FixtureRequest,
    live_broker: Broker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Live]:
    name = f"b{uuid.uuid4().hex[:8]}"
    data_dir = tmp_path_factory.mktemp(name)
    port = integration.free_port()
    overrides: dict[str, Any] = getattr(request.module, "LIVE_SETTINGS", {})
    settings = Settings(
        data_dir=data_dir,
        api_port=port,
        public_url=f"http://127.0.0.1:{port}",
        kafka_port=live_broker.port,
        kafka_controller_port=live_broker.controller_port,
        kafka_bootstrap=live_broker.bootstrap,
        topic_prefix=f"{name}.",
        clickhouse_dsn=f"chdb://{data_dir / 'clickhouse'}",
        clickhouse_database=name,
        worker_web_port=integration.free_port(),
        sink_batch_ms=200,
        secret_key="browser-secret-" + uuid.uuid4().hex,
        admin_token="browser-admin-" + uuid.uuid4().hex,
        **overrides,
    )
    create_topics(live_broker.bootstrap, settings.topic_prefix)
    worker = integration.Worker(settings, data_dir / "worker.log")
    worker.start()
    server = Live(settings, data_dir / "api.log")
    # The migrate step first, in a process of its own (chDB: one process per data folder).
    from services.warehouse.migrate import run_in_child

    run_in_child(server.env())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        server.http.close()
        worker.stop()


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium first")
    b = playwright_instance.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield b
    b.close()


def _context(browser: Browser, live: Live, **options: Any) -> Iterator[BrowserContext]:
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


@pytest.fixture
def phone(browser: Browser, live: Live) -> Iterator[BrowserContext]:
    yield from _context(browser, live, viewport=PHONE, is_mobile=True, has_touch=True)


@pytest.fixture
def tablet(browser: Browser, live: Live) -> Iterator[BrowserContext]:
    yield from _context(browser, live, viewport=TABLET, has_touch=True)


@pytest.fixture
def desk(browser: Browser, live: Live) -> Iterator[BrowserContext]:
    yield from _context(browser, live, viewport=DESK)


def save_shot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def shot() -> Callable[[Page, str], Path]:
    return save_shot
