"""Tiny network probes shared by the launcher and the health check, and who the client of a
request is behind configured proxies."""

from __future__ import annotations

import functools
import ipaddress
import socket


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=16)
def parse_networks(text: str) -> tuple[Network, ...]:
    """`TRUSTED_PROXIES`: addresses or CIDR blocks, comma-separated; ValueError naming a bad one."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if part:
            try:
                out.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"not an IP address or CIDR block: {part!r}") from None
    return tuple(out)


def _within(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks)


def client_of(peer: str | None, forwarded_for: list[str], trusted: tuple[Network, ...]) -> str:
    """The client's address: the peer's own, unless the peer is a trusted proxy; then the
    nearest address in X-Forwarded-For (read from the right, where each proxy appends) that is
    not itself a trusted proxy. Whatever a client writes into the header itself sits to the left
    of what the trusted proxies appended, so it is never reached while a real hop is there."""
    if peer is None:
        return "unknown"
    if not trusted or not _within(peer, trusted):
        return peer
    hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            # A trusted proxy would not append garbage: the chain is broken here, so the last
            # address known good is the one before it (the proxy itself).
            return peer
        if not _within(hop, trusted):
            return hop
    return hops[0] if hops else peer
