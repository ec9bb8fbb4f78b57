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

The helpers (`Live`, `BROWSER_MARKS`, `scan`, the context that refuses outside requests) live in
tests/support/live.py; this file holds the fixtures only.

Tests here are marked `browser`, `kafka` and `clickhouse`. To add pages (organizer, HR), write a
`test_*.py` here with `pytestmark = BROWSER_MARKS` (tests.support.live) and use `live`,
`phone`/`desk` and `shot`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from infra.kafka import Broker, create_topics
from services.settings import Settings
from tests.support.live import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESK,
    PHONE,
    TABLET,
    Live,
    browser_context,
    save_shot,
)
from tests.support.net import free_port
from tests.support.stack import Worker


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
    port = free_port()
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
        worker_web_port=free_port(),
        sink_batch_ms=200,
        secret_key="browser-secret-" + uuid.uuid4().hex,
        admin_token="browser-admin-" + uuid.uuid4().hex,
        **overrides,
    )
    create_topics(live_broker.bootstrap, settings.topic_prefix)
    worker = Worker(settings, data_dir / "worker.log")
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


@pytest.fixture
def phone(browser: Browser, live: Live) -> Iterator[BrowserContext]:
    yield from browser_context(browser, live, viewport=PHONE, is_mobile=True, has_touch=True)


@pytest.fixture
def phone_intercepted(browser: Browser, live: Live) -> Iterator[BrowserContext]:
    """A phone whose requests a test intercepts (`page.route`): with the member app's service
    worker in control, Chromium sends even the requests it passes through from the worker, where
    a page's routes do not see them (Playwright documents blocking service workers for this)."""
    yield from browser_context(
        browser, live, viewport=PHONE, is_mobile=True, has_touch=True, service_workers="block"
    )


@pytest.fixture
def tablet(browser: Browser, live: Live) -> Iterator[BrowserContext]:
    yield from browser_context(browser, live, viewport=TABLET, has_touch=True)


@pytest.fixture
def desk(browser: Browser, live: Live) -> Iterator[BrowserContext]:
    yield from browser_context(browser, live, viewport=DESK)


@pytest.fixture
def shot() -> Callable[[Page, str], Path]:
    return save_shot


@pytest.fixture
def sized(browser: Browser, live: Live) -> Iterator[Callable[[int], BrowserContext]]:
    """Contexts of a given width (a phone below 1000 px, a desk above)."""
    opened: list[Iterator[BrowserContext]] = []

    def make(width: int) -> BrowserContext:
        phone = width < 1000
        gen = browser_context(
            browser,
            live,
            viewport={"width": width, "height": 800 if phone else 900},
            is_mobile=phone,
            has_touch=phone,
        )
        opened.append(gen)
        return next(gen)

    yield make
    for gen in opened:
        next(gen, None)
