"""The FastAPI app. Clients are built in the lifespan, never at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from api import errors, openapi
from api.context import AppContext
from api.pages import routes as pages
from api.routers import (
    activation,
    assessments,
    auth,
    campaigns,
    checkins,
    dashboard,
    feedback,
    health,
    imports,
    member_week,
    members,
    organizer,
    rankings,
    records,
    registry,
    sessions,
    station_screen,
    stations,
    weekly,
    wishes,
)
from services import metrics
from services.publisher import Publisher
from services.registry import Registry
from services.revocations import RevocationList
from services.settings import Settings, get_settings
from services.sink import run_in_thread
from services.warehouse.client import connect
from services.warehouse.migrate import migrate

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warehouse = connect(settings)
        migrate(warehouse)
        publisher = Publisher(settings)
        ctx = AppContext(
            settings,
            warehouse,
            publisher,
            Registry(warehouse, publisher, reader=connect(settings, create_database=False)),
            RevocationList(warehouse, publisher),
        )
        if settings.sink_mode == "embedded":
            ctx.sink, ctx.sink_thread = run_in_thread(settings)
        app.state.ctx = ctx
        try:
            yield
        finally:
            if ctx.sink is not None and ctx.sink_thread is not None:
                ctx.sink.stop()
                ctx.sink_thread.join(timeout=15)
            publisher.close()

    app = FastAPI(
        title="龙溪在职党员志愿服务 API",
        summary="Check-ins, volunteer sessions and hours for in-service party members.",
        version="1.0.0",
        lifespan=lifespan,
    )
    errors.install(app)
    openapi.install(app)
    for r in (
        health.router,
        auth.router,
        registry.router,
        stations.router,
        checkins.router,
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
    for r in (feedback.router, wishes.router, campaigns.router):
        app.include_router(r)
    # Phone binding, the member's week, station screens (issue 6).
    for r in (activation.router, member_week.router, station_screen.router):
        app.include_router(r)
    # The organizer dashboard's per-station and per-grid week (issue 6).
    app.include_router(dashboard.router)

    # Operations (issue 7): Prometheus metrics of this process (and its embedded sink).
    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=metrics.CONTENT_TYPE_LATEST)

    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    return app
