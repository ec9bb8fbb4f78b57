from __future__ import annotations

import pytest

from services.ratelimit import RateLimiter, retry_after_header


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_burst_then_refusal_then_refill() -> None:
    clock = Clock()
    rl = RateLimiter(capacity=3, per_s=0.5, clock=clock)
    assert [rl.acquire("m") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = rl.acquire("m")
    assert wait == pytest.approx(2.0)
    assert retry_after_header(wait) == "2"
    clock.t = 2.0
    assert rl.acquire("m") == 0.0
    assert rl.acquire("m") > 0


def test_keys_are_independent_and_bounded() -> None:
    clock = Clock()
    rl = RateLimiter(capacity=1, per_s=1, max_keys=2, clock=clock)
    assert rl.acquire("a") == 0.0 and rl.acquire("b") == 0.0
    assert rl.acquire("a") > 0
    rl.acquire("c")  # evicts the least recently used key ("b")
    assert rl.acquire("b") == 0.0


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(capacity=0, per_s=1)
