"""The admin's read of the latest reconciliation of raw scans against sessions (issue 18)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import Caller, require
from api.errors import ApiError
from services import reconcile
from services.reconcile import Reconciliation

router = APIRouter(prefix="/v1/admin", tags=["operations"])


@router.get(
    "/reconciliation",
    response_model=Reconciliation,
    responses={404: {"description": "no run in this API process yet"}},
)
async def latest_reconciliation(
    caller: Caller, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
) -> Reconciliation:
    """The latest run of the job in this API process (it runs beside the embedded sink): per
    Kafka partition and local day, the raw scans due and how many the sessions name, and the
    first `limit` unaccounted scans with their members. Admin only. 404 `reconciliation_not_run`
    before the first run, or where the sink (and so the job) runs in its own process: there
    the figures are on that process's /metrics and in its logs."""
    require(caller, "admin")
    result = reconcile.latest_result()
    if result is None:
        raise ApiError(
            404,
            "reconciliation_not_run",
            "no reconciliation has run in this process (not yet, or the sink runs elsewhere)",
        )
    return result.model_copy(update={"unaccounted": result.unaccounted[:limit]})
