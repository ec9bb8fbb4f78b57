"""The admin's read of the latest reconciliation of raw scans against sessions (issue 18)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import Caller, require
from services import reconcile
from services.reconcile import Reconciliation

router = APIRouter(prefix="/v1/admin", tags=["operations"])


class ReconciliationStatus(BaseModel):
    # Whether this process runs the job (it runs where the sink runs: here in the embedded
    # mode; in the standalone sinks otherwise, whose /metrics and logs carry the results).
    running_here: bool
    # The latest run that compared anything; None until the first one (RECONCILE_SETTLE_S
    # after the start, at the earliest).
    latest: Reconciliation | None


@router.get("/reconciliation", response_model=ReconciliationStatus)
async def latest_reconciliation(
    caller: Caller, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
) -> ReconciliationStatus:
    """The latest run of the job in this process: per Kafka partition and local day, the raw
    scans due and how many of them the sessions name, and the first `limit` unaccounted scans
    with their members. Admin only."""
    require(caller, "admin")
    result = reconcile.latest_result()
    if result is not None:
        result = result.model_copy(update={"unaccounted": result.unaccounted[:limit]})
    return ReconciliationStatus(running_here=reconcile.running(), latest=result)
