"""The FastAPI app. Clients are built in the lifespan, never at import time."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api import errors, openapi, security
from api.context import AppContext
from api.pages import assets
from api.pages import routes as pages
from api.responses import ShownJSONResponse
from api.routers import (
    activation,
    activities,
    assessments,
    assisted,
    auth,
    campaigns,
    checkins,
    dashboard,
    excusals,
    feedback,
    health,
    imports,
    member_week,
    members,
    organizer,
    posts,
    privacy,
    projects,
    rankings,
    reconciliation,
    records,
    registry,
    reminders,
    resources,
    rollups,
    sessions,
    station_screen,
    stations,
    unit_roster,
    wechat,
    weekly,
    wishes,
)
from services.consumer_lag import LagProbe
from services.publisher import Publisher
from services.registry import Registry
from services.revocations import RevocationList
from services.settings import Settings, get_settings, require_secrets
from services.sink import run_in_thread
from services.warehouse.client import connect
from services.warehouse.migrate import SchemaOutOfDate, check_schema

log = logging.getLogger(__name__)

# For every uvicorn that serves the app (`python -m api`, `make run`). uvicorn's default rewrites
# the client address from X-Forwarded-For whenever the peer is 127.0.0.1, so any local process
# (or a proxy that passes the header through) could name any client and reset the activation
# limiter. Off: the app reads the header only from TRUSTED_PROXIES (api.security.client_address).
SERVER_OPTIONS: dict[str, Any] = {"proxy_headers": False}


def _tune_gc() -> None:
    """The cyclic garbage collector, tuned for a long-lived server with a large heap (the
    registry replica, chDB and Kafka clients, the app's models): at check-in rates the default
    thresholds ran a full collection over ~190,000 objects about once a second, stalling the
    event loop 40-110 ms each time on the 2-core benchmark machine (straight into the p99), and
    all collections together took ~170 µs per check-in (bench/findings.md, section 2; measured
    with gc.callbacks under wrk). What exists at start-up lives as long as the process,
    so it is frozen out of every collection; the youngest generation is collected every 20,000
    net allocations instead of every 700, so the few objects of each request die young instead
    of being promoted and rescanned. Cyclic garbage is still collected, a little later."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # Before anything is built: an API signing with a public key would accept forged tokens.
    require_secrets(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warehouse = connect(settings)
        # Migrations run once, in the migrate step, never here: API processes starting together
        # against a server would race on them. An older schema is refused before serving.
        try:
            check_schema(warehouse, settings.clickhouse_database)
        except SchemaOutOfDate as exc:
            log.error("refusing to start: %s", exc)
            raise
        publisher = Publisher(settings)
        # The check-ins' producer runs on this (the serving) loop; see services.publisher.
        await publisher.start()
        registry = Registry(warehouse, publisher, reader=connect(settings, create_database=False))
        revocations = RevocationList(warehouse, publisher)
        # Loaded before serving, so check-ins answer from memory from the first request on.
        registry.replica.start(settings.registry_refresh_s)
        revocations.load()
        ctx = AppContext(settings, warehouse, publisher, registry, revocations)
        if settings.sink_mode == "embedded":
            ctx.sink, ctx.sink_thread = run_in_thread(settings)
        app.state.ctx = ctx
        # The consumer groups' lag for /healthz, measured lazily (no broker request until asked).
        app.state.lag_probe = LagProbe(settings)
        _tune_gc()
        try:
            yield
        finally:
            if ctx.sink is not None and ctx.sink_thread is not None:
                ctx.sink.stop()
                ctx.sink_thread.join(timeout=15)
            registry.replica.stop()
            app.state.lag_probe.close()
            await publisher.aclose()
            publisher.close()

    app = FastAPI(
        title="龙溪在职党员志愿服务 API",
        summary="Check-ins, volunteer sessions and hours for in-service party members.",
        version="1.0.0",
        lifespan=lifespan,
        default_response_class=ShownJSONResponse,
    )
    errors.install(app)
    openapi.install(app)
    # Body limits before any route parses, CSP on pages, /metrics behind METRICS_ACCESS.
    security.install(app, settings)
    # Check-ins first: Starlette tries the routes in order on every request, and at peak hours
    # almost every request is a check-in (~80 µs of route matching saved per scan, §2 of
    # bench/findings.md). No other route matches POST /v1/checkins, so the order is harmless.
    for r in (
        checkins.router,
        health.router,
        auth.router,
        registry.router,
        stations.router,
        members.router,
        imports.router,
        records.router,
        assessments.router,
        rankings.router,
        organizer.router,
        sessions.router,
        weekly.router,
    ):
        app.include_router(r)
    # Feedback, micro-wishes and the three lists, campaigns (issue 4).
    for r in (feedback.router, wishes.router, resources.router, projects.router, campaigns.router):
        app.include_router(r)
    # Phone binding, the member's week, station screens (issue 6).
    for r in (activation.router, member_week.router, station_screen.router):
        app.include_router(r)
    # The organizer dashboard's per-station and per-grid week (issue 6).
    app.include_router(dashboard.router)
    # The latest reconciliation of raw scans against sessions (issue 18).
    app.include_router(reconciliation.router)
    # Reminders: inboxes and what a member receives (issue 14).
    app.include_router(reminders.router)
    # Personal information care: phone reveals, the member's own data, the access log (issue 15).
    app.include_router(privacy.router)
    # Assisted and team check-in, the WeChat binding (issue 14).
    app.include_router(assisted.router)
    app.include_router(wechat.router)
    # The unit's loop: rosters, report receipts, quarterly cards, national records (issue 15).
    app.include_router(unit_roster.router)
    # Service slots and sign-up (issue 14).
    app.include_router(activities.router)
    # Excused weeks and standing posts (issue 14).
    app.include_router(excusals.router)
    app.include_router(posts.router)
    # The county's and towns' roll-ups: drill-down and heatmap (issue 15).
    app.include_router(rollups.router)

    app.include_router(pages.router)
    # Compressed and cached (api/pages/assets.py).
    app.mount("/static", assets.Static(directory=pages.STATIC), name="static")
    return app
