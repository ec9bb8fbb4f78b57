"""The activation limiter (services.ratelimit.ActivationLimiter) and who the client of a request
is behind proxies (services.net.client_of): keys an attacker cannot choose, and no lock-out of
everyone."""

from __future__ import annotations

import pytest

from services.net import client_of, parse_networks
from services.ratelimit import ActivationLimiter
from services.settings import Settings


def _limiter(now: list[float], total: int = 1000) -> ActivationLimiter:
    return ActivationLimiter(
        per_client=3, per_code=2, total=total, window_s=60, clock=lambda: now[0]
    )


def test_an_address_is_refused_after_its_failures_and_forgiven_after_the_window() -> None:
    now = [0.0]
    lim = _limiter(now)
    for _ in range(3):
        assert not lim.refused("1.2.3.4")
        lim.failed("1.2.3.4")
    assert lim.refused("1.2.3.4")
    assert not lim.refused("5.6.7.8")
    now[0] = 61.0
    assert not lim.refused("1.2.3.4")


def test_a_code_and_its_member_are_keys_whatever_the_address() -> None:
    now = [0.0]
    lim = _limiter(now)
    lim.failed("10.0.0.1", "hash-a", "mem_1")
    lim.failed("10.0.0.2", "hash-a", "mem_1")
    # A third address trying the same (used) code is refused, and so is another code of the
    # same member; other codes and members are not.
    assert lim.refused("10.0.0.3", "hash-a")
    assert lim.refused("10.0.0.3", "hash-b", "mem_1")
    assert not lim.refused("10.0.0.3", "hash-b", "mem_2")
    assert not lim.refused("10.0.0.3")


def test_past_the_total_only_addresses_that_failed_are_refused() -> None:
    now = [0.0]
    lim = _limiter(now, total=10)
    # One address cannot reach the total: it is stopped at its own limit.
    for _ in range(20):
        if not lim.refused("6.6.6.6"):
            lim.failed("6.6.6.6")
    assert lim.refused("6.6.6.6")
    assert not lim.refused("7.7.7.7") and not lim.refused("1.1.1.1", "hash-x", "mem_9")
    # Many addresses past the total: each one that failed is refused at once, a fresh one
    # (a member typing the right code) is not.
    for i in range(10):
        lim.failed(f"10.1.0.{i}")
    assert lim.refused("10.1.0.0")
    assert not lim.refused("10.9.9.9")
    now[0] = 61.0
    assert not lim.refused("10.1.0.0")


def test_the_limiter_forgets_the_oldest_keys_past_its_size() -> None:
    now = [0.0]
    lim = ActivationLimiter(1, 1, 10**9, 60, clock=lambda: now[0], max_keys=100)
    lim.failed("first")
    for i in range(200):
        lim.failed(f"addr-{i}")
    assert not lim.refused("first")
    assert lim.refused("addr-199")


TRUSTED = parse_networks("10.0.0.0/8, 192.168.1.5")


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # No proxy configured: the header is ignored, whoever sends it.
        ("127.0.0.1", ["6.6.6.6"], "127.0.0.1"),
        ("203.0.113.9", ["6.6.6.6"], "203.0.113.9"),
        # From a configured proxy: the nearest address it appended.
        ("10.0.0.2", ["198.51.100.7"], "198.51.100.7"),
        ("192.168.1.5", ["198.51.100.7"], "198.51.100.7"),
        # A client's own forged entries sit to the left of what the proxies appended.
        ("10.0.0.2", ["6.6.6.6, 198.51.100.7"], "198.51.100.7"),
        ("10.0.0.2", ["6.6.6.6", "198.51.100.7, 10.0.0.3"], "198.51.100.7"),
        # Garbage appended right of the proxy: the chain is broken, the proxy is the client.
        ("10.0.0.2", ["198.51.100.7, not-an-ip"], "10.0.0.2"),
        ("10.0.0.2", [], "10.0.0.2"),
    ],
)
def test_the_client_behind_proxies(peer: str, forwarded: list[str], client: str) -> None:
    trusted = TRUSTED if peer != "127.0.0.1" and peer != "203.0.113.9" else ()
    assert client_of(peer, forwarded, trusted) == client
    assert client_of("203.0.113.9", ["6.6.6.6"], TRUSTED) == "203.0.113.9"


def test_trusted_proxies_setting_is_checked_at_start_up() -> None:
    assert Settings().trusted_proxies == ""
    assert len(parse_networks(Settings(trusted_proxies="10.0.0.0/8,::1").trusted_proxies)) == 2
    with pytest.raises(ValueError, match="not an IP address"):
        Settings(trusted_proxies="10.0.0.0/8, proxy.local")
