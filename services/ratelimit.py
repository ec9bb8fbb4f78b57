"""Token-bucket rate limits, kept in the process that serves the requests.

Each API process limits what it sees. Behind a load balancer that spreads one member's requests
over N processes the effective limit is up to N times higher; that still stops a runaway phone
or a script, which is the point. A shared limiter (e.g. in the broker's own partitions or a
key-value store) would be needed for exact global limits.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`capacity` requests at once, refilled at `per_s` per second, per key."""

    def __init__(
        self,
        capacity: int,
        per_s: float,
        max_keys: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1 or per_s <= 0:
            raise ValueError("capacity must be at least 1 and the refill rate positive")
        self.capacity = capacity
        self.per_s = per_s
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """0.0 if allowed (and counted); otherwise the seconds to wait before retrying."""
        now = self._clock()
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                b = _Bucket(float(self.capacity), now)
                self._buckets[key] = b
                if len(self._buckets) > self.max_keys:
                    # Oldest idle keys go first; a forgotten key comes back with a full bucket,
                    # which is what it would have refilled to anyway.
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key)
                b.tokens = min(self.capacity, b.tokens + (now - b.updated) * self.per_s)
                b.updated = now
            if b.tokens >= 1:
                b.tokens -= 1
                return 0.0
            return (1 - b.tokens) / self.per_s


def retry_after_header(wait_s: float) -> str:
    return str(max(1, math.ceil(wait_s)))


class _Window:
    """Failure times per key in a sliding window; at most `max_keys` keys (oldest dropped)."""

    def __init__(self, window_s: float, max_keys: int) -> None:
        self.window_s = window_s
        self.max_keys = max_keys
        self._keys: OrderedDict[str, deque[float]] = OrderedDict()

    def count(self, key: str, now: float) -> int:
        q = self._keys.get(key)
        if q is None:
            return 0
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            del self._keys[key]
            return 0
        return len(q)

    def add(self, key: str, now: float) -> None:
        q = self._keys.get(key)
        if q is None:
            q = self._keys[key] = deque()
            if len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(key)
        q.append(now)


class ActivationLimiter:
    """Failed redemptions of activation codes, against guessing (issue 17).

    Keys an attacker cannot choose at will:
    - **the client address**, as the connection shows it (a forwarded address only from a
      configured proxy: services.net.client_of), `per_client` failures per window;
    - **the code's hash** (any spelling of one code is one key) and, once the code is found,
      **its member**: `per_code` failures each, so a used or expired code tried again and again
      is stopped whatever address it comes from;
    - **the total**: past `total` failures in the window from all addresses the service is being
      guessed at; it then refuses every address that has failed at all in the window, but never
      one that has not. One address reaches at most `per_client` of the total, so no client
      alone can lock anyone out, and a member typing their code right the first time gets in
      even during an attack.

    In-process, like the other limiters (services.ratelimit): with N API processes an attacker
    gets N times the tries; at 31^8 = 8.5e11 codes that stays negligible.
    """

    def __init__(
        self,
        per_client: int,
        per_code: int,
        total: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if min(per_client, per_code, total) < 1 or window_s <= 0:
            raise ValueError("limits must be at least 1 and the window positive")
        self.per_client = per_client
        self.per_code = per_code
        self.total = total
        self.window_s = window_s
        self._clock = clock
        self._clients = _Window(window_s, max_keys)
        self._targets = _Window(window_s, max_keys)
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def _under_attack(self, now: float) -> bool:
        while self._all and self._all[0] <= now - self.window_s:
            self._all.popleft()
        return len(self._all) >= self.total

    def refused(
        self, client: str, code_hash: str | None = None, member_id: str | None = None
    ) -> bool:
        """Whether this attempt is refused (429) before the code is judged."""
        now = self._clock()
        with self._lock:
            failed = self._clients.count(client, now)
            if failed >= self.per_client:
                return True
            if failed and self._under_attack(now):
                return True
            for target in _targets(code_hash, member_id):
                if self._targets.count(target, now) >= self.per_code:
                    return True
            return False

    def failed(
        self, client: str, code_hash: str | None = None, member_id: str | None = None
    ) -> None:
        now = self._clock()
        with self._lock:
            self._clients.add(client, now)
            for target in _targets(code_hash, member_id):
                self._targets.add(target, now)
            self._all.append(now)


def _targets(code_hash: str | None, member_id: str | None) -> list[str]:
    out = []
    if code_hash is not None:
        out.append(f"code:{code_hash}")
    if member_id is not None:
        out.append(f"member:{member_id}")
    return out
