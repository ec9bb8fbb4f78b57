from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from api.deps import Ctx
from api.schemas import Health
from services.consumer_lag import LagProbe, lagging
from services.net import port_open

router = APIRouter(tags=["health"])

# Check-ins failing without a success for this long make Kafka count as down.
PUBLISH_FAILING_S = 10.0


class HealthReport(Health):
    # Messages each consumer group (the faust worker's, the sink's) is behind the log, as of the
    # last measurement (at most HEALTH_LAG_INTERVAL_S old); absent when Kafka could not be asked.
    lag: dict[str, int] | None = None
    # The groups beyond HEALTH_MAX_LAG: serving goes on, but what members see is getting stale.
    lagging: list[str] = Field(default_factory=list)


@router.get(
    "/healthz",
    response_model=HealthReport,
    responses={503: {"model": HealthReport, "description": "a component is down; it is named"}},
)
async def healthz(ctx: Ctx, request: Request) -> JSONResponse:
    """Kafka and ClickHouse reachable, and check-ins not all failing for 10 s: 200, or 503
    naming what is down. The worker's or the sink's consumer group further behind than
    HEALTH_MAX_LAG messages: still 200, `status: "degraded"`, the group named in `lagging`.
    No auth."""

    async def kafka_ok() -> bool:
        hosts = [h.rsplit(":", 1) for h in ctx.settings.kafka_bootstrap.split(",")]
        for host, port in hosts:
            if await asyncio.to_thread(port_open, host, int(port), 1.0):
                return True
        return False

    k, c = await asyncio.gather(kafka_ok(), asyncio.to_thread(ctx.warehouse.ping))
    # Reachable but refusing every record (e.g. a producer that cannot recover) is down too.
    k = k and ctx.publisher.failing_for() < PUBLISH_FAILING_S
    probe: LagProbe | None = getattr(request.app.state, "lag_probe", None)
    lag = await asyncio.to_thread(probe.current) if k and probe is not None else None
    behind = lagging(lag, ctx.settings.health_max_lag)
    body = {
        "status": "ok" if k and c and not behind else "degraded",
        "kafka": "ok" if k else "down",
        "clickhouse": "ok" if c else "down",
        "lag": lag,
        "lagging": behind,
    }
    return JSONResponse(body, status_code=200 if k and c else 503)
