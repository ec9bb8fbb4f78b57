"""Which bearer tokens were withdrawn before they expired.

Revocations are events on a compacted topic, loaded into `revoked_tokens`; each API process
keeps the unexpired ones in memory and refreshes them every few seconds, so a check costs a set
lookup and a token revoked through any process is refused everywhere within `REFRESH_S`.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from services import topics
from services.events import TokenRevoked, derived_id, utcnow
from services.processors import route_for_event
from services.publisher import Publisher
from services.tokens import Principal
from services.warehouse.client import Warehouse

log = logging.getLogger(__name__)


class RevocationList:
    REFRESH_S = 2.0

    def __init__(self, warehouse: Warehouse, publisher: Publisher) -> None:
        self.wh = warehouse
        self.publisher = publisher
        self._revoked: set[str] = set()
        self._recent: dict[str, float] = {}  # revoked through this process: token -> when
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()

    def load(self) -> None:
        """The first load, before serving, so no request has to wait for it."""
        self._refresh()

    def _refresh(self) -> None:
        started = time.monotonic()
        rows = self.wh.query(
            "SELECT token_id FROM revoked_tokens FINAL WHERE expires_at > now64(3)"
        )
        with self._lock:
            # A revocation made here while the query ran may be missing from its answer: keep
            # it, so a token revoked through this process is never accepted again meanwhile.
            self._recent = {t: at for t, at in self._recent.items() if at >= started - 1.0}
            self._revoked = {r[0] for r in rows} | set(self._recent)
            self._loaded_at = time.monotonic()

    def is_revoked(self, token_id: str) -> bool:
        """Blocking (it may query ClickHouse): for threads, and for the very first load."""
        if time.monotonic() - self._loaded_at > self.REFRESH_S:
            # Single flight: under load many requests find the list stale at the same moment;
            # one refreshes and the others answer from the previous set (at most one refresh
            # period older, the bound above). Only the very first load makes everyone wait,
            # so no request is ever answered from an empty list that was never loaded.
            first = self._loaded_at == float("-inf")
            if self._refreshing.acquire(blocking=first):
                try:
                    if time.monotonic() - self._loaded_at > self.REFRESH_S:
                        self._refresh()
                finally:
                    self._refreshing.release()
        with self._lock:
            return token_id in self._revoked

    def check_nowait(self, token_id: str) -> bool | None:
        """Never blocks, for the event loop: whether the token is revoked, or None before the
        list was ever loaded (then ask `is_revoked` in a thread). A stale list starts one
        refresh in a background thread and answers from the current set meanwhile, as the
        single flight above does for the requests that do not refresh."""
        if time.monotonic() - self._loaded_at > self.REFRESH_S:
            if self._loaded_at == float("-inf"):
                return None
            if self._refreshing.acquire(blocking=False):
                threading.Thread(
                    target=self._refresh_in_background, name="revocations-refresh", daemon=True
                ).start()
        with self._lock:
            return token_id in self._revoked

    def _refresh_in_background(self) -> None:
        # Holds `_refreshing`, taken by the caller, so refreshes never overlap.
        try:
            if time.monotonic() - self._loaded_at > self.REFRESH_S:
                self._refresh()
        except Exception:  # ClickHouse busy or down: the next stale check tries again
            log.warning("revocation list refresh failed", exc_info=True)
        finally:
            self._refreshing.release()

    def revoke(self, principal: Principal, by: str) -> TokenRevoked:
        expires = (
            datetime.fromtimestamp(principal.expires_at, UTC)
            if principal.expires_at is not None
            else datetime(2100, 1, 1, tzinfo=UTC)
        )
        event = TokenRevoked(
            event_id=derived_id("token-revoked", principal.token_id),
            occurred_at=utcnow(),
            token_id=principal.token_id,
            role=principal.role,
            subject_id=principal.subject_id,
            expires_at=expires,
            revoked_by=by,
        )
        self.publisher.send_sync(topics.REVOCATIONS, principal.token_id, event)
        r = route_for_event(event)
        self.wh.insert(r.table, [r.to_row(event)], r.columns)
        with self._lock:
            self._revoked.add(principal.token_id)
            self._recent[principal.token_id] = time.monotonic()
        return event
