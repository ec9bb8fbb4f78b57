"""Tiny network probes shared by the launcher and the health check."""

from __future__ import annotations

import socket


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
