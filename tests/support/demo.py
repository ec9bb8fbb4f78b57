"""The demo simulator on the integration tests' stack: the history mode's settings and the
simulator's own client on the in-process API."""

from __future__ import annotations

import httpx

from tests.support.stack import Stack


def history_env(hours: int, review_days: int) -> dict[str, str]:
    """A module's STACK_ENV for scans `hours` old, as README's history mode: the API takes
    them, the worker re-pairs them, the review window covers the re-derive horizon, and the
    per-member limit (for phones) lets a backfill send many scans per member in seconds."""
    return {
        "MAX_SCAN_AGE_H": str(hours),
        "SESSION_REDERIVE_HORIZON_H": str(hours + 24),
        "SESSION_REVIEW_WINDOW_DAYS": str(review_days),
        "LIMIT_CHECKINS_MEMBER_BURST": "1000",
        "LIMIT_CHECKINS_MEMBER_PER_MIN": "60000",
    }


def demo_client(stack: Stack) -> httpx.AsyncClient:
    """The simulator's asyncio client, as the admin, on the in-process app the stack started
    (its lifespan already holds the Kafka producer, chDB and the embedded sink)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=stack.client.app),
        base_url="http://testserver",
        headers=stack.admin,
        timeout=60,
    )
