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
from collections import OrderedDict
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
