from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import Ctx
from api.schemas import Health
from services.net import port_open

router = APIRouter(tags=["health"])

# Check-ins failing without a success for this long make Kafka count as down.
PUBLISH_FAILING_S = 10.0


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "a component is down; it is named"}},
)
async def healthz(ctx: Ctx) -> JSONResponse:
    """Kafka and ClickHouse reachable, and check-ins not all failing for 10 s: 200, or 503
    naming what is down. No auth."""

    async def kafka_ok() -> bool:
        hosts = [h.rsplit(":", 1) for h in ctx.settings.kafka_bootstrap.split(",")]
        for host, port in hosts:
            if await asyncio.to_thread(port_open, host, int(port), 1.0):
                return True
        return False

    k, c = await asyncio.gather(kafka_ok(), asyncio.to_thread(ctx.warehouse.ping))
    # Reachable but refusing every record (e.g. a producer that cannot recover) is down too.
    k = k and ctx.publisher.failing_for() < PUBLISH_FAILING_S
    body = {
        "status": "ok" if k and c else "degraded",
        "kafka": "ok" if k else "down",
        "clickhouse": "ok" if c else "down",
    }
    return JSONResponse(body, status_code=200 if k and c else 503)
