"""The real API with the fix proposed for services/revocations.py applied in-process, to measure
what it is worth before its owner changes the code: `uvicorn bench.whatif_api:create_app --factory`.

The proposal: `RevocationList.is_revoked` refreshes single-flight. Today every request that
finds the list older than REFRESH_S queries ClickHouse itself; under load dozens of requests
see it stale at once and queue the same query on the one chDB handle (serialised with the
sink's inserts), stalling every check-in for hundreds of ms every 2 s. With the fix, one caller
refreshes and the others keep using the previous set (at most one refresh period older, the
bound the module already documents).

The second proposal, for services/registry.py: the check-in path reads the member and the
station through a 5 s per-key cache, so with more distinct members per 5 s than the one chDB
handle can answer point queries for (a few hundred), every scan queues a `FINAL` lookup behind
the others and behind the sink's inserts. The fix is an in-memory replica of members and
stations per API process, kept current from the compacted `registry.*` topics (the API already
writes through on its own changes); approximated here by a one-hour TTL after the warm-up.
"""

from __future__ import annotations

import threading
import time

from fastapi import FastAPI

from api.main import create_app as real_create_app
from services.registry import Registry
from services.revocations import RevocationList

_refreshing = threading.Lock()


def _is_revoked(self: RevocationList, token_id: str) -> bool:
    if time.monotonic() - self._loaded_at > self.REFRESH_S and _refreshing.acquire(blocking=False):
        try:
            if time.monotonic() - self._loaded_at > self.REFRESH_S:
                self._refresh()
        finally:
            _refreshing.release()
    with self._lock:
        return token_id in self._revoked


def create_app() -> FastAPI:
    RevocationList.is_revoked = _is_revoked  # type: ignore[method-assign]
    Registry.CACHE_TTL_S = 3600.0
    return real_create_app()
