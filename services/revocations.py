"""Which bearer tokens were withdrawn before they expired.

Revocations are events on a compacted topic, loaded into `revoked_tokens`; each API process
keeps the unexpired ones in memory and refreshes them every few seconds, so a check costs a set
lookup and a token revoked through any process is refused everywhere within `REFRESH_S`.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from services import topics
from services.events import TokenRevoked, derived_id, utcnow
from services.processors import route_for_event
from services.publisher import Publisher
from services.tokens import Principal
from services.warehouse.client import Warehouse


class RevocationList:
    REFRESH_S = 2.0

    def __init__(self, warehouse: Warehouse, publisher: Publisher) -> None:
        self.wh = warehouse
        self.publisher = publisher
        self._revoked: set[str] = set()
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()

    def _refresh(self) -> None:
        rows = self.wh.query(
            "SELECT token_id FROM revoked_tokens FINAL WHERE expires_at > now64(3)"
        )
        with self._lock:
            self._revoked = {r[0] for r in rows}
            self._loaded_at = time.monotonic()

    def is_revoked(self, token_id: str) -> bool:
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
        return event
